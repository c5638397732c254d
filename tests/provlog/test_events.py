"""Every Okta and Entra request shape, named the way Okta's admin would: event, detail, outcome.

Bodies and queries are the ones okta-scim.md §1 quotes and the SCIM tests send; the
facts and notes are the ones the Users and Groups handlers record for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.provlog import events
from gateway.provlog.codes import CODES, WARNING_CODES
from gateway.provlog.events import (
    DELETE_GROUP,
    DELETE_USER,
    DISCOVERY,
    EVENTS,
    FAILURE,
    IMPORT_GROUPS,
    IMPORT_USERS,
    LOOK_UP_GROUP,
    LOOK_UP_USER,
    PUSH_GROUP,
    PUSH_GROUP_MEMBERS,
    READ_GROUP,
    READ_USER,
    RENAME_GROUP,
    REPLACE_GROUP_MEMBERS,
    SEARCH,
    SUCCESS,
    UPDATE_GROUP,
    UPDATE_USER,
    WARNING,
    RequestFacts,
    Target,
    describe,
    reason_for,
)
from tests.payloads import (
    ENTERPRISE,
    USER,
    okta_create_user,
    okta_deactivate,
    okta_reactivate,
    patch,
)

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_ID = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
LEAVER_1 = "89bb1940-b905-4575-9e7f-6f887cfb368e"
LEAVER_2 = "5f0c2a8e-3d41-4c55-a0a7-0d6e1b9c4a12"
NEWCOMER = "c1d2e3f4-0000-4000-8000-000000000001"

NO_CHANGE_USER = "no change: the request matched the stored user"
NO_CHANGE_TEAM = "no change: the request matched the stored team"
IGNORED_NAMESPACE = "ignored attributes under urn:okta:custom:user:1.0 (schema not served)"
IGNORED_ATTRIBUTE = "ignored unknown attribute nickName"
REMOVE_MISSED = f"remove matched no member: {LEAVER_1}"

MISSING_FAMILY_NAME = (
    "Attribute 'name.familyName' is required and missing or empty. In Okta, check the "
    "name.familyName mapping under Provisioning → To App and that the user has a value."
)
USER_CONFLICT = (
    f"userName 'jane@example.com' is already taken in this org by another user (id {USER_ID}); "
    "userName is unique case-insensitively. Link that user in Okta, or change the "
    "username format under Sign On → Application username format."
)
TEAM_CONFLICT = (
    f"A team named 'Engineering' already exists in this org (id {GROUP_ID}); team names are "
    "unique case-insensitively. In Okta, link the existing group (Push Groups → Link Group) "
    "instead of creating one."
)
USER_NOT_FOUND = (
    f"User {USER_ID} not found in this org. If Okta still links to it, unassign and reassign "
    "the user in Okta so it is created again."
)
GROUP_NOT_FOUND = (
    f"Group {GROUP_ID} not found in this org. In Okta, unlink the pushed group (Push Groups → "
    "Unlink, 'Leave the group') and push it again."
)
WRONG_URL = (
    "No SCIM endpoint at /scim/v2/Users: the path is not under the SCIM base path "
    "/api/sch/scim/v2. The SCIM connector base URL to paste into Okta is "
    "https://x/api/sch/scim/v2 (no trailing slash); Okta adds /Users and /Groups itself."
)
REVOKED = (
    "This SCIM token was revoked. Generate a new one in Settings → SCIM and paste it in Okta → "
    "Provisioning → Integration, then click Test API Credentials."
)
INTERNAL = "Internal server error. The request id is 0123abcd; it is safe to retry."

# Okta's profile PUT (okta-scim.md §1.4), also what an AIW app sends to (de)activate.
OKTA_PUT: dict[str, Any] = {
    "schemas": [USER],
    "id": USER_ID,
    "userName": "test.user@okta.local",
    "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
    "emails": [
        {
            "primary": True,
            "value": "test.user@okta.local",
            "type": "work",
            "display": "test.user@okta.local",
        }
    ],
    "active": True,
    "groups": [],
    "meta": {"resourceType": "User"},
}
ENTRA_CREATE: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE],
    "externalId": "f4d2c3b1-entra",
    "userName": "Alex.Wilber@contoso.com",
    "active": True,
    "displayName": "Alex Wilber",
    "emails": [{"primary": True, "type": "work", "value": "Alex.Wilber@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "Alex Wilber", "familyName": "Wilber", "givenName": "Alex"},
    "roles": [],
    ENTERPRISE: {"department": "Retail"},
}


def on(
    method: str,
    route: str | None,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    status: int = 200,
    detail: str | None = None,
    auth_failure: str | None = None,
    notes: tuple[str, ...] = (),
    facts: Mapping[str, Any] | None = None,
    target: Target | None = None,
    path_id: str | None = None,
) -> RequestFacts:
    """A request as the log entry records it; item routes get the item's id."""
    if path_id is None and route == "/Users/{id}":
        path_id = USER_ID
    if path_id is None and route == "/Groups/{id}":
        path_id = GROUP_ID
    return RequestFacts(
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
        target=target,
        note_codes=tuple(note_code(n) for n in notes),
    )


def note_code(note: str) -> str:
    """The code the gateway gives each note where it adds it (see gateway/scim)."""
    if note.startswith("ignored"):
        return "attributes_ignored"
    if "remove matched no member" in note:
        return "member_not_present"
    if "remove matched no" in note:
        return "value_not_present"
    if note == NO_CHANGE_USER:
        return "unchanged"
    if note == NO_CHANGE_TEAM:
        return "unchanged_team"
    return "primary_kept"


def okta_lookup(attribute: str, value: str) -> dict[str, str]:
    """Okta's lookup query: filter, startIndex, count (okta-scim.md §1.3, §1.8a)."""
    return {"filter": f'{attribute} eq "{value}"', "startIndex": "1", "count": "100"}


def page(start: int, count: int = 100) -> dict[str, str]:
    return {"startIndex": str(start), "count": str(count)}


def okta_members(*, remove: tuple[str, ...], add: tuple[str, ...]) -> dict[str, Any]:
    """Okta's membership PATCH: one filtered remove per leaver, then one add (§1.8c)."""
    operations: list[dict[str, Any]] = [
        {"op": "remove", "path": f'members[value eq "{member}"]'} for member in remove
    ]
    if add:
        operations.append(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": m, "display": f"{m[:4]}@example.com"} for m in add],
            }
        )
    return patch(*operations)


def okta_rename(name: str) -> dict[str, Any]:
    """Okta's rename PATCH, sent after every membership change (§1.8e)."""
    return patch({"op": "replace", "value": {"id": GROUP_ID, "displayName": name}})


def replace_members(*members: str) -> dict[str, Any]:
    return patch({"op": "replace", "path": "members", "value": [{"value": m} for m in members]})


def group_put(*members: str) -> dict[str, Any]:
    """An AIW app's group push: the whole group, every time (§1.8f)."""
    return {
        "schemas": [GROUP],
        "displayName": "Engineering",
        "members": [{"value": m, "display": f"{m[:4]}@example.com"} for m in members],
    }


USER_TARGET = Target("User", USER_ID, "jane@example.com", "Jane Doe")
GROUP_TARGET = Target("Group", GROUP_ID, "Engineering")
DEACTIVATED = {"active_change": "deactivated"}
REACTIVATED = {"active_change": "reactivated"}

CASES = [
    # Test API Credentials / Test Connector Configuration (§1.2).
    pytest.param(
        on("GET", "/Users", query=page(1, 2), facts={"total": 0}),
        (events.TEST_API_CREDENTIALS, None, SUCCESS),
        id="test-api-credentials-empty-org",
    ),
    pytest.param(
        on("GET", "/Users", query=page(1, 2), facts={"total": 250}),
        (events.TEST_API_CREDENTIALS, None, SUCCESS),
        id="test-api-credentials-many-users",
    ),
    # Verify groups endpoint: the same request as the first page of a group import.
    pytest.param(
        on("GET", "/Groups", facts={"total": 3}),
        (events.VERIFY_GROUPS, None, SUCCESS),
        id="verify-groups-no-params",
    ),
    pytest.param(
        on("GET", "/Groups", query=page(1), facts={"total": 100}),
        (events.VERIFY_GROUPS, None, SUCCESS),
        id="verify-groups-first-page-holds-all",
    ),
    pytest.param(
        on("GET", "/Groups", query=page(1), facts={"total": 0}),
        (events.VERIFY_GROUPS, None, SUCCESS),
        id="verify-groups-no-groups",
    ),
    # Look up user (§1.3): Okta's userName filter, and Entra's externalId / id probes.
    pytest.param(
        on("GET", "/Users", query=okta_lookup("userName", "jane@example.com"), facts={"total": 1}),
        (LOOK_UP_USER, "found: Okta links the existing user", SUCCESS),
        id="look-up-user-found",
    ),
    pytest.param(
        on("GET", "/Users", query=okta_lookup("userName", "jane@example.com"), facts={"total": 0}),
        (LOOK_UP_USER, "no user found: Okta creates it", SUCCESS),
        id="look-up-user-none",
    ),
    pytest.param(
        on("GET", "/Users", query={"filter": 'externalId eq "f4d2c3b1-entra"'}, facts={"total": 0}),
        (LOOK_UP_USER, "no user found: Okta creates it", SUCCESS),
        id="entra-look-up-external-id-none",
    ),
    pytest.param(
        on("GET", "/Users", query={"filter": 'externalId eq "f4d2c3b1-entra"'}, facts={"total": 1}),
        (LOOK_UP_USER, "found: Okta links the existing user", SUCCESS),
        id="entra-look-up-external-id-found",
    ),
    pytest.param(
        on("GET", "/Users", query={"filter": 'id eq "7d5a8d9c-random"'}, facts={"total": 0}),
        (LOOK_UP_USER, "no user found: Okta creates it", SUCCESS),
        id="entra-probe-random-id",
    ),
    pytest.param(
        on(
            "GET",
            "/Users",
            query={"filter": 'userName eq "unterminated'},
            status=400,
            detail="Unterminated string at position 12.",
        ),
        (LOOK_UP_USER, None, FAILURE),
        id="look-up-user-invalid-filter",
    ),
    # Create user (§1.3).
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=201, target=USER_TARGET),
        (events.CREATE_USER, None, SUCCESS),
        id="create-user-okta",
    ),
    pytest.param(
        on("POST", "/Users", body=ENTRA_CREATE, status=201),
        (events.CREATE_USER, None, SUCCESS),
        id="create-user-entra",
    ),
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=409, detail=USER_CONFLICT),
        (events.CREATE_USER, None, FAILURE),
        id="create-user-conflict",
    ),
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=400, detail=MISSING_FAMILY_NAME),
        (events.CREATE_USER, None, FAILURE),
        id="create-user-missing-attribute",
    ),
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=201, notes=(IGNORED_NAMESPACE,)),
        (events.CREATE_USER, IGNORED_NAMESPACE, WARNING),
        id="create-user-ignored-namespace",
    ),
    # Read user (AIW reads before every PUT).
    pytest.param(
        on("GET", "/Users/{id}", target=USER_TARGET),
        (READ_USER, None, SUCCESS),
        id="read-user",
    ),
    pytest.param(
        on("GET", "/Users/{id}", status=404, detail=USER_NOT_FOUND),
        (READ_USER, None, FAILURE),
        id="read-user-not-found",
    ),
    # Update user attributes (§1.4): Okta's PUT, PATCH from OIN Wizard apps and Entra.
    pytest.param(
        on("PUT", "/Users/{id}", body=OKTA_PUT, target=USER_TARGET),
        (UPDATE_USER, "PUT (full replace)", SUCCESS),
        id="update-user-put",
    ),
    pytest.param(
        on("PUT", "/Users/{id}", body=OKTA_PUT, notes=(NO_CHANGE_USER,)),
        (UPDATE_USER, f"PUT (full replace); {NO_CHANGE_USER}", WARNING),
        id="update-user-put-no-change",
    ),
    pytest.param(
        on("PUT", "/Users/{id}", body=OKTA_PUT, notes=(IGNORED_ATTRIBUTE, IGNORED_NAMESPACE)),
        (UPDATE_USER, f"PUT (full replace); {IGNORED_ATTRIBUTE}; {IGNORED_NAMESPACE}", WARNING),
        id="update-user-put-ignored-attributes",
    ),
    pytest.param(
        on("PUT", "/Users/{id}", body=OKTA_PUT, status=404, detail=USER_NOT_FOUND),
        (UPDATE_USER, "PUT (full replace)", FAILURE),
        id="update-user-put-not-found",
    ),
    pytest.param(
        on("PATCH", "/Users/{id}", body=patch({"op": "replace", "path": "title", "value": "CTO"})),
        (UPDATE_USER, "PATCH", SUCCESS),
        id="update-user-patch",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch(
                {"op": "Replace", "value": {"name.givenName": "Alexander"}},
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "a@contoso.com"},
                {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "manager-id"},
            ),
        ),
        (UPDATE_USER, "PATCH", SUCCESS),
        id="update-user-patch-entra",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch({"op": "remove", "path": 'emails[type eq "home"]'}),
            notes=("Operations[0]: remove matched no emails value",),
        ),
        (UPDATE_USER, "PATCH; Operations[0]: remove matched no emails value", WARNING),
        id="update-user-patch-remove-matched-nothing",
    ),
    # Deactivate user (§1.5): Okta's path-less PATCH, Entra's string PATCH, AIW's PUT.
    pytest.param(
        on("PATCH", "/Users/{id}", body=okta_deactivate(), facts=DEACTIVATED),
        (events.DEACTIVATE_USER, None, SUCCESS),
        id="deactivate-okta-patch",
    ),
    pytest.param(
        on("PATCH", "/Users/{id}", body=okta_deactivate(), status=404, detail=USER_NOT_FOUND),
        (events.DEACTIVATE_USER, None, FAILURE),
        id="deactivate-okta-patch-not-found",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch({"op": "Replace", "path": "active", "value": "False"}),
            facts=DEACTIVATED,
        ),
        (events.DEACTIVATE_USER, None, SUCCESS),
        id="deactivate-entra-patch",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch({"op": "Replace", "path": "active", "value": "False"}),
            status=404,
            detail=USER_NOT_FOUND,
        ),
        (events.DEACTIVATE_USER, None, FAILURE),
        id="deactivate-entra-patch-not-found",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch({"op": "Replace", "value": {"active": "false"}}),
            status=404,
            detail=USER_NOT_FOUND,
        ),
        (events.DEACTIVATE_USER, None, FAILURE),
        id="deactivate-entra-pathless-string-not-found",
    ),
    pytest.param(
        on("PUT", "/Users/{id}", body={**OKTA_PUT, "active": False}, facts=DEACTIVATED),
        (events.DEACTIVATE_USER, None, SUCCESS),
        id="deactivate-aiw-put",
    ),
    pytest.param(
        on(
            "PUT",
            "/Users/{id}",
            body={**OKTA_PUT, "active": False},
            status=400,
            detail=MISSING_FAMILY_NAME,
        ),
        (events.DEACTIVATE_USER, None, FAILURE),
        id="deactivate-aiw-put-refused",
    ),
    # Reactivate user (§1.6).
    pytest.param(
        on("PATCH", "/Users/{id}", body=okta_reactivate(), facts=REACTIVATED),
        (events.REACTIVATE_USER, None, SUCCESS),
        id="reactivate-okta-patch",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Users/{id}",
            body=patch({"op": "Replace", "path": "active", "value": "True"}),
            facts=REACTIVATED,
        ),
        (events.REACTIVATE_USER, None, SUCCESS),
        id="reactivate-entra-patch",
    ),
    pytest.param(
        on("PUT", "/Users/{id}", body=OKTA_PUT, facts=REACTIVATED),
        (events.REACTIVATE_USER, None, SUCCESS),
        id="reactivate-aiw-put",
    ),
    # Delete user (2026 granular deprovisioning).
    pytest.param(
        on("DELETE", "/Users/{id}", status=204, target=USER_TARGET),
        (DELETE_USER, None, SUCCESS),
        id="delete-user",
    ),
    pytest.param(
        on("DELETE", "/Users/{id}", status=404, detail=USER_NOT_FOUND),
        (DELETE_USER, None, FAILURE),
        id="delete-user-not-found",
    ),
    # Import users (§1.9), page N of M.
    pytest.param(
        on("GET", "/Users", query=page(1), facts={"total": 250}),
        (IMPORT_USERS, "page 1 of 3", SUCCESS),
        id="import-users-page-1",
    ),
    pytest.param(
        on("GET", "/Users", query=page(101), facts={"total": 250}),
        (IMPORT_USERS, "page 2 of 3", SUCCESS),
        id="import-users-page-2",
    ),
    pytest.param(
        on("GET", "/Users", query=page(201), facts={"total": 250}),
        (IMPORT_USERS, "page 3 of 3", SUCCESS),
        id="import-users-page-3",
    ),
    pytest.param(
        on("GET", "/Users", query=page(1), facts={"total": 100}),
        (IMPORT_USERS, "page 1 of 1", SUCCESS),
        id="import-users-single-page",
    ),
    # Look up group (§1.8a).
    pytest.param(
        on("GET", "/Groups", query=okta_lookup("displayName", "Engineering"), facts={"total": 1}),
        (LOOK_UP_GROUP, "found: Okta links the existing group", SUCCESS),
        id="look-up-group-found",
    ),
    pytest.param(
        on("GET", "/Groups", query=okta_lookup("displayName", "Engineering"), facts={"total": 0}),
        (LOOK_UP_GROUP, "no group found: Okta creates it", SUCCESS),
        id="look-up-group-none",
    ),
    # Push group (§1.8b).
    pytest.param(
        on(
            "POST",
            "/Groups",
            body={"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []},
            status=201,
        ),
        (PUSH_GROUP, "create", SUCCESS),
        id="push-group-create",
    ),
    pytest.param(
        on(
            "POST",
            "/Groups",
            body={"schemas": [GROUP], "displayName": "Engineering", "members": []},
            status=409,
            detail=TEAM_CONFLICT,
        ),
        (PUSH_GROUP, "create", FAILURE),
        id="push-group-create-conflict",
    ),
    # Push group members (§1.8c): Okta's removes then add, in one PATCH; Entra's forms.
    pytest.param(
        on(
            "PATCH", "/Groups/{id}", body=okta_members(remove=(LEAVER_1, LEAVER_2), add=(NEWCOMER,))
        ),
        (PUSH_GROUP_MEMBERS, "add 1 / remove 2", SUCCESS),
        id="push-members-okta-removes-and-add",
    ),
    pytest.param(
        on("PATCH", "/Groups/{id}", body=okta_members(remove=(), add=(NEWCOMER,))),
        (PUSH_GROUP_MEMBERS, "add 1 / remove 0", SUCCESS),
        id="push-members-okta-add",
    ),
    pytest.param(
        on("PATCH", "/Groups/{id}", body=okta_members(remove=(LEAVER_1,), add=())),
        (PUSH_GROUP_MEMBERS, "add 0 / remove 1", SUCCESS),
        id="push-members-okta-remove",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=patch(
                {
                    "op": "Remove",
                    "path": "members",
                    "value": [{"value": LEAVER_1}, {"value": LEAVER_2}],
                }
            ),
        ),
        (PUSH_GROUP_MEMBERS, "add 0 / remove 2", SUCCESS),
        id="push-members-entra-remove-by-value-list",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=patch(
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"value": LEAVER_1}, {"value": LEAVER_2}, {"value": NEWCOMER}],
                }
            ),
        ),
        (PUSH_GROUP_MEMBERS, "add 3 / remove 0", SUCCESS),
        id="push-members-entra-add",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=okta_members(remove=(LEAVER_1,), add=(NEWCOMER,)),
            status=204,
            notes=(REMOVE_MISSED,),
        ),
        (PUSH_GROUP_MEMBERS, f"add 1 / remove 1; {REMOVE_MISSED}", WARNING),
        id="push-members-remove-matched-no-member",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=okta_members(remove=(), add=(NEWCOMER,)),
            status=404,
            detail=GROUP_NOT_FOUND,
        ),
        (PUSH_GROUP_MEMBERS, "add 1 / remove 0", FAILURE),
        id="push-members-group-not-found",
    ),
    # Rename group (§1.8e), including the rename Okta repeats after every membership change.
    pytest.param(
        on("PATCH", "/Groups/{id}", body=okta_rename("Platform"), status=204),
        (RENAME_GROUP, "to 'Platform'", SUCCESS),
        id="rename-group-okta",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=patch({"op": "replace", "path": "displayName", "value": "Eng"}),
            status=204,
        ),
        (RENAME_GROUP, "to 'Eng'", SUCCESS),
        id="rename-group-with-path",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=okta_rename("Engineering"),
            status=204,
            notes=(NO_CHANGE_TEAM,),
            target=GROUP_TARGET,
        ),
        (RENAME_GROUP, "unchanged name", SUCCESS),
        id="rename-group-okta-spurious",
    ),
    # Replace group members (§1.8d "Push Now", §1.8f AIW PUT).
    pytest.param(
        on("PATCH", "/Groups/{id}", body=replace_members(LEAVER_1, NEWCOMER), status=204),
        (REPLACE_GROUP_MEMBERS, "2 members", SUCCESS),
        id="replace-members-patch",
    ),
    pytest.param(
        on("PATCH", "/Groups/{id}", body=replace_members(NEWCOMER), status=204),
        (REPLACE_GROUP_MEMBERS, "1 member", SUCCESS),
        id="replace-members-patch-one",
    ),
    pytest.param(
        on("PATCH", "/Groups/{id}", body=replace_members(), status=204),
        (REPLACE_GROUP_MEMBERS, "0 members", SUCCESS),
        id="replace-members-patch-empty-group",
    ),
    pytest.param(
        # RFC 7644 §3.5.2.2: remove on "members" without a filter or value removes them all;
        # the handler applies it as a replace with no members.
        on("PATCH", "/Groups/{id}", body=patch({"op": "remove", "path": "members"}), status=204),
        (REPLACE_GROUP_MEMBERS, "0 members", SUCCESS),
        id="replace-members-patch-remove-all",
    ),
    pytest.param(
        on("PUT", "/Groups/{id}", body=group_put(LEAVER_1, NEWCOMER)),
        (REPLACE_GROUP_MEMBERS, "PUT with 2 members", SUCCESS),
        id="replace-members-aiw-put",
    ),
    pytest.param(
        on("PUT", "/Groups/{id}", body=group_put(NEWCOMER)),
        (REPLACE_GROUP_MEMBERS, "PUT with 1 member", SUCCESS),
        id="replace-members-aiw-put-one",
    ),
    pytest.param(
        on("PUT", "/Groups/{id}", body=group_put()),
        (REPLACE_GROUP_MEMBERS, "PUT with 0 members", SUCCESS),
        id="replace-members-aiw-put-empty",
    ),
    pytest.param(
        on("PUT", "/Groups/{id}", body={"schemas": [GROUP], "displayName": "Engineering"}),
        (REPLACE_GROUP_MEMBERS, "PUT with 0 members", SUCCESS),
        id="replace-members-aiw-put-without-members",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=patch({"op": "replace", "path": "externalId", "value": "00g1"}),
            status=204,
        ),
        (UPDATE_GROUP, None, SUCCESS),
        id="update-group-other-attribute",
    ),
    pytest.param(
        on("GET", "/Groups/{id}", target=GROUP_TARGET),
        (READ_GROUP, None, SUCCESS),
        id="read-group",
    ),
    # Delete group (§1.8g).
    pytest.param(
        on("DELETE", "/Groups/{id}", status=204, target=GROUP_TARGET),
        (DELETE_GROUP, None, SUCCESS),
        id="delete-group",
    ),
    pytest.param(
        on("DELETE", "/Groups/{id}", status=404, detail=GROUP_NOT_FOUND),
        (DELETE_GROUP, None, FAILURE),
        id="delete-group-not-found",
    ),
    # Import groups (§1.9).
    pytest.param(
        on("GET", "/Groups", query=page(1), facts={"total": 250}),
        (IMPORT_GROUPS, "page 1 of 3", SUCCESS),
        id="import-groups-page-1",
    ),
    pytest.param(
        on("GET", "/Groups", query=page(101), facts={"total": 250}),
        (IMPORT_GROUPS, "page 2 of 3", SUCCESS),
        id="import-groups-page-2",
    ),
    # Discovery (§1.11) and search.
    pytest.param(
        on("GET", "/ServiceProviderConfig"),
        (DISCOVERY, "ServiceProviderConfig", SUCCESS),
        id="discovery-service-provider-config",
    ),
    pytest.param(
        on("GET", "/ResourceTypes"),
        (DISCOVERY, "ResourceTypes", SUCCESS),
        id="discovery-resource-types",
    ),
    pytest.param(
        on("GET", "/ResourceTypes/{name}"),
        (DISCOVERY, "ResourceTypes", SUCCESS),
        id="discovery-resource-type",
    ),
    pytest.param(
        on("GET", "/Schemas"),
        (DISCOVERY, "Schemas", SUCCESS),
        id="discovery-schemas",
    ),
    pytest.param(
        on("GET", "/Schemas/{urn}"),
        (DISCOVERY, "Schemas", SUCCESS),
        id="discovery-schema",
    ),
    pytest.param(
        on(
            "POST",
            "/.search",
            body={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]},
        ),
        (SEARCH, None, SUCCESS),
        id="search-root",
    ),
    pytest.param(
        on("POST", "/Users/.search", body={"filter": 'userName eq "jane@example.com"'}),
        (SEARCH, None, SUCCESS),
        id="search-users",
    ),
    # Authentication failed: whatever the route, the detail is the AuthFailure value.
    pytest.param(
        on(
            "GET",
            "/Users",
            query=page(1, 2),
            status=401,
            detail=REVOKED,
            auth_failure="revoked",
        ),
        (events.AUTHENTICATION_FAILED, "revoked", FAILURE),
        id="auth-failed-test-api-credentials",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=okta_members(remove=(), add=(NEWCOMER,)),
            status=401,
            detail="No Authorization header.",
            auth_failure="missing",
        ),
        (events.AUTHENTICATION_FAILED, "missing", FAILURE),
        id="auth-failed-push-members",
    ),
    pytest.param(
        on("GET", None, status=401, detail="Truncated.", auth_failure="truncated"),
        (events.AUTHENTICATION_FAILED, "truncated", FAILURE),
        id="auth-failed-unmatched-route",
    ),
    # Wrong base URL: no route matched.
    pytest.param(
        on("GET", None, query=page(1, 2), status=404, detail=WRONG_URL),
        (events.WRONG_BASE_URL, None, FAILURE),
        id="wrong-base-url",
    ),
    # Rate limited.
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=429, detail="Too many requests."),
        (events.RATE_LIMITED, None, FAILURE),
        id="rate-limited-create-user",
    ),
    pytest.param(
        on("GET", "/Users", query=page(101), status=429, detail="Too many requests."),
        (events.RATE_LIMITED, None, FAILURE),
        id="rate-limited-import",
    ),
    # Server error: names what it interrupted.
    pytest.param(
        on("POST", "/Users", body=okta_create_user(), status=500, detail=INTERNAL),
        (events.SERVER_ERROR, "during Create user", FAILURE),
        id="server-error-create-user",
    ),
    pytest.param(
        on("PATCH", "/Users/{id}", body=okta_deactivate(), status=503, detail=INTERNAL),
        (events.SERVER_ERROR, "during Deactivate user", FAILURE),
        id="server-error-deactivate",
    ),
    pytest.param(
        on(
            "PATCH",
            "/Groups/{id}",
            body=okta_members(remove=(LEAVER_1,), add=(NEWCOMER,)),
            status=500,
            detail=INTERNAL,
        ),
        (events.SERVER_ERROR, "during Push group members", FAILURE),
        id="server-error-push-members",
    ),
    pytest.param(
        on(
            "GET",
            "/Users",
            query=okta_lookup("userName", "jane@example.com"),
            status=500,
            detail=INTERNAL,
        ),
        (events.SERVER_ERROR, "during Look up user", FAILURE),
        id="server-error-look-up-user",
    ),
]


@pytest.mark.parametrize(("facts", "expected"), CASES)
def test_event_detail_and_outcome(
    facts: RequestFacts, expected: tuple[str, str | None, str]
) -> None:
    described = describe(facts)
    assert (described.event, described.detail, described.outcome) == expected
    assert described.event in EVENTS


def test_events_are_the_module_constants_each_once() -> None:
    constants = {
        value
        for name, value in vars(events).items()
        if name.isupper()
        and isinstance(value, str)
        and name not in ("SUCCESS", "FAILURE", "WARNING")
    }
    assert len(EVENTS) == len(set(EVENTS)) == 26
    assert set(EVENTS) == constants


@pytest.mark.parametrize(
    ("status", "detail", "reason"),
    [
        pytest.param(
            400,
            MISSING_FAMILY_NAME,
            f"Bad Request. Errors reported by remote server: {MISSING_FAMILY_NAME}",
            id="400",
        ),
        pytest.param(
            401, REVOKED, f"Unauthorized. Errors reported by remote server: {REVOKED}", id="401"
        ),
        pytest.param(
            404,
            USER_NOT_FOUND,
            f"Not Found. Errors reported by remote server: {USER_NOT_FOUND}",
            id="404",
        ),
        pytest.param(
            409,
            USER_CONFLICT,
            f"Conflict. Errors reported by remote server: {USER_CONFLICT}",
            id="409",
        ),
        pytest.param(
            412,
            "The user changed since it was read.",
            "Precondition Failed. Errors reported by remote server: The user changed since it was read.",
            id="412",
        ),
        pytest.param(
            415,
            "Unsupported media type 'text/plain'.",
            "Unsupported Media Type. Errors reported by remote server: Unsupported media type 'text/plain'.",
            id="415",
        ),
        pytest.param(
            429,
            "Too many requests.",
            "Too Many Requests. Errors reported by remote server: Too many requests.",
            id="429",
        ),
        pytest.param(
            500,
            INTERNAL,
            f"Internal Server Error. Errors reported by remote server: {INTERNAL}",
            id="500",
        ),
        pytest.param(
            502,
            None,
            "Bad Gateway. Errors reported by remote server: Bad Gateway",
            id="502-without-detail",
        ),
    ],
)
def test_failure_reason_is_worded_like_okta(status: int, detail: str | None, reason: str) -> None:
    assert reason_for(status, detail) == reason
    described = describe(
        on("POST", "/Users", body=okta_create_user(), status=status, detail=detail)
    )
    assert described.outcome == FAILURE
    assert described.reason == reason


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(on("POST", "/Users", body=okta_create_user(), status=201), id="success"),
        pytest.param(
            on("PUT", "/Users/{id}", body=OKTA_PUT, notes=(IGNORED_ATTRIBUTE,)), id="warning"
        ),
    ],
)
def test_no_reason_unless_failed(facts: RequestFacts) -> None:
    assert describe(facts).reason is None


def test_a_failure_with_warning_notes_stays_a_failure() -> None:
    described = describe(
        on(
            "POST",
            "/Users",
            body=okta_create_user(),
            status=400,
            detail=MISSING_FAMILY_NAME,
            notes=(IGNORED_NAMESPACE,),
        )
    )
    assert (described.event, described.detail, described.outcome) == (
        events.CREATE_USER,
        None,
        FAILURE,
    )
    assert (
        described.reason == f"Bad Request. Errors reported by remote server: {MISSING_FAMILY_NAME}"
    )


@pytest.mark.parametrize(
    ("code", "warns"),
    [
        pytest.param("attributes_ignored", True, id="ignored-attributes"),
        pytest.param("member_not_present", True, id="remove-matched-no-member"),
        pytest.param("value_not_present", True, id="remove-matched-no-value"),
        pytest.param("unchanged", True, id="no-change-user"),
        pytest.param("unchanged_team", False, id="no-change-team"),
        pytest.param("primary_kept", False, id="primary-kept"),
    ],
)
def test_note_codes_decide_warnings(code: str, warns: bool) -> None:
    assert (code in WARNING_CODES) is warns
    assert code in CODES


@pytest.mark.parametrize(
    ("facts", "target"),
    [
        pytest.param(
            on(
                "POST",
                "/Users",
                body=okta_create_user("someone.else@example.com"),
                status=201,
                target=USER_TARGET,
            ),
            USER_TARGET,
            id="handler-target-wins",
        ),
        pytest.param(
            on("POST", "/Users", body=okta_create_user(), status=400, detail=MISSING_FAMILY_NAME),
            Target("User", None, "jane@example.com", "Jane Doe"),
            id="create-user-from-body",
        ),
        pytest.param(
            on("PUT", "/Users/{id}", body=OKTA_PUT, status=404, detail=USER_NOT_FOUND),
            Target("User", USER_ID, "test.user@okta.local", None),
            id="put-user-from-body-and-path",
        ),
        pytest.param(
            on("POST", "/Groups", body=group_put(), status=409, detail=TEAM_CONFLICT),
            Target("Group", None, "Engineering", None),
            id="push-group-from-body",
        ),
        pytest.param(
            on("PUT", "/Groups/{id}", body=group_put(NEWCOMER), status=404, detail=GROUP_NOT_FOUND),
            Target("Group", GROUP_ID, "Engineering", None),
            id="put-group-from-body-and-path",
        ),
        pytest.param(
            on(
                "GET",
                "/Users",
                query=okta_lookup("userName", "jane@example.com"),
                facts={"total": 0},
            ),
            Target("User", None, "jane@example.com", None),
            id="look-up-user-from-filter",
        ),
        pytest.param(
            on("GET", "/Users", query=okta_lookup("userName", 'o\\"brien@example.com')),
            Target("User", None, 'o"brien@example.com', None),
            id="look-up-user-escaped-quote",
        ),
        pytest.param(
            on(
                "GET",
                "/Groups",
                query=okta_lookup("displayName", "Test SCIMv2"),
                facts={"total": 0},
            ),
            Target("Group", None, "Test SCIMv2", None),
            id="look-up-group-from-filter",
        ),
        pytest.param(
            on("DELETE", "/Users/{id}", status=404, detail=USER_NOT_FOUND),
            Target("User", USER_ID, None, None),
            id="delete-user-from-path",
        ),
        pytest.param(
            on("PATCH", "/Groups/{id}", body=okta_members(remove=(LEAVER_1,), add=()), status=500),
            Target("Group", GROUP_ID, None, None),
            id="patch-group-from-path",
        ),
        pytest.param(
            on("PATCH", "/Users/{id}", body=okta_deactivate(), status=401, auth_failure="revoked"),
            Target("User", USER_ID, None, None),
            id="auth-failure-from-path",
        ),
        pytest.param(
            on("GET", "/Users", query=page(1, 2), facts={"total": 0}), None, id="list-none"
        ),
        pytest.param(on("GET", "/ServiceProviderConfig"), None, id="discovery-none"),
        pytest.param(on("GET", None, status=404, detail=WRONG_URL), None, id="wrong-url-none"),
        pytest.param(
            on("POST", "/.search", body={"filter": 'userName eq "x"'}), None, id="search-none"
        ),
    ],
)
def test_target(facts: RequestFacts, target: Target | None) -> None:
    assert describe(facts).target == target


def test_operations_key_is_read_case_insensitively() -> None:
    """A body whose Operations key is spelled "operations", without the PatchOp schema."""
    body = {"operations": [{"op": "replace", "value": {"active": False}}]}
    assert describe(on("PATCH", "/Users/{id}", body=body, status=404)).event == (
        events.DEACTIVATE_USER
    )


def test_a_method_not_allowed_is_an_unsupported_request() -> None:
    described = describe(on("DELETE", None, status=405, detail="DELETE is not supported on /x"))
    assert (described.event, described.detail, described.outcome) == (
        events.UNSUPPORTED,
        "DELETE is not allowed here",
        FAILURE,
    )


def test_id_and_external_id_lookups_are_not_names() -> None:
    for expression in ('externalId eq "f4d2-entra"', 'id eq "7d5a8d9c"'):
        described = describe(on("GET", "/Users", query={"filter": expression}, facts={"total": 0}))
        assert described.target is None
