"""What is known about a SCIM request as it is served; becomes its provisioning-log row.

Plain data: no aiohttp, no connection. The SCIM request context (`gateway.scim.context`)
starts an entry from the request, handlers add what they learn (target, facts,
notes with their codes, the failure's code), and `to_row` turns it into the row.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.provlog.events import RequestFacts, Target, describe
from gateway.provlog.redaction import redacted_body, scrub_json_text
from gateway.store.provisioning_log import LogRow


@dataclass(slots=True)
class LogEntry:
    """What is known about a request so far; becomes a `LogRow` when it is recorded."""

    request_id: str
    started: float
    occurred_at: datetime
    method: str
    path: str
    query: str
    user_agent: str | None
    client_ip: str | None
    route: str | None = None
    path_id: str | None = None
    query_params: dict[str, str] = field(default_factory=dict)
    org_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    auth_failure: str | None = None
    scim_type: str | None = None
    detail: str | None = None
    # The failure's code and arguments, decided where the failure arose.
    code: str | None = None
    code_args: dict[str, Any] | None = None
    # Human text of each note and, in step, its code (see gateway.provlog.codes).
    notes: list[str] = field(default_factory=list)
    note_codes: list[str] = field(default_factory=list)
    # What handlers know that the request does not say (lookup totals, state changes).
    facts: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    request_body: bytes | None = None
    request_json: Any = None
    # The notes as a set: thousands of ignored keys must not cost a scan each.
    _noted: set[str] = field(default_factory=set)

    def note(self, code: str, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.notes.append(text)
            self.note_codes.append(code)

    def fail(self, code: str | None, args: dict[str, Any] | None, *, scim_type: str | None,
             detail: str) -> None:  # fmt: skip
        self.code, self.code_args, self.scim_type, self.detail = code, args, scim_type, detail

    def reset_for_retry(self) -> None:
        """Forget what a first attempt learned, before the request is served again."""
        self.notes.clear()
        self.note_codes.clear()
        self._noted.clear()
        self.facts.clear()
        self.target = None
        self.code = self.code_args = self.scim_type = self.detail = None

    def to_row(self, status: int, response_body: bytes | None, body_limit: int) -> LogRow:
        request_body = redacted_body(self.request_body, body_limit, parsed=self.request_json)
        described = describe(
            RequestFacts(
                method=self.method,
                route=self.route,
                path_id=self.path_id,
                query=self.query_params,
                body=self.request_json,
                status=status,
                detail=self.detail,
                auth_failure=self.auth_failure,
                notes=tuple(self.notes),
                facts=self.facts,
                target=self.target,
                code=self.code,
                code_args=self.code_args,
                note_codes=tuple(self.note_codes),
            )
        )
        target = described.target
        return LogRow(
            event=described.event,
            event_detail=described.detail,
            outcome=described.outcome,
            code=described.code,
            code_args=dict(described.code_args) if described.code_args else None,
            reason=described.reason,
            target_type=target.type if target else None,
            target_id=_uuid(target.id) if target else None,
            target_name=_cut(target.name) if target else None,
            target_display=_cut(target.display) if target else None,
            target_key=target_key(target),
            occurred_at=self.occurred_at,
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            query=self.query,
            status=status,
            duration_ms=(time.perf_counter() - self.started) * 1000.0,
            org_id=self.org_id,
            token_id=self.token_id,
            scim_type=self.scim_type,
            detail=self.detail,
            auth_failure=self.auth_failure,
            user_agent=self.user_agent,
            client_ip=self.client_ip,
            request_body=request_body,
            response_body=_response_text(response_body, body_limit),
            notes=list(self.notes),
        )


def target_key(target: Target | None) -> str | None:
    """How a user or team is found again in the log: its folded name, else its id.

    userNames and team names are what Okta looks resources up by, and what a failed
    create carries, so a user's history includes the failures before it existed.
    """
    if target is None:
        return None
    if target.name:
        # Cut like the name itself: an index row holds a few kilobytes at most.
        return f"{target.type.lower()}:{target.name[:_TARGET_TEXT].casefold()}"
    if target.id:
        return f"{target.type.lower()}:{target.id}"
    return None


# Names longer than any the gateway accepts (256) are refused requests; the row
# keeps enough to recognise them, and its indexes stay within their row size.
_TARGET_TEXT = 512


def _cut(text: str | None) -> str | None:
    return text[:_TARGET_TEXT] if text is not None else None


def _response_text(body: bytes | None, limit: int) -> str | None:
    """Our own response, cut to the limit and scrubbed as text (parsing a page of 100
    users again just to log it would double the cost of a list request)."""
    if not body:
        return None
    text = body[: limit * 4].decode("utf-8", "ignore")
    if len(text) > limit:
        return scrub_json_text(text[:limit]) + f"…[cut, {len(body)} bytes in all]"
    return scrub_json_text(text)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
