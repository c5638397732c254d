"""Request bodies shaped exactly like Okta's and Entra's (see okta-scim.md §1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

# The exact headers Okta's SCIM client sends with a body.
OKTA_HEADERS = {
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "User-Agent": "Okta SCIM Client 1.0.0",
}


def okta_create_user(
    user_name: str = "jane@example.com",
    given: str = "Jane",
    family: str = "Doe",
    external_id: str | None = None,
) -> dict[str, Any]:
    """Okta's POST /Users body, verbatim in shape (password and groups included).

    The externalId is Okta's user id: one per user, so derived from the userName.
    """
    if external_id is None:
        external_id = okta_user_id(user_name)
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def okta_user_id(user_name: str) -> str:
    """An Okta-shaped user id (00u + 17 characters), stable for a userName."""
    if user_name == "jane@example.com":
        return "00ujl29u0le5T6Aj10h7"
    return "00u" + hashlib.sha256(user_name.encode()).hexdigest()[:17]


def okta_deactivate() -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}


def okta_reactivate() -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": True}}]}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
