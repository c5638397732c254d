"""What is known about a SCIM request as it is served; becomes its provisioning-log row."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.dbtypes import Connection
from gateway.events import RequestFacts, Target, describe
from gateway.redact import redact_text, redacted_body, scrub_json_text
from gateway.store.provisioning_log import LogRow

_MAX_HEADER_TEXT = 512


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
    org_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    auth_failure: str | None = None
    scim_type: str | None = None
    detail: str | None = None
    notes: list[str] = field(default_factory=list)
    # What handlers know that the request does not say (lookup totals, state changes).
    facts: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    route: str | None = None
    path_id: str | None = None
    query_params: dict[str, str] = field(default_factory=dict)
    # (event, outcome) of the row last built for this request, for the metrics.
    described: tuple[str, str] | None = None
    request_body: bytes | None = None
    request_json: Any = None
    recorded: bool = False
    conn: Connection | None = None
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @classmethod
    def start(cls, request: web.Request, base_path: str) -> LogEntry:
        user_agent = request.headers.get("User-Agent")
        resource = request.match_info.route.resource
        route = None
        if resource is not None and resource.canonical.startswith(base_path):
            route = resource.canonical[len(base_path) :] or "/"
        return cls(
            route=route,
            path_id=request.match_info.get("id"),
            query_params={k: v for k, v in request.query.items()},
            request_id=uuid.uuid4().hex,
            started=time.perf_counter(),
            occurred_at=datetime.now(UTC),
            method=request.method,
            path=redact_text(request.path)[:2048],
            query=redact_text(request.query_string)[:4096],
            user_agent=user_agent[:_MAX_HEADER_TEXT] if user_agent else None,
            client_ip=request.remote,
        )

    def to_row(self, response: web.StreamResponse, body_limit: int) -> LogRow:
        if self.request_json is not None:
            request_body = redacted_body(self.request_json, body_limit, parsed=True)
        else:
            request_body = redacted_body(self.request_body, body_limit)
        response_bytes = response.body if isinstance(response, web.Response) else None
        described = describe(
            RequestFacts(
                method=self.method,
                route=self.route,
                path_id=self.path_id,
                query=self.query_params,
                body=self.request_json,
                status=response.status,
                detail=self.detail,
                auth_failure=self.auth_failure,
                notes=tuple(self.notes),
                facts=self.facts,
                target=self.target,
            )
        )
        target = described.target
        self.described = (described.event, described.outcome)
        return LogRow(
            event=described.event,
            event_detail=described.detail,
            outcome=described.outcome,
            reason=described.reason,
            target_type=target.type if target else None,
            target_id=_uuid(target.id) if target else None,
            target_name=target.name if target else None,
            target_display=target.display if target else None,
            occurred_at=self.occurred_at,
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            query=self.query,
            status=response.status,
            duration_ms=(time.perf_counter() - self.started) * 1000.0,
            org_id=self.org_id,
            token_id=self.token_id,
            scim_type=self.scim_type,
            detail=self.detail,
            auth_failure=self.auth_failure,
            user_agent=self.user_agent,
            client_ip=self.client_ip,
            request_body=request_body,
            response_body=_response_text(response_bytes, body_limit),
            notes=list(self.notes),
        )


def _response_text(body: Any, limit: int) -> str | None:
    """Our own response, cut to the limit and scrubbed as text (parsing a page of 100
    users again just to log it would double the cost of a list request)."""
    if not isinstance(body, bytes) or not body:
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
