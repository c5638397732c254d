"""What each logged request was, in the words of Okta's admin: event, outcome, reason.

Inferred from the method, the route, the query, the body and the facts a handler
recorded (how many a lookup found, whether a user went inactive…). Okta's
"Verify groups endpoint" and the first page of a group import are the same
request on the wire; a first page that holds every group is called the former.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from gateway.provlog.codes import WARNING_CODES, auth_code, default_code

TEST_API_CREDENTIALS = "Test API credentials"
VERIFY_GROUPS = "Verify groups endpoint"
LOOK_UP_USER = "Look up user"
READ_USER = "Read user"
CREATE_USER = "Create user"
UPDATE_USER = "Update user attributes"
DEACTIVATE_USER = "Deactivate user"
REACTIVATE_USER = "Reactivate user"
DELETE_USER = "Delete user"
IMPORT_USERS = "Import users"
LOOK_UP_GROUP = "Look up group"
READ_GROUP = "Read group"
PUSH_GROUP = "Push group"
PUSH_GROUP_MEMBERS = "Push group members"
RENAME_GROUP = "Rename group"
REPLACE_GROUP_MEMBERS = "Replace group members"
UPDATE_GROUP = "Update group"
DELETE_GROUP = "Delete group"
IMPORT_GROUPS = "Import groups"
SEARCH = "Search"
DISCOVERY = "Discovery"
AUTHENTICATION_FAILED = "Authentication failed"
WRONG_BASE_URL = "Wrong base URL"
RATE_LIMITED = "Rate limited"
SERVER_ERROR = "Server error"
UNSUPPORTED = "Unsupported request"

EVENTS = (
    TEST_API_CREDENTIALS, VERIFY_GROUPS, LOOK_UP_USER, READ_USER, CREATE_USER, UPDATE_USER,
    DEACTIVATE_USER, REACTIVATE_USER, DELETE_USER, IMPORT_USERS, LOOK_UP_GROUP, READ_GROUP,
    PUSH_GROUP, PUSH_GROUP_MEMBERS, RENAME_GROUP, REPLACE_GROUP_MEMBERS, UPDATE_GROUP,
    DELETE_GROUP, IMPORT_GROUPS, SEARCH, DISCOVERY, AUTHENTICATION_FAILED, WRONG_BASE_URL,
    RATE_LIMITED, SERVER_ERROR, UNSUPPORTED,
)  # fmt: skip

SUCCESS, FAILURE, WARNING = "success", "failure", "warning"


_DISCOVERY_ROUTES = ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas")


@dataclass(frozen=True)
class Target:
    type: str  # User | Group
    id: str | None = None
    name: str | None = None  # userName / displayName
    display: str | None = None


@dataclass(frozen=True)
class Description:
    event: str
    detail: str | None
    outcome: str
    reason: str | None
    target: Target | None
    code: str | None = None
    code_args: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RequestFacts:
    """Everything `describe` looks at; built from a log entry."""

    method: str
    route: (
        str | None
    )  # the route template under the base path, e.g. "/Users/{id}"; None if unmatched
    path_id: str | None
    query: Mapping[str, str]
    body: Any
    status: int
    detail: str | None
    auth_failure: str | None
    notes: tuple[str, ...]
    facts: Mapping[str, Any]
    target: Target | None
    # The failure's code as decided where it arose, and the codes of the notes.
    code: str | None = None
    code_args: Mapping[str, Any] | None = None
    note_codes: tuple[str, ...] = ()


def reason_for(status: int, detail: str | None) -> str:
    """Okta's wording on its Tasks page: '<reason phrase>. Errors reported by remote server: …'."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    return f"{phrase}. Errors reported by remote server: {detail or phrase}"


def describe(r: RequestFacts) -> Description:
    event, detail = _event(r)
    code: str | None
    args = r.code_args
    if r.status >= 400:
        outcome = FAILURE
        if r.status == 401 and r.auth_failure:
            code = auth_code(r.auth_failure)
        elif event == WRONG_BASE_URL:
            code = "wrong_base_url"
        else:
            code = r.code or default_code(r.status, None)
    elif warnings := [c for c in r.note_codes if c in WARNING_CODES]:
        outcome, code = WARNING, warnings[0]
    else:
        outcome, code, args = SUCCESS, None, None
    reason = reason_for(r.status, r.detail) if outcome == FAILURE else None
    if outcome == WARNING:
        texts = "; ".join(
            n for n, c in zip(r.notes, r.note_codes, strict=False) if c in WARNING_CODES
        )
        detail = f"{detail}; {texts}" if detail else texts
    return Description(
        event, detail, outcome, reason, r.target or _body_target(r), code, args or None
    )


def _event(r: RequestFacts) -> tuple[str, str | None]:
    if r.status == 401:
        return AUTHENTICATION_FAILED, r.auth_failure
    if r.route is None and r.status == 404:
        return WRONG_BASE_URL, None
    if r.status == 429:
        return RATE_LIMITED, None
    if r.status == 405:
        return UNSUPPORTED, f"{r.method} is not allowed here"
    event, detail = _action(r)
    if r.status >= 500:
        return SERVER_ERROR, f"during {event}"
    return event, detail


def _action(r: RequestFacts) -> tuple[str, str | None]:
    route, method = r.route or "", r.method
    if route.startswith(_DISCOVERY_ROUTES):
        return DISCOVERY, route.lstrip("/").split("/")[0]
    if route == "/.search" or route.endswith("/.search"):
        return SEARCH, None
    if route == "/Users":
        if method == "POST":
            return CREATE_USER, None
        return _list(r, LOOK_UP_USER, IMPORT_USERS, "user", test_credentials=True)
    if route == "/Users/{id}":
        if method == "GET":
            return READ_USER, None
        if method == "DELETE":
            return DELETE_USER, None
        change = r.facts.get("active_change") or _active_in_body(r)
        if change == "deactivated":
            return DEACTIVATE_USER, None
        if change == "reactivated":
            return REACTIVATE_USER, None
        return UPDATE_USER, "PUT (full replace)" if method == "PUT" else "PATCH"
    if route == "/Groups":
        if method == "POST":
            return PUSH_GROUP, "create"
        return _list(r, LOOK_UP_GROUP, IMPORT_GROUPS, "group", test_credentials=False)
    if route == "/Groups/{id}":
        if method == "GET":
            return READ_GROUP, None
        if method == "DELETE":
            return DELETE_GROUP, None
        if method == "PUT":
            members = r.body.get("members") if isinstance(r.body, dict) else None
            count = len(members) if isinstance(members, list) else 0
            detail = f"PUT with {count} member{'s' * (count != 1)}"
            if "members_added" in r.facts:
                detail += (
                    f": added {r.facts['members_added']}, removed {r.facts['members_removed']}"
                )
            if r.facts.get("renamed_from") is not None:
                new_name = r.body.get("displayName") if isinstance(r.body, dict) else None
                return RENAME_GROUP, f"to {new_name!r} ({detail})"
            return REPLACE_GROUP_MEMBERS, detail
        return _group_patch(r)
    return r.method + " " + (r.route or "?"), None


def _list(
    r: RequestFacts, look_up: str, import_event: str, noun: str, *, test_credentials: bool
) -> tuple[str, str | None]:
    if r.query.get("filter"):
        total = r.facts.get("total")
        if total is None:
            return look_up, None
        if total == 0:
            return look_up, f"no {noun} found: Okta creates it"
        return look_up, f"found: Okta links the existing {noun}"
    start, count = _int(r.query.get("startIndex"), 1), _int(r.query.get("count"), 100)
    if test_credentials and start == 1 and count == 2:
        return TEST_API_CREDENTIALS, None
    total = r.facts.get("total")
    if not test_credentials and start == 1 and (total is None or total <= count):
        return VERIFY_GROUPS, None
    if total is None or count <= 0:
        return import_event, None
    page = (max(start, 1) - 1) // count + 1
    pages = max(math.ceil(total / count), 1)
    return import_event, f"page {page} of {pages}"


def _group_patch(r: RequestFacts) -> tuple[str, str | None]:
    added = removed = 0
    replaced: int | None = None
    rename: str | None = None
    for op in _operations(r.body):
        kind = str(op.get("op", "")).lower()
        path = str(op.get("path") or "")
        value = op.get("value")
        if path.lower() == "members" and kind == "remove" and value is None:
            replaced = 0  # remove every member
        elif path.lower().startswith("members"):
            values = len(value) if isinstance(value, list) else (1 if kind == "remove" else 0)
            if kind == "add":
                added += values
            elif kind == "replace":
                replaced = values
            else:
                removed += values
        elif not path and isinstance(value, dict):
            for key, item in value.items():
                if key.lower() == "displayname":
                    rename = str(item)
                elif key.lower() == "members" and isinstance(item, list):
                    if kind == "add":
                        added += len(item)
                    else:
                        replaced = len(item)
        elif path.lower() == "displayname":
            rename = str(value)
    if replaced is not None:
        return REPLACE_GROUP_MEMBERS, f"{replaced} member{'s' * (replaced != 1)}"
    if added or removed:
        return PUSH_GROUP_MEMBERS, f"add {added} / remove {removed}"
    if rename is not None:
        unchanged = "unchanged_team" in r.note_codes
        return RENAME_GROUP, "unchanged name" if unchanged else f"to {rename!r}"
    return UPDATE_GROUP, None


def _operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    ops = next((v for k, v in body.items() if k.lower() == "operations"), None)
    return [op for op in ops if isinstance(op, dict)] if isinstance(ops, list) else []


def _active_in_body(r: RequestFacts) -> str | None:
    """For requests that failed before the handler knew the user: what the body asked for."""
    values: list[Any] = []
    if r.method == "PUT" and isinstance(r.body, dict):
        values.append(r.body.get("active"))
    for op in _operations(r.body):
        path = str(op.get("path") or "").lower()
        value = op.get("value")
        if path == "active":
            values.append(value)
        elif not path and isinstance(value, dict) and set(k.lower() for k in value) == {"active"}:
            values.append(next(iter(value.values())))
    for value in values:
        flag = (
            value
            if isinstance(value, bool)
            else str(value).strip().lower()
            if value is not None
            else None
        )
        if flag in (False, "false"):
            return "deactivated"
        if flag in (True, "true") and r.method == "PATCH":
            return "reactivated"
    return None


def _body_target(r: RequestFacts) -> Target | None:
    route = r.route or ""
    kind = (
        "User" if route.startswith("/Users") else "Group" if route.startswith("/Groups") else None
    )
    if kind is None:
        return None
    body = r.body if isinstance(r.body, dict) else {}
    name = body.get("userName" if kind == "User" else "displayName")
    display = body.get("displayName") if kind == "User" else None
    if r.query.get("filter") and name is None:
        name = _filter_value(r.query["filter"])
    if name is None and r.path_id is None:
        return None
    return Target(
        kind,
        r.path_id,
        name if isinstance(name, str) else None,
        display if isinstance(display, str) else None,
    )


def _filter_value(text: str) -> str | None:
    """The name in Okta's lookup filter (`userName eq "x"`, `displayName eq "x"`)."""
    attribute, sep, rest = text.partition(' eq "')
    if attribute.strip().lower() not in ("username", "displayname"):
        return None
    return rest[:-1].replace('\\"', '"') if sep and rest.endswith('"') else None


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
