"""Retry guidance: every failure class says what happened, what Okta does next, what to fix.

Rows are built the way the log builds them: `describe` names the request, and the
row carries its event, outcome and event detail next to the handler's detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway import events
from gateway.events import RequestFacts, describe
from gateway.guidance import AUTH, OKTA_RETRIES, OKTA_WAITS, Guidance, Row, guidance_for
from gateway.scim.auth import AUTH_FAILURE_DETAILS
from gateway.tokens import AuthFailure
from tests.payloads import okta_create_user, okta_deactivate, okta_reactivate, patch

USER_ID = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
OTHER_USER_ID = "5f0c2a8e-3d41-4c55-a0a7-0d6e1b9c4a12"
GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
BASE_URL = "https://x/api/sch/scim/v2"

MISSING_FAMILY_NAME = (
    "Attribute 'name.familyName' is required and missing or empty. In Okta, check the "
    "name.familyName mapping under Provisioning → To App and that the user has a value."
)
ACTIVE_NOT_BOOLEAN = "Attribute 'active' must be true or false, not a number."
WRONG_URL = (
    "No SCIM endpoint at /scim/v2/Users: the path is not under the SCIM base path "
    f"/api/sch/scim/v2. The SCIM connector base URL to paste into Okta is {BASE_URL} "
    "(no trailing slash); Okta adds /Users and /Groups itself."
)
USER_NOT_FOUND = (
    f"User {USER_ID} not found in this org. If Okta still links to it, unassign and reassign "
    "the user in Okta so it is created again."
)
GROUP_NOT_FOUND = (
    f"Group {GROUP_ID} not found in this org. In Okta, unlink the pushed group (Push Groups → "
    "Unlink, 'Leave the group') and push it again."
)


def user_conflict(user_name: str, existing: str | None = OTHER_USER_ID) -> str:
    which = f" (id {existing})" if existing else ""
    return (
        f"userName {user_name!r} is already taken in this org by another user{which}; "
        "userName is unique case-insensitively. Link that user in Okta, or change the "
        "username format under Sign On → Application username format."
    )


TEAM_CONFLICT = (
    f"A team named 'Engineering' already exists in this org (id {GROUP_ID}); team names are "
    "unique case-insensitively. In Okta, link the existing group (Push Groups → Link Group) "
    "instead of creating one."
)
INTERNAL = "Internal server error. The request id is 0123abcd; it is safe to retry."


def logged(
    method: str,
    route: str | None,
    *,
    status: int,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    detail: str | None = None,
    scim_type: str | None = None,
    auth_failure: str | None = None,
    notes: tuple[str, ...] = (),
    facts: Mapping[str, Any] | None = None,
) -> Row:
    """The guidance-relevant part of the log row the gateway writes for this request."""
    path_id = None
    if route == "/Users/{id}":
        path_id = USER_ID
    elif route == "/Groups/{id}":
        path_id = GROUP_ID
    described = describe(
        RequestFacts(
            method=method,
            route=route,
            path_id=path_id,
            query=query or {},
            body=body,
            status=status,
            detail=detail,
            auth_failure=auth_failure,
            notes=notes,
            facts=facts or {},
            target=None,
        )
    )
    return Row(
        event=described.event,
        outcome=described.outcome,
        status=status,
        method=method,
        scim_type=scim_type,
        detail=detail,
        auth_failure=auth_failure,
        notes=notes,
        event_detail=described.detail,
    )


def guidance(row: Row) -> Guidance:
    found = guidance_for(row)
    assert found is not None
    assert found.key
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


def auth_row(failure: AuthFailure, route: str | None = "/Users") -> Row:
    return logged(
        "GET",
        route,
        status=401,
        query={"startIndex": "1", "count": "2"},
        detail=AUTH_FAILURE_DETAILS[failure],
        auth_failure=failure.value,
    )


GROUP_PUSH = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "members": []}
OKTA_ADD_MEMBER = patch({"op": "add", "path": "members", "value": [{"value": USER_ID}]})

# One row per failure class, with the key its guidance must carry.
FAILURES = [
    pytest.param(auth_row(AuthFailure.REVOKED), "auth.revoked", id="401-revoked"),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=400,
            body=okta_create_user(family=""),
            detail=MISSING_FAMILY_NAME,
            scim_type="invalidValue",
        ),
        "missing_attribute",
        id="400-missing-attribute",
    ),
    pytest.param(
        logged(
            "PUT",
            "/Users/{id}",
            status=400,
            body={**okta_create_user(), "active": 1},
            detail=ACTIVE_NOT_BOOLEAN,
            scim_type="invalidValue",
        ),
        "invalid_format",
        id="400-invalid-format",
    ),
    pytest.param(
        logged(
            "GET",
            "/Users",
            status=400,
            query={"filter": 'userName eq "x'},
            detail="Unterminated string at position 12.",
            scim_type="invalidFilter",
        ),
        "bad_request.invalidFilter",
        id="400-other",
    ),
    pytest.param(
        logged("GET", None, status=404, detail=WRONG_URL), "wrong_base_url", id="404-wrong-base-url"
    ),
    pytest.param(
        logged("PATCH", "/Users/{id}", status=404, body=okta_deactivate(), detail=USER_NOT_FOUND),
        "user_not_found",
        id="404-user",
    ),
    pytest.param(
        logged("PATCH", "/Groups/{id}", status=404, body=OKTA_ADD_MEMBER, detail=GROUP_NOT_FOUND),
        "group_not_found",
        id="404-group",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=409,
            body=okta_create_user("Jane@Example.com"),
            detail=user_conflict("Jane@Example.com"),
            scim_type="uniqueness",
        ),
        "duplicate_user",
        id="409-user",
    ),
    pytest.param(
        logged(
            "POST",
            "/Groups",
            status=409,
            body={**GROUP_PUSH, "displayName": "Engineering"},
            detail=TEAM_CONFLICT,
            scim_type="uniqueness",
        ),
        "duplicate_group",
        id="409-team",
    ),
    pytest.param(
        logged(
            "PUT",
            "/Users/{id}",
            status=413,
            detail="The request body is larger than this server accepts (1048576 bytes).",
        ),
        "http_413",
        id="413",
    ),
    pytest.param(
        logged(
            "POST",
            "/Users",
            status=415,
            detail="Unsupported media type 'text/plain': send the body as application/scim+json.",
        ),
        "http_415",
        id="415",
    ),
    pytest.param(
        logged(
            "PUT",
            None,
            status=405,
            detail="PUT is not supported on /scim/v2/Users; allowed: GET, POST",
        ),
        "http_405",
        id="405-other",
    ),
    pytest.param(
        logged("POST", "/Users", status=500, body=okta_create_user(), detail=INTERNAL),
        "server_error",
        id="500",
    ),
    pytest.param(
        logged("PUT", "/Groups/{id}", status=503, body=GROUP_PUSH, detail="Service Unavailable"),
        "server_error",
        id="503",
    ),
]


@pytest.mark.parametrize(("row", "key"), FAILURES)
def test_every_failure_class_has_its_guidance(row: Row, key: str) -> None:
    assert row.outcome == events.FAILURE
    assert guidance(row).key == key


@pytest.mark.parametrize(("row", "key"), FAILURES)
def test_okta_waits_for_retry_selected_unless_rate_limited(row: Row, key: str) -> None:
    found = guidance(row)
    assert found.okta_next == OKTA_WAITS
    assert "Retry Selected" in found.okta_next
    assert "does not retry this by itself" in found.okta_next


def test_the_same_failure_always_gets_the_same_key() -> None:
    rows = [auth_row(AuthFailure.EXPIRED, route) for route in ("/Users", "/Groups/{id}", None)]
    assert {guidance(row).key for row in rows} == {"auth.expired"}


def test_auth_table_covers_every_auth_failure() -> None:
    assert len(AuthFailure) == 11
    assert set(AUTH) == {failure.value for failure in AuthFailure}
    assert len({what for what, _ in AUTH.values()}) == 11


@pytest.mark.parametrize("failure", list(AuthFailure), ids=lambda f: f.value)
def test_each_auth_failure(failure: AuthFailure) -> None:
    found = guidance(auth_row(failure))
    assert found.key == f"auth.{failure.value}"
    assert (found.what_happened, found.fix_first) == AUTH[failure.value]
    assert found.okta_next == OKTA_WAITS


@pytest.mark.parametrize(
    "failure",
    [AuthFailure.REVOKED, AuthFailure.EXPIRED, AuthFailure.UNKNOWN, AuthFailure.NOT_A_SCIM_TOKEN],
    ids=lambda f: f.value,
)
def test_a_dead_token_needs_a_new_one(failure: AuthFailure) -> None:
    fix = guidance(auth_row(failure)).fix_first
    steps = [
        "Generate a new token in Settings → SCIM",
        "paste it in Okta → Provisioning → Integration",
        "Test API Credentials",
    ]
    positions = [fix.find(step) for step in steps]
    assert -1 not in positions, fix
    assert positions == sorted(positions), fix


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        pytest.param(AuthFailure.TRUNCATED, "Copy the token again", id="truncated"),
        pytest.param(AuthFailure.TOO_LONG, "Copy the token again", id="too_long"),
        pytest.param(AuthFailure.WRAPPED, "Copy the token again", id="wrapped"),
        pytest.param(AuthFailure.MISTYPED, "Paste the token rather than typing it", id="mistyped"),
        pytest.param(AuthFailure.DOUBLE_PREFIX, "Paste only the token", id="double_prefix"),
        pytest.param(AuthFailure.BASIC_SCHEME, "HTTP Header or OAuth Bearer Token", id="basic"),
        pytest.param(AuthFailure.MISSING, "Paste a SCIM token", id="missing"),
    ],
)
def test_a_mangled_token_needs_pasting_again(failure: AuthFailure, words: str) -> None:
    assert words in guidance(auth_row(failure)).fix_first


def test_missing_attribute_names_it_and_the_mapping_page() -> None:
    found = guidance(
        logged(
            "POST",
            "/Users",
            status=400,
            body=okta_create_user(family=""),
            detail=MISSING_FAMILY_NAME,
            scim_type="invalidValue",
        )
    )
    assert "'name.familyName'" in found.what_happened
    assert "'name.familyName'" in found.fix_first
    assert "Provisioning → To App" in found.fix_first
    assert "Retry Selected" in found.fix_first


def test_invalid_format_names_the_attribute_and_the_expected_form() -> None:
    found = guidance(
        logged(
            "PUT", "/Users/{id}", status=400, detail=ACTIVE_NOT_BOOLEAN, scim_type="invalidValue"
        )
    )
    assert found.what_happened == "'active' arrived in the wrong form: it must be true or false."
    assert "'active'" in found.fix_first
    assert "true or false" in found.fix_first


def test_other_bad_requests_quote_the_detail() -> None:
    found = guidance(
        logged("PATCH", "/Users/{id}", status=400, detail="Operations[0].op must be add.")
    )
    assert found.key == "bad_request.other"
    assert "Operations[0].op must be add." in found.what_happened


def test_wrong_base_url_names_the_exact_base_url() -> None:
    found = guidance(logged("GET", None, status=404, detail=WRONG_URL))
    assert f"to exactly {BASE_URL}," in found.fix_first
    assert "Okta → Provisioning → Integration" in found.fix_first
    assert "Test API Credentials" in found.fix_first


def test_wrong_base_url_without_a_detail_points_to_settings() -> None:
    found = guidance(logged("GET", None, status=404))
    assert found.key == "wrong_base_url"
    assert "the base URL shown in Settings → SCIM" in found.fix_first


def test_unknown_user_is_unassigned_and_reassigned() -> None:
    found = guidance(logged("PUT", "/Users/{id}", status=404, detail=USER_NOT_FOUND))
    assert "Matching user not found" in found.what_happened
    assert "Unassign the user" in found.fix_first
    assert "assign it again" in found.fix_first


def test_unknown_group_is_unlinked_left_and_pushed_again() -> None:
    found = guidance(logged("DELETE", "/Groups/{id}", status=404, detail=GROUP_NOT_FOUND))
    assert "unlink the group" in found.fix_first
    assert "Leave the group in the target app" in found.fix_first
    assert "push it again" in found.fix_first


@pytest.mark.parametrize(
    "user_name",
    [
        pytest.param("Jane@Example.com", id="plain"),
        # The word "team" inside a userName does not make the conflict a team's.
        pytest.param("team.lead@example.com", id="user-name-containing-team"),
    ],
)
def test_duplicate_user_names_the_account_and_the_username_format(user_name: str) -> None:
    found = guidance(
        logged(
            "POST",
            "/Users",
            status=409,
            body=okta_create_user(user_name),
            detail=user_conflict(user_name),
            scim_type="uniqueness",
        )
    )
    assert found.key == "duplicate_user"
    assert f"account {OTHER_USER_ID}" in found.what_happened
    assert f"account {OTHER_USER_ID}" in found.fix_first
    assert "Application username format" in found.what_happened
    assert "Application username format" in found.fix_first


def test_duplicate_user_without_an_id() -> None:
    found = guidance(
        logged("POST", "/Users", status=409, detail=user_conflict("jane@example.com", None))
    )
    assert found.key == "duplicate_user"
    assert "an existing account" in found.what_happened


def test_duplicate_team_is_linked_not_created() -> None:
    found = guidance(logged("POST", "/Groups", status=409, detail=TEAM_CONFLICT))
    assert found.key == "duplicate_group"
    assert GROUP_ID in found.what_happened
    assert "Link Group" in found.fix_first


def test_precondition_failed() -> None:
    found = guidance(
        logged("PUT", "/Users/{id}", status=412, detail="The resource changed (If-Match).")
    )
    assert found.key == "precondition_failed"


@pytest.mark.parametrize("status", [413, 415])
def test_refused_before_read_quotes_the_detail(status: int) -> None:
    found = guidance(logged("POST", "/Users", status=status, detail="Too big or wrong type."))
    assert found.key == f"http_{status}"
    assert "Too big or wrong type." in found.what_happened
    assert "Retry Selected" in found.fix_first


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        pytest.param("POST", "/Users", okta_create_user(), id="create-user"),
        pytest.param("PATCH", "/Users/{id}", okta_deactivate(), id="deactivate"),
        pytest.param("GET", "/Users", None, id="look-up"),
    ],
)
def test_rate_limited_okta_retries_by_itself(method: str, route: str, body: Any) -> None:
    found = guidance(
        logged(
            method,
            route,
            status=429,
            body=body,
            query={"filter": 'userName eq "jane@example.com"'},
            detail="Too many requests.",
        )
    )
    assert found.key == "rate_limited"
    assert found.okta_next == OKTA_RETRIES
    assert "retries by itself" in found.okta_next
    assert "Retry-After" in found.okta_next
    assert "doubling" in found.okta_next
    assert "10 attempts" in found.okta_next


IDEMPOTENT = "This request is idempotent: retrying it cannot apply it twice."
LINKS = (
    "Okta looks the user or group up before creating it, so a retry links instead of duplicating."
)


@pytest.mark.parametrize(
    ("method", "route", "body", "facts", "safe"),
    [
        pytest.param("POST", "/Users", okta_create_user(), None, LINKS, id="create-user"),
        pytest.param(
            "POST", "/Groups", {**GROUP_PUSH, "displayName": "Eng"}, None, LINKS, id="push-group"
        ),
        pytest.param("GET", "/Users/{id}", None, None, IDEMPOTENT, id="read-user"),
        pytest.param("PUT", "/Users/{id}", okta_create_user(), None, IDEMPOTENT, id="put-user"),
        pytest.param("DELETE", "/Users/{id}", None, None, IDEMPOTENT, id="delete-user"),
        pytest.param("PUT", "/Groups/{id}", GROUP_PUSH, None, IDEMPOTENT, id="put-group"),
        pytest.param("DELETE", "/Groups/{id}", None, None, IDEMPOTENT, id="delete-group"),
        # A PATCH that (de)activates or sets members is idempotent too; the log row of a
        # 5xx is the event "Server error" with detail "during <event>".
        pytest.param(
            "PATCH", "/Users/{id}", okta_deactivate(), None, IDEMPOTENT, id="deactivate-patch"
        ),
        pytest.param(
            "PATCH",
            "/Users/{id}",
            okta_reactivate(),
            {"active_change": "reactivated"},
            IDEMPOTENT,
            id="reactivate-patch",
        ),
        pytest.param(
            "PATCH", "/Groups/{id}", OKTA_ADD_MEMBER, None, IDEMPOTENT, id="push-group-members"
        ),
        pytest.param(
            "PATCH",
            "/Groups/{id}",
            patch({"op": "replace", "path": "members", "value": []}),
            None,
            IDEMPOTENT,
            id="replace-group-members",
        ),
    ],
)
def test_server_errors_are_safe_to_retry(
    method: str, route: str, body: Any, facts: Mapping[str, Any] | None, safe: str
) -> None:
    row = logged(method, route, status=500, body=body, detail=INTERNAL, facts=facts)
    assert row.event == events.SERVER_ERROR
    found = guidance(row)
    assert found.key == "server_error"
    assert found.okta_next == OKTA_WAITS
    assert found.fix_first.startswith("It is safe to retry: ")
    assert safe in found.fix_first


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        pytest.param(
            logged(
                "POST",
                "/Users",
                status=201,
                body=okta_create_user(),
                notes=("ignored attributes under urn:okta:custom:user:1.0 (schema not served)",),
            ),
            "ignored attributes under urn:okta:custom:user:1.0 (schema not served)",
            id="ignored-namespace",
        ),
        pytest.param(
            logged(
                "PATCH",
                "/Groups/{id}",
                status=204,
                body=patch({"op": "remove", "path": f'members[value eq "{USER_ID}"]'}),
                notes=(f"remove matched no member: {USER_ID}",),
            ),
            f"add 0 / remove 1; remove matched no member: {USER_ID}",
            id="remove-matched-no-member",
        ),
        pytest.param(
            logged(
                "PUT",
                "/Users/{id}",
                status=200,
                body=okta_create_user(),
                notes=("no change: the request matched the stored user",),
            ),
            "PUT (full replace); no change: the request matched the stored user",
            id="put-no-change",
        ),
    ],
)
def test_warnings_get_guidance(row: Row, shown: str) -> None:
    assert row.outcome == events.WARNING
    found = guidance(row)
    assert found.key == "warning"
    assert shown in found.what_happened
    assert "will not retry" in found.okta_next
    assert "Provisioning → To App" in found.fix_first


def test_a_warning_without_event_detail_shows_its_notes() -> None:
    row = Row(
        event=events.CREATE_USER,
        outcome=events.WARNING,
        status=201,
        method="POST",
        scim_type=None,
        detail=None,
        auth_failure=None,
        notes=("ignored unknown attribute nickName",),
    )
    assert "ignored unknown attribute nickName" in guidance(row).what_happened


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
                notes=("no change: the request matched the stored team",),
            ),
            id="spurious-rename",
        ),
        pytest.param(logged("DELETE", "/Groups/{id}", status=204), id="delete-group"),
        pytest.param(logged("GET", "/Users/{id}", status=304), id="not-modified"),
    ],
)
def test_successes_get_no_guidance(row: Row) -> None:
    assert row.outcome == events.SUCCESS
    assert guidance_for(row) is None


def test_a_discovery_404_is_not_about_a_user() -> None:
    row = Row(
        event=events.DISCOVERY,
        outcome=events.FAILURE,
        status=404,
        method="GET",
        scim_type=None,
        detail="No schema 'urn:nope' is served here; GET /Schemas lists them all.",
        auth_failure=None,
    )
    assert guidance(row).key == "http_404"


def test_a_401_without_a_reason_gets_the_unknown_token_advice() -> None:
    row = Row(
        event=events.AUTHENTICATION_FAILED,
        outcome=events.FAILURE,
        status=401,
        method="GET",
        scim_type=None,
        detail="x",
        auth_failure=None,
    )
    assert guidance(row).key == "auth.unknown"
