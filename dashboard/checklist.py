"""The guide's pre-deployment checklist, each item judged from the org's real traffic."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from gateway.provlog.signals import Signal, org_signals
from gateway.settings import Settings
from gateway.store import provisioning_log as log_store
from gateway.store.tokens import TokenInfo

Status = Literal["ok", "problem", "waiting"]

AUTH_FAILURE_WORDS = {
    "missing": "no token was sent",
    "basic_scheme": "Basic authentication was used instead of the token",
    "double_prefix": "the token was pasted with 'Bearer' in front",
    "wrapped": "the token was pasted with quotes or spaces around it",
    "not_a_scim_token": "what was sent is not a SCIM token",
    "truncated": "the token was cut short when pasted",
    "too_long": "extra characters were pasted after the token",
    "mistyped": "the token has a typo",
    "unknown": "the token is unknown",
    "revoked": "the token was revoked",
    "expired": "the token expired",
}
NO_TRAFFIC = (
    "No requests from Okta yet — paste the base URL and a token in Okta → Provisioning → "
    "Integration and click Test API Credentials (Test Connector Configuration on an App "
    "Integration Wizard app)."
)


@dataclass(frozen=True)
class CheckItem:
    title: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)


def _signal(signals: list[Signal], kind: str) -> Signal | None:
    return next((s for s in signals if s.kind == kind), None)


async def _log_reads(
    pool: asyncpg.Pool, org_id: uuid.UUID
) -> tuple[list[log_store.LogRow], list[log_store.LogRow], list[log_store.LogRow]]:
    """The last request, the last 401s and the last wrong-URL requests."""
    async with pool.acquire() as conn:
        latest, _ = await log_store.list_log(conn, org_id, log_store.LogFilter(), limit=1)
        auth_failures, _ = await log_store.list_log(
            conn, org_id, log_store.LogFilter(event="Authentication failed"), limit=5
        )
        wrong_urls, _ = await log_store.list_log(
            conn, org_id, log_store.LogFilter(event="Wrong base URL"), limit=3
        )
    return latest, auth_failures, wrong_urls


async def _signals(pool: asyncpg.Pool, org_id: uuid.UUID) -> list[Signal]:
    async with pool.acquire() as conn:
        return await org_signals(conn, org_id, days=30)


async def build_checklist(
    pool: asyncpg.Pool, settings: Settings, org_id: uuid.UUID, tokens: list[TokenInfo]
) -> list[CheckItem]:
    # Two connections at once: the page waits for the slower half, not for both.
    (latest, auth_failures, wrong_urls), signals = await asyncio.gather(
        _log_reads(pool, org_id), _signals(pool, org_id)
    )
    last = latest[0] if latest else None
    items = [
        _base_url(settings, last, wrong_urls),
        _token(tokens, last, auth_failures),
        _org_binding(tokens, last, signals),
        _mapping(signals, last),
        _app_kind(signals),
    ]
    return items


def _base_url(
    settings: Settings, last: log_store.LogRow | None, wrong: list[log_store.LogRow]
) -> CheckItem:
    title = "SCIM connector base URL"
    if last is None:
        return CheckItem(title, "waiting", NO_TRAFFIC)
    if last.event == "Wrong base URL":
        return CheckItem(
            title,
            "problem",
            f"The last request went to a wrong URL ({last.path}). Paste exactly "
            f"{settings.scim_base_url} in Okta, with no trailing slash.",
            [w.detail for w in wrong if w.detail],
        )
    details = [f"Earlier: {w.path} — {w.detail}" for w in wrong if w.detail]
    return CheckItem(
        title, "ok", f"The last requests arrived on {settings.scim_base_url}.", details[:2]
    )


def _token(
    tokens: list[TokenInfo], last: log_store.LogRow | None, failures: list[log_store.LogRow]
) -> CheckItem:
    title = "API token"
    active = [t for t in tokens if t.revoked_at is None]
    if failures and (last is None or last.event == "Authentication failed"):
        reasons = sorted(
            {AUTH_FAILURE_WORDS.get(f.auth_failure or "", f.auth_failure or "?") for f in failures}
        )
        return CheckItem(
            title,
            "problem",
            "Okta's last requests were refused (401): " + "; ".join(reasons) + ".",
            [
                "Generate a new token, paste only the token in Okta → Provisioning → Integration, "
                "click Test API Credentials, then Save."
            ],
        )
    if not active:
        return CheckItem(title, "problem", "No active token: click Generate Token below.")
    used = [t for t in active if t.last_used_at is not None]
    if not used:
        return CheckItem(title, "waiting", "No token has been used yet. " + NO_TRAFFIC)
    latest = max(used, key=lambda t: t.last_used_at or t.created_at)
    return CheckItem(
        title,
        "ok",
        f"The last request with schscim_…{latest.last4} succeeded, from "
        f"{latest.last_used_user_agent or 'an unknown client'}.",
    )


def _org_binding(
    tokens: list[TokenInfo], last: log_store.LogRow | None, signals: list[Signal]
) -> CheckItem:
    title = "Org binding"
    revoked = _signal(signals, "revoked_token_in_use")
    if revoked is not None:
        return CheckItem(title, "problem", revoked.message)
    if last is None:
        return CheckItem(
            title, "waiting", "Every token belongs to this org; nothing has arrived with one yet."
        )
    return CheckItem(
        title,
        "ok",
        "Requests with this org's tokens are filed under this org; another org's token "
        "cannot read or change its users.",
    )


def _mapping(signals: list[Signal], last: log_store.LogRow | None) -> CheckItem:
    title = "Attribute mapping (Unique identifier field: email)"
    kinds = ("user_names_are_okta_ids", "user_names_not_emails", "duplicate_accounts")
    found = [s for s in signals if s.kind in kinds]
    spec = _signal(signals, "spec_test_users")
    if found:
        return CheckItem(
            title,
            "problem",
            found[0].message,
            [m for s in found[1:] for m in [s.message]]
            + [e for s in found for e in s.examples][:5],
        )
    if last is None:
        return CheckItem(
            title, "waiting", "Set Application username format to Email on Okta's Sign On tab."
        )
    return CheckItem(
        title,
        "ok",
        "userNames are emails and no user has two accounts.",
        [spec.message] if spec else [],
    )


def _app_kind(signals: list[Signal]) -> CheckItem:
    title = "Okta app kind"
    kind = _signal(signals, "app_kind")
    if kind is None:
        return CheckItem(
            title,
            "waiting",
            "Known after Okta's first user or team change: OIN apps send PATCH, App "
            "Integration Wizard apps send PUT.",
        )
    if "Wizard" in kind.message:
        return CheckItem(
            title,
            "ok",
            kind.message,
            [
                "The test button is named Test Connector Configuration.",
                "Provisioning → To App → Edit: enable Create Users, Update User Attributes "
                "and Deactivate Users.",
            ],
        )
    return CheckItem(
        title,
        "ok",
        kind.message,
        [
            "The test button is named Test API Credentials.",
            "Provisioning → To App → Edit: enable Create Users, Update User Attributes and "
            "Deactivate Users; Push Groups → + Push Groups for teams.",
        ],
    )
