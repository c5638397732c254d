"""Retry guidance, chosen by the row's code: what happened, what Okta does next, what to fix.

Rows are built the way the log builds them: the failure's code and arguments are the
ones the gateway's `ScimError`s and notes carry (gateway/scim/users.py, groups.py,
resource.py, auth.py, errors.py), `describe` turns the request into a Description,
and the guidance row is taken from that Description. Warnings the duplicate detector
decides inside SQL are built as that statement stores them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.provlog import events
from gateway.provlog.codes import CODES, auth_code
from gateway.provlog.events import RequestFacts, Target, describe
from gateway.provlog.guidance import (
    AUTH,
    OKTA_NOTHING,
    OKTA_RETRIES,
    OKTA_SUCCESS,
    OKTA_WAITS,
    OKTA_WAITS_GROUP,
    Guidance,
    Row,
    guidance_for,
    guidance_for_log,
)
from gateway.provlog.guidance import test_button as button_name
from gateway.scim import groups as scim_groups
from gateway.scim import users as scim_users
from gateway.scim.auth import AUTH_FAILURE_DETAILS
from gateway.scim.context import client_closed
from gateway.scim.errors import ScimError
from gateway.scim.wrong_url import diagnose_wrong_url
from gateway.settings import Settings
from gateway.store.provisioning_log import LogRow
from gateway.tokens import AuthFailure
from tests.payloads import okta_create_user, okta_deactivate, okta_reactivate, patch

USER_ID = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
OTHER_USER_ID = "5f0c2a8e-3d41-4c55-a0a7-0d6e1b9c4a12"
MEMBER_ID = "0d7c51a2-9c1f-4f0a-8d0e-3b9c6f1e2a77"
KEPT_MEMBER_ID = "8e2b1f3c-7a4d-4c9e-b1f0-5d6c7e8f9a01"
GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
SETTINGS = Settings(database_url="postgresql://unused/unused", public_base_url="https://x.test")
BASE_URL = SETTINGS.scim_base_url
GROUP_PUSH = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "members": []}
USER = Target("User", USER_ID, "jane@example.com", "Jane Doe")
TEAM = Target("Group", GROUP_ID, "Engineering")

_PATH_IDS = {"/Users/{id}": USER_ID, "/Groups/{id}": GROUP_ID}


def logged(
    method: str,
    route: str | None,
    *,
    status: int,
    error: ScimError | None = None,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    auth_failure: str | None = None,
    notes: tuple[tuple[str, str], ...] = (),
    facts: Mapping[str, Any] | None = None,
    target: Target | None = None,
    path_id: str | None = None,
) -> Row:
    """The guidance row of the log row the gateway writes for this request.

    `error` is the ScimError the handler raised (its code and arguments are what
    `entry.fail` records); `notes` are (code, text) pairs as `entry.note` takes them.
    """
    described = describe(
        RequestFacts(
            method=method,
            route=route,
            path_id=path_id or _PATH_IDS.get(route or ""),
            query=query or {},
            body=body,
            status=status,
            detail=error.detail if error else None,
            auth_failure=auth_failure,
            notes=tuple(text for _, text in notes),
            facts=facts or {},
            target=target,
            code=error.code if error else None,
            code_args=(error.args_for_log or None) if error else None,
            note_codes=tuple(code for code, _ in notes),
        )
    )
    t = described.target
    return Row(
        event=described.event,
        outcome=described.outcome,
        status=status,
        method=method,
        code=described.code,
        code_args=described.code_args or {},
        event_detail=described.detail,
        target_type=t.type if t else None,
        target_name=t.name if t else None,
        target_id=t.id if t else None,
    )


def guidance(row: Row, app_kind: str | None = None) -> Guidance:
    found = guidance_for(row, app_kind=app_kind)
    assert found is not None, row
    assert found.key == row.code
    assert found.what_happened.strip()
    assert found.okta_next.strip()
    assert found.fix_first.strip()
    assert found.as_dict() == {
        "key": found.key,
        "what_happened": found.what_happened,
        "okta_next": found.okta_next,
        "fix_first": found.fix_first,
    }
    return found


def texts(found: Guidance) -> str:
    return " ".join((found.what_happened, found.okta_next, found.fix_first))


# --- the errors the gateway raises, with the code and arguments it gives them ---------------


def missing_attribute(name: str) -> ScimError:
    return ScimError(
        400,
        f"Attribute '{name}' is required and missing or empty.",
        scim_type="invalidValue",
        code="missing_attribute",
        args={"attribute": name},
    )


def user_conflict(user_name: str, existing: str | None) -> ScimError:
    """users._conflict: the existing account's id and userName when one was found."""
    args: dict[str, Any] = {"user_name": user_name}
    if existing is not None:
        args |= {
            "existing_id": OTHER_USER_ID,
            "existing_user_name": existing,
            "same_case": existing == user_name,
        }
    return ScimError(
        409,
        f"userName {user_name!r} is already taken in this org by another user.",
        scim_type="uniqueness",
        code="duplicate_username",
        args=args,
    )


def unknown_members(unknown: list[str], not_applied: list[str]) -> ScimError:
    """groups._unknown_members: the values Okta sent that are no user, and the rest."""
    return ScimError(
        400,
        f"members: {', '.join(unknown)} is not a user of this org.",
        scim_type="invalidValue",
        code="unknown_member",
        args={
            "values": unknown,
            "not_applied": sorted(not_applied),
            "not_applied_count": len(not_applied),
        },
    )


def wrong_url(path: str) -> ScimError:
    """errors._from_http_exception for an unmatched path."""
    return ScimError(
        404,
        diagnose_wrong_url(path, SETTINGS),
        code="wrong_base_url",
        args={"base_url": BASE_URL, "path": path, "trailing_slash": path.endswith("/")},
    )


def auth_row(failure: AuthFailure, route: str | None = "/Users") -> Row:
    # auth.py records the failure's name and raises a 401 without a code of its own.
    return logged(
        "GET",
        route,
        status=401,
        error=ScimError(401, AUTH_FAILURE_DETAILS[failure]),
        query={"startIndex": "1", "count": "2"},
        auth_failure=failure.value,
    )


INTERNAL = ScimError(500, "Internal server error. The request id is 0123abcd; it is safe to retry.")
DB_DOWN = ScimError(503, "The database is unavailable; nothing was changed. Retry later.")
OKTA_ADD_MEMBER = patch({"op": "add", "path": "members", "value": [{"value": MEMBER_ID}]})


# One row per failure code, as the gateway produces it, with where Okta leaves the task.
FAILURES = [
    *(
        pytest.param(auth_row(failure), OKTA_WAITS, id=auth_code(failure.value))
        for failure in AuthFailure
    ),
    pytest.param(
        logged("GET", None, status=404, error=wrong_url("/scim/v2/Users")),
        OKTA_WAITS,
        id="wrong_base_url",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=400,
            error=missing_attribute("name.familyName"),
            body=okta_create_user(family=""),
        ),
        OKTA_WAITS,
        id="missing_attribute",
    ),
    pytest.param(
        logged(
            "PUT",
            "/Users/{id}",
            status=400,
            error=ScimError(
                400,
                "Attribute 'active' must be true or false.",
                scim_type="invalidValue",
                args={"attribute": "active"},
            ),
            body={**okta_create_user(), "active": 1},
        ),
        OKTA_WAITS,
        id="invalid_value",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=400,
            error=ScimError(400, "The body is not a JSON object.", scim_type="invalidSyntax"),
        ),
        OKTA_WAITS,
        id="invalid_syntax",
    ),
    pytest.param(
        logged(
            "GET",
            "/Users",
            status=400,
            error=ScimError(400, "Unterminated string at 12.", scim_type="invalidFilter"),
            query={"filter": 'userName eq "x'},
        ),
        OKTA_WAITS,
        id="invalid_filter",
    ),
    pytest.param(
        logged(
            "PATCH",
            "/Users/{id}",
            status=400,
            error=ScimError(400, "Operations[0]: no attribute 'nope'.", scim_type="invalidPath"),
            body=patch({"op": "replace", "path": "nope", "value": 1}),
        ),
        OKTA_WAITS,
        id="invalid_path",
    ),
    pytest.param(
        logged(
            "PATCH",
            "/Users/{id}",
            status=400,
            error=ScimError(400, "'id' is read-only.", scim_type="mutability"),
            body=patch({"op": "replace", "path": "id", "value": "x"}),
        ),
        OKTA_WAITS,
        id="mutability",
    ),
    pytest.param(
        logged(
            "PATCH",
            "/Groups/{id}",
            status=400,
            error=unknown_members([MEMBER_ID], []),
            body=OKTA_ADD_MEMBER,
            target=TEAM,
        ),
        OKTA_WAITS_GROUP,
        id="unknown_member",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=409,
            error=user_conflict("Jane@Example.com", "jane@example.com"),
            body=okta_create_user("Jane@Example.com"),
            target=Target("User", OTHER_USER_ID, "jane@example.com"),
        ),
        OKTA_WAITS,
        id="duplicate_username",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=409,
            error=ScimError(
                409,
                "externalId is taken.",
                code="duplicate_external_id",
                args={"existing_id": OTHER_USER_ID, "existing_user_name": "jd@example.com"},
            ),
            body=okta_create_user(),
        ),
        OKTA_WAITS,
        id="duplicate_external_id",
    ),
    pytest.param(
        logged(
            "POST",
            "/Groups",
            status=409,
            error=ScimError(
                409,
                "A team named 'Engineering' already exists.",
                scim_type="uniqueness",
                code="duplicate_team",
                args={
                    "name": "engineering",
                    "existing_id": GROUP_ID,
                    "existing_name": "Engineering",
                },
            ),
            body={**GROUP_PUSH, "displayName": "engineering"},
            target=TEAM,
        ),
        OKTA_WAITS_GROUP,
        id="duplicate_team",
    ),
    pytest.param(
        logged("GET", "/Users/{id}", status=404, error=scim_users._not_found(USER_ID)),
        OKTA_WAITS,
        id="user_not_found",
    ),
    pytest.param(
        logged(
            "PATCH",
            "/Groups/{id}",
            status=404,
            error=scim_groups._not_found(GROUP_ID),
            body=OKTA_ADD_MEMBER,
        ),
        OKTA_WAITS_GROUP,
        id="team_not_found",
    ),
    pytest.param(
        logged(
            "PUT",
            "/Users/{id}",
            status=412,
            error=ScimError(412, "The resource changed.", scim_type="invalidVers"),
            body=okta_create_user(),
        ),
        "Okta does not send If-Match; another client did. It should read the resource again.",
        id="precondition_failed",
    ),
    pytest.param(
        logged("PUT", None, status=405, error=ScimError(405, "PUT is not supported on /Users")),
        OKTA_WAITS,
        id="method_not_allowed",
    ),
    pytest.param(
        logged("PUT", "/Users/{id}", status=413, error=ScimError(413, "Too large.")),
        OKTA_WAITS,
        id="payload_too_large",
    ),
    pytest.param(
        logged("POST", "/Users", status=415, error=ScimError(415, "Not SCIM JSON.")),
        OKTA_WAITS,
        id="unsupported_media_type",
    ),
    pytest.param(
        logged("POST", "/Users", status=429, error=ScimError(429, "Slow down."), body={}),
        OKTA_RETRIES,
        id="rate_limited",
    ),
    pytest.param(
        logged("POST", "/Users", status=503, error=DB_DOWN, body=okta_create_user()),
        OKTA_WAITS,
        id="db_unavailable",
    ),
    pytest.param(
        logged("POST", "/Users", status=500, error=INTERNAL, body=okta_create_user()),
        OKTA_WAITS,
        id="server_error",
    ),
    pytest.param(
        logged("POST", "/Users", status=499, error=client_closed(), body=okta_create_user()),
        OKTA_WAITS,
        id="client_closed",
    ),
    pytest.param(
        logged(
            "PATCH",
            "/Users/{id}",
            status=400,
            error=ScimError(400, "Operations[0].op must be add, remove or replace."),
        ),
        OKTA_WAITS,
        id="bad_request",
    ),
]


def test_every_failure_code_is_covered() -> None:
    failures = {name for name, code in CODES.items() if code.kind == "failure"}
    assert {p.id for p in FAILURES} == failures


@pytest.mark.parametrize(("row", "okta_next"), FAILURES)
def test_every_failure_class_has_its_guidance(row: Row, okta_next: str) -> None:
    assert row.outcome == events.FAILURE
    found = guidance(row)
    assert found.okta_next == okta_next
    assert found.what_happened != found.fix_first


# --- authentication ---------------------------------------------------------------------------


def test_auth_table_covers_every_auth_failure() -> None:
    assert set(AUTH) == {auth_code(failure.value) for failure in AuthFailure}
    assert len({what for what, _ in AUTH.values()}) == len(AuthFailure)
    assert all("{test}" in fix for _, fix in AUTH.values())


@pytest.mark.parametrize("failure", list(AuthFailure), ids=lambda f: f.value)
@pytest.mark.parametrize(
    ("app_kind", "button", "not_button"),
    [
        ("aiw", "Test Connector Configuration", "Test API Credentials"),
        ("oin", "Test API Credentials", "Test Connector Configuration"),
    ],
)
def test_each_token_failure_names_the_apps_own_test_button(
    failure: AuthFailure, app_kind: str, button: str, not_button: str
) -> None:
    found = guidance(auth_row(failure), app_kind)
    what, fix = AUTH[auth_code(failure.value)]
    assert found.key == f"token_{failure.value}"
    assert found.what_happened == what
    assert found.fix_first == fix.format(test=button)
    assert button in found.fix_first
    assert not_button not in texts(found)
    assert found.okta_next == OKTA_WAITS


def test_an_unknown_app_kind_names_both_buttons() -> None:
    assert button_name(None) == (
        "Test API Credentials (Test Connector Configuration in an App Integration Wizard app)"
    )
    found = guidance(auth_row(AuthFailure.REVOKED))
    assert found.fix_first == (
        "Generate a new token in Settings → SCIM, paste it in Okta → Provisioning → "
        "Integration, click Test API Credentials (Test Connector Configuration in an App "
        "Integration Wizard app), then Save."
    )


def test_the_same_auth_failure_gets_the_same_guidance_on_any_route() -> None:
    rows = [auth_row(AuthFailure.EXPIRED, route) for route in ("/Users", "/Groups/{id}", None)]
    assert {r.event for r in rows} == {events.AUTHENTICATION_FAILED}
    assert len({guidance(r, "oin") for r in rows}) == 1


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (AuthFailure.TRUNCATED, "Copy the token again from Settings → SCIM"),
        (AuthFailure.TOO_LONG, "Copy the token again and paste it exactly"),
        (AuthFailure.WRAPPED, "Copy the token again and paste it without surrounding"),
        (AuthFailure.MISTYPED, "Paste the token rather than typing it"),
        (AuthFailure.DOUBLE_PREFIX, "Paste only the token"),
        (AuthFailure.BASIC_SCHEME, "Switch the Okta app to HTTP Header or OAuth Bearer Token"),
        (AuthFailure.MISSING, "Paste a SCIM token"),
        (AuthFailure.REVOKED, "Generate a new token in Settings → SCIM"),
        (AuthFailure.EXPIRED, "Generate a new token in Settings → SCIM"),
        (AuthFailure.UNKNOWN, "Generate a new token in Settings → SCIM"),
        (AuthFailure.NOT_A_SCIM_TOKEN, "Generate a token in Settings → SCIM"),
    ],
    ids=lambda v: v.value if isinstance(v, AuthFailure) else "",
)
def test_each_token_failure_has_its_own_fix(failure: AuthFailure, words: str) -> None:
    assert guidance(auth_row(failure), "oin").fix_first.startswith(words)


# --- wrong base URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_kind", "button"),
    [("aiw", "Test Connector Configuration"), ("oin", "Test API Credentials")],
)
@pytest.mark.parametrize("path", ["/scim/v2/Users", "/api/sch/scim/v2//Users", "/Users/"])
def test_wrong_base_url_names_the_exact_base_url(path: str, app_kind: str, button: str) -> None:
    row = logged("GET", None, status=404, error=wrong_url(path))
    assert row.event == events.WRONG_BASE_URL
    found = guidance(row, app_kind)
    assert found == Guidance(
        "wrong_base_url",
        "Okta called a URL that is not a SCIM endpoint: the base URL in Okta is wrong.",
        OKTA_WAITS,
        "Set the SCIM connector base URL in Okta → Provisioning → Integration to exactly "
        f"https://x.test/api/sch/scim/v2, click {button}, then retry.",
    )


def test_wrong_base_url_without_arguments_points_to_settings() -> None:
    found = guidance(logged("GET", None, status=404), "oin")
    assert found.fix_first.startswith(
        "Set the SCIM connector base URL in Okta → Provisioning → Integration to exactly "
        "the base URL shown in Settings → SCIM, click Test API Credentials"
    )


# --- conflicts --------------------------------------------------------------------------------


def test_409_in_another_case_names_the_existing_account() -> None:
    row = logged(
        "POST",
        "/Users",
        status=409,
        error=user_conflict("Jane@Example.com", "jane@example.com"),
        body=okta_create_user("Jane@Example.com"),
        # users._conflict points the row at the account that exists.
        target=Target("User", OTHER_USER_ID, "jane@example.com"),
    )
    assert (row.target_id, row.target_name) == (OTHER_USER_ID, "jane@example.com")
    found = guidance(row)
    which = f"user jane@example.com ({OTHER_USER_ID})"
    assert found == Guidance(
        "duplicate_username",
        f"The user already exists here as {which}, with the same userName in another case. "
        "Okta looked it up by a different value, usually because the Application username "
        "format (Sign On tab) changed, e.g. from email to Okta username.",
        OKTA_WAITS,
        "Make the Application username format match how the user was first created (or "
        f"rename {which} in SecureCodingHub), then Retry Selected; Okta will link it.",
    )


def test_409_from_a_same_case_race_says_so() -> None:
    row = logged(
        "POST",
        "/Users",
        status=409,
        error=user_conflict("jane@example.com", "jane@example.com"),
        body=okta_create_user("jane@example.com"),
        target=Target("User", OTHER_USER_ID, "jane@example.com"),
    )
    found = guidance(row)
    assert found == Guidance(
        "duplicate_username",
        f"user jane@example.com ({OTHER_USER_ID}) already exists with exactly this userName: "
        "two creates of the same user raced (Okta sent it twice, or its lookup ran before the "
        "first create ended).",
        OKTA_WAITS,
        "Retry Selected: Okta looks the user up first and links the existing account.",
    )
    assert "username format" not in texts(found).lower()
    assert "changed" not in texts(found)


def test_409_when_the_existing_account_is_gone_by_the_lookup() -> None:
    found = guidance(
        logged(
            "POST",
            "/Users",
            status=409,
            error=user_conflict("jane@example.com", None),
            body=okta_create_user("jane@example.com"),
        )
    )
    assert "The user already exists here as an existing account" in found.what_happened
    assert OTHER_USER_ID not in texts(found)


def test_duplicate_external_id_names_the_other_account() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "duplicate_external_id")
    assert isinstance(row, Row)
    assert guidance(row).what_happened == (
        "Another user (jd@example.com) already has this externalId: one Okta user mapped to "
        "two accounts."
    )


def test_duplicate_team_is_linked_not_created() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "duplicate_team")
    assert isinstance(row, Row)
    found = guidance(row)
    assert found.what_happened == f"A team named Engineering ({GROUP_ID}) already exists here."
    assert found.okta_next == OKTA_WAITS_GROUP
    assert "Link Group" in found.fix_first


# --- not found --------------------------------------------------------------------------------


def test_delete_group_404_says_nothing_is_left_to_do() -> None:
    row = logged("DELETE", "/Groups/{id}", status=404, error=scim_groups._not_found(GROUP_ID))
    assert row.event == events.DELETE_GROUP
    assert guidance(row) == Guidance(
        "team_not_found",
        f"Okta deleted team {GROUP_ID}, which was already gone here.",
        OKTA_NOTHING,
        "Nothing is left to do.",
    )


def test_delete_user_404_says_nothing_is_left_to_do() -> None:
    row = logged("DELETE", "/Users/{id}", status=404, error=scim_users._not_found(USER_ID))
    assert row.event == events.DELETE_USER
    found = guidance(row)
    assert (found.okta_next, found.fix_first) == (OKTA_NOTHING, "Nothing is left to do.")


DEACTIVATIONS = [
    pytest.param("PATCH", okta_deactivate(), USER_ID, USER_ID, id="oin-patch"),
    # An App Integration Wizard app deactivates by PUT; the body names the user.
    pytest.param(
        "PUT",
        {**okta_create_user(), "active": False},
        USER_ID,
        f"jane@example.com ({USER_ID})",
        id="aiw-put",
    ),
    # An id that is not a UUID fails before the handler looks anything up.
    pytest.param("PATCH", okta_deactivate(), "not-a-uuid", "not-a-uuid", id="bad-id"),
]


@pytest.mark.parametrize(("method", "body", "raw_id", "who"), DEACTIVATIONS)
def test_deactivate_user_404_never_advises_reprovisioning(
    method: str, body: dict[str, Any], raw_id: str, who: str
) -> None:
    row = logged(
        method,
        "/Users/{id}",
        status=404,
        error=scim_users._not_found(raw_id),
        body=body,
        path_id=raw_id,
    )
    assert row.event == events.DEACTIVATE_USER
    found = guidance(row)
    assert found.what_happened == (
        f"Okta deactivated user {who}, which does not exist here (deleted in SecureCodingHub, "
        "or created in another org): the person has no access here."
    )
    assert found.fix_first == (
        "Nothing to restore: dismiss the task in Okta (Dashboard → Tasks). Do not "
        "re-provision a user you meant to deactivate."
    )
    for advice in ("assign it again", "Unassign", "creates it anew", "Push Now"):
        assert advice not in texts(found)


def test_deactivate_user_404_does_not_point_to_provision_user() -> None:
    row = logged(
        "PATCH",
        "/Users/{id}",
        status=404,
        error=scim_users._not_found(USER_ID),
        body=okta_deactivate(),
    )
    assert "Provision User" not in texts(guidance(row))


def test_other_user_404_unassigns_and_reassigns() -> None:
    row = logged(
        "PATCH",
        "/Users/{id}",
        status=404,
        error=scim_users._not_found(USER_ID),
        body=patch({"op": "replace", "value": {"displayName": "J"}}),
    )
    assert row.event == events.UPDATE_USER
    found = guidance(row)
    assert found.what_happened == (
        f"Okta refers to user {USER_ID}, which does not exist here (deleted in SecureCodingHub, "
        "or created in another org): Okta shows 'Matching user not found'."
    )
    assert found.fix_first == (
        "Unassign the user from the app in Okta and assign it again, so Okta creates it anew."
    )


def test_other_team_404_is_unlinked_and_pushed_again() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "team_not_found")
    assert isinstance(row, Row)
    found = guidance(row)
    assert found.okta_next == OKTA_WAITS_GROUP
    assert found.fix_first == (
        "In Okta → Push Groups, unlink the group choosing 'Leave the group in the target app', "
        "then push it again (Push Now)."
    )


# --- team members -----------------------------------------------------------------------------


def test_unknown_member_names_the_value_and_what_was_not_applied() -> None:
    body = patch(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": MEMBER_ID}, {"value": KEPT_MEMBER_ID}],
        },
        {"op": "remove", "path": f'members[value eq "{USER_ID}"]'},
    )
    row = logged(
        "PATCH",
        "/Groups/{id}",
        status=400,
        error=unknown_members([MEMBER_ID], [KEPT_MEMBER_ID, USER_ID]),
        body=body,
        target=TEAM,
    )
    assert row.event == events.PUSH_GROUP_MEMBERS
    found = guidance(row)
    assert found == Guidance(
        "unknown_member",
        f"Okta sent {MEMBER_ID} as a member of team Engineering ({GROUP_ID}), but no such user "
        "exists in this org (not pushed yet, or deleted here). Nothing of this request was "
        f"applied: 2 other member changes in it ({USER_ID}, {KEPT_MEMBER_ID}) were not made "
        "either.",
        OKTA_WAITS_GROUP,
        "Assign that person to the app in Okta so the user is created (or remove them from the "
        "Okta group), then Push Groups → Retry All Groups.",
    )
    assert "Retry Selected" not in texts(found)


def test_unknown_member_alone_in_its_request() -> None:
    row = logged(
        "POST",
        "/Groups",
        status=400,
        error=unknown_members([MEMBER_ID], []),
        body={**GROUP_PUSH, "displayName": "Engineering", "members": [{"value": MEMBER_ID}]},
    )
    assert row.event == events.PUSH_GROUP
    found = guidance(row)
    assert found.what_happened == (
        f"Okta sent {MEMBER_ID} as a member of team Engineering, but no such user exists in "
        "this org (not pushed yet, or deleted here). Nothing of this request was applied."
    )
    assert found.fix_first.endswith("Push Groups → Retry All Groups.")


# --- other failures ---------------------------------------------------------------------------


def test_missing_attribute_names_it_the_user_and_the_mapping_page() -> None:
    row = logged(
        "POST",
        "/Users",
        status=400,
        error=missing_attribute("name.familyName"),
        body=okta_create_user("jane@example.com", family=""),
    )
    # A failed create carries the userName it was about.
    assert row.target_name == "jane@example.com"
    assert guidance(row) == Guidance(
        "missing_attribute",
        "SecureCodingHub refused user jane@example.com because 'name.familyName' is missing or "
        "empty.",
        OKTA_WAITS,
        "In Okta → Provisioning → To App → attribute mappings, map 'name.familyName', and "
        "check that the assigned user has a value for it in Okta; then Retry Selected.",
    )


def test_invalid_value_names_the_attribute_and_the_user() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "invalid_value")
    assert isinstance(row, Row)
    assert guidance(row).what_happened == (
        f"SecureCodingHub did not accept 'active' for user jane@example.com ({USER_ID}): "
        "see the reason."
    )


def test_rate_limited_okta_retries_by_itself() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "rate_limited")
    assert isinstance(row, Row)
    assert row.event == events.RATE_LIMITED
    found = guidance(row)
    assert found.okta_next == OKTA_RETRIES
    assert found.fix_first == "Nothing, unless it keeps happening."


def test_client_closed_is_not_a_server_error() -> None:
    row = next(p.values[0] for p in FAILURES if p.id == "client_closed")
    assert isinstance(row, Row)
    assert row.event == events.CREATE_USER
    found = guidance(row)
    assert "closed the connection" in found.what_happened
    assert "Server error" not in texts(found)


IDEMPOTENT = "This request is idempotent: retrying it cannot apply it twice."
LINKS = (
    "Okta looks the user or group up before creating it, so a retry links instead of duplicating."
)


@pytest.mark.parametrize("error", [INTERNAL, DB_DOWN], ids=["server_error", "db_unavailable"])
@pytest.mark.parametrize(
    ("method", "route", "body", "facts", "safe", "waits"),
    [
        pytest.param("POST", "/Users", okta_create_user(), None, LINKS, OKTA_WAITS, id="create"),
        pytest.param(
            "POST",
            "/Groups",
            {**GROUP_PUSH, "displayName": "Eng"},
            None,
            LINKS,
            OKTA_WAITS_GROUP,
            id="push-group",
        ),
        pytest.param("GET", "/Users/{id}", None, None, IDEMPOTENT, OKTA_WAITS, id="read-user"),
        pytest.param(
            "PUT", "/Users/{id}", okta_create_user(), None, IDEMPOTENT, OKTA_WAITS, id="put-user"
        ),
        pytest.param("DELETE", "/Users/{id}", None, None, IDEMPOTENT, OKTA_WAITS, id="del-user"),
        pytest.param(
            "PUT", "/Groups/{id}", GROUP_PUSH, None, IDEMPOTENT, OKTA_WAITS_GROUP, id="put-group"
        ),
        pytest.param(
            "DELETE", "/Groups/{id}", None, None, IDEMPOTENT, OKTA_WAITS_GROUP, id="del-group"
        ),
        pytest.param(
            "PATCH", "/Users/{id}", okta_deactivate(), None, IDEMPOTENT, OKTA_WAITS, id="deact"
        ),
        pytest.param(
            "PATCH",
            "/Users/{id}",
            okta_reactivate(),
            {"active_change": "reactivated"},
            IDEMPOTENT,
            OKTA_WAITS,
            id="react",
        ),
        pytest.param(
            "PATCH", "/Groups/{id}", OKTA_ADD_MEMBER, None, IDEMPOTENT, OKTA_WAITS_GROUP, id="add"
        ),
        pytest.param(
            "PATCH",
            "/Groups/{id}",
            patch({"op": "replace", "path": "members", "value": []}),
            None,
            IDEMPOTENT,
            OKTA_WAITS_GROUP,
            id="replace-members",
        ),
    ],
)
def test_server_errors_are_safe_to_retry(
    error: ScimError,
    method: str,
    route: str,
    body: Any,
    facts: Mapping[str, Any] | None,
    safe: str,
    waits: str,
) -> None:
    row = logged(method, route, status=error.status, error=error, body=body, facts=facts)
    assert row.event == events.SERVER_ERROR
    found = guidance(row)
    assert found.what_happened == (
        "SecureCodingHub's database was unavailable; nothing was changed."
        if error is DB_DOWN
        else "SecureCodingHub failed while handling the request; nothing was changed."
    )
    assert found.okta_next == waits
    assert (
        found.fix_first == f"It is safe to retry: {safe} If it fails again, report the request id."
    )


# --- warnings ---------------------------------------------------------------------------------


def duplicate_account(user_name: str) -> Row:
    """A create the duplicate detector (with_duplicate_warning, in SQL) turned into a Warning."""
    row = logged(
        "POST",
        "/Users",
        status=201,
        body=okta_create_user(user_name),
        target=Target("User", USER_ID, user_name, "Jane Doe"),
    )
    assert row.outcome == events.SUCCESS
    note = (
        f"possible duplicate account: user jdoe ({OTHER_USER_ID}) has {user_name.casefold()} "
        "as its email"
    )
    return dataclasses.replace(
        row,
        outcome=events.WARNING,
        code="duplicate_account",
        code_args={
            "other_id": OTHER_USER_ID,
            "other_user_name": "jdoe",
            "email": user_name.casefold(),
            "matched_as": "email",
        },
        event_detail=note,
    )


def test_duplicate_account_warning_names_both_accounts_sso_and_the_username_format() -> None:
    found = guidance(duplicate_account("jane@example.com"))
    other = f"user jdoe ({OTHER_USER_ID})"
    assert found == Guidance(
        "duplicate_account",
        f"User jane@example.com ({USER_ID}) and {other} look like one person with two "
        "accounts: jane@example.com is the other account's email. Single sign-on matches "
        "people by email, so they will sign in to only one of the two, and their training "
        "history is split.",
        OKTA_SUCCESS,
        "Check Okta's Sign On → Application username format (e.g. userPrincipalName vs mail): "
        "keep the format the first account was created with, then delete the newer account "
        "here, or merge them, and unassign/reassign the user in Okta so it links "
        f"jdoe ({OTHER_USER_ID}).",
    )


def test_duplicate_account_warning_keeps_the_usernames_case() -> None:
    found = guidance(duplicate_account("Jane.Doe@Example.com"))
    assert found.what_happened.startswith(f"User Jane.Doe@Example.com ({USER_ID}) and user jdoe")


def test_duplicate_account_from_a_stored_row() -> None:
    """The dashboard and CLI read guidance from the stored row."""
    row = duplicate_account("jane@example.com")
    stored = LogRow(
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        request_id="r",
        method="POST",
        path="/Users",
        query="",
        status=201,
        duration_ms=1.0,
        event=row.event,
        event_detail=row.event_detail,
        outcome=row.outcome,
        code=row.code,
        code_args=dict(row.code_args),
        target_type="User",
        target_id=uuid.UUID(USER_ID),
        target_name="jane@example.com",
    )
    assert guidance_for_log(stored) == guidance(row)


def test_member_not_present_names_the_team() -> None:
    row = logged(
        "PATCH",
        "/Groups/{id}",
        status=204,
        body=patch({"op": "remove", "path": f'members[value eq "{MEMBER_ID}"]'}),
        notes=(("member_not_present", f"remove matched no member: {MEMBER_ID}"),),
        target=TEAM,
    )
    assert row.outcome == events.WARNING
    assert guidance(row) == Guidance(
        "member_not_present",
        f"Okta removed values from team Engineering ({GROUP_ID}) that were not there: "
        f"add 0 / remove 1; remove matched no member: {MEMBER_ID}",
        OKTA_SUCCESS,
        "Nothing, unless memberships look wrong: then push the group again (Push Now).",
    )


def test_value_not_present_names_the_user() -> None:
    row = logged(
        "PATCH",
        "/Users/{id}",
        status=200,
        body=patch({"op": "remove", "path": 'emails[value eq "old@example.com"]'}),
        notes=(("value_not_present", "Operations[0]: remove matched no emails value"),),
        target=USER,
    )
    assert row.outcome == events.WARNING
    found = guidance(row)
    assert found.what_happened == (
        f"Okta removed values from user jane@example.com ({USER_ID}) that were not there: "
        "PATCH; Operations[0]: remove matched no emails value"
    )


def test_unchanged_names_the_user() -> None:
    row = logged(
        "PUT",
        "/Users/{id}",
        status=200,
        body=okta_create_user(),
        notes=(("unchanged", "no change: the request matched the stored user"),),
        target=USER,
    )
    found = guidance(row)
    assert found == Guidance(
        "unchanged",
        f"Okta sent user jane@example.com ({USER_ID}) exactly as stored: nothing changed.",
        OKTA_SUCCESS,
        "Nothing. Many such updates mean Okta re-sends users on every import; that is harmless.",
    )


def test_ignored_attributes_name_the_user_and_what_was_dropped() -> None:
    row = logged(
        "POST",
        "/Users",
        status=201,
        body=okta_create_user(),
        notes=(
            (
                "attributes_ignored",
                "ignored attributes under urn:okta:custom:user:1.0 (schema not served)",
            ),
            ("primary_kept", "emails: more than one primary value; kept the first"),
        ),
        target=USER,
    )
    assert row.outcome == events.WARNING
    found = guidance(row)
    assert found.key == "attributes_ignored"
    assert found.what_happened == (
        f"Okta's request for user jane@example.com ({USER_ID}) succeeded but did not do "
        "everything it asked: ignored attributes under urn:okta:custom:user:1.0 (schema not "
        "served)"
    )
    assert found.okta_next == OKTA_SUCCESS
    assert "Provisioning → To App" in found.fix_first


# --- successes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            logged("GET", "/Users", status=200, query={"startIndex": "1", "count": "2"}),
            id="test-api-credentials",
        ),
        pytest.param(
            logged("POST", "/Users", status=201, body=okta_create_user()), id="create-user"
        ),
        pytest.param(
            logged(
                "PATCH",
                "/Users/{id}",
                status=200,
                body=okta_deactivate(),
                facts={"active_change": "deactivated"},
            ),
            id="deactivate",
        ),
        pytest.param(
            logged(
                "PATCH",
                "/Groups/{id}",
                status=204,
                body=patch({"op": "replace", "value": {"id": GROUP_ID, "displayName": "Eng"}}),
                notes=(("unchanged_team", "no change: the request matched the stored team"),),
            ),
            id="spurious-rename",
        ),
        pytest.param(logged("DELETE", "/Groups/{id}", status=204), id="delete-group"),
        pytest.param(logged("GET", "/Users/{id}", status=304), id="not-modified"),
    ],
)
def test_successes_get_no_guidance(row: Row) -> None:
    assert row.outcome == events.SUCCESS
    assert row.code is None
    assert guidance_for(row) is None


def test_unknown_member_with_one_other_change_reads_right() -> None:
    row = logged(
        "PATCH",
        "/Groups/{id}",
        status=400,
        error=unknown_members([MEMBER_ID], [KEPT_MEMBER_ID]),
        body=patch(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": MEMBER_ID}, {"value": KEPT_MEMBER_ID}],
            }
        ),
        target=TEAM,
    )
    assert guidance(row).what_happened.endswith(
        f"Nothing of this request was applied: 1 other member change in it ({KEPT_MEMBER_ID}) "
        "was not made either."
    )
