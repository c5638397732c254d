"""Misconfiguration signals per org: what the traffic and the data say about the Okta setup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.dbtypes import Connection
from gateway.store import signals as store


@dataclass(frozen=True)
class Signal:
    kind: str
    message: str
    count: int
    examples: list[str] = field(default_factory=list)


async def app_kind(conn: Connection, org_id: uuid.UUID, *, days: int = 30) -> str | None:
    """ "aiw" (App Integration Wizard: PUT) or "oin" (PATCH), from how Okta changes users."""
    kinds = await store.request_kinds(conn, org_id, datetime.now(UTC) - timedelta(days=days))
    puts = kinds.get("user_puts", 0) + kinds.get("group_puts", 0)
    patches = kinds.get("user_patches", 0) + kinds.get("group_patches", 0)
    if not puts and not patches:
        return None
    return "aiw" if puts > patches else "oin"


async def org_signals(conn: Connection, org_id: uuid.UUID, *, days: int = 30) -> list[Signal]:
    since = datetime.now(UTC) - timedelta(days=days)
    kinds = await store.request_kinds(conn, org_id, since)
    names = await store.user_names(conn, org_id)
    found: list[Signal] = []
    puts = kinds.get("user_puts", 0) + kinds.get("group_puts", 0)
    patches = kinds.get("user_patches", 0) + kinds.get("group_patches", 0)
    if puts or patches:
        kind = (
            "App Integration Wizard app (PUT)" if puts > patches else "OIN / template app (PATCH)"
        )
        found.append(
            Signal(
                "app_kind",
                f"Okta changes users and teams with {puts} PUT and {patches} PATCH requests in "
                f"{days} days: this looks like an {kind}.",
                puts + patches,
            )
        )
    if names.get("okta_ids"):
        found.append(
            Signal(
                "user_names_are_okta_ids",
                "userNames look like Okta user ids (00u…): the Application username format on the "
                "Sign On tab is probably 'Okta username' ids; learners will not recognise them. "
                "Set it to Email.",
                names["okta_ids"],
                list(names.get("okta_id_examples") or []),
            )
        )
    if names.get("not_emails"):
        found.append(
            Signal(
                "user_names_not_emails",
                "Some userNames are not email addresses although the users have emails: check the "
                "Application username format (email prefix or custom) on the Sign On tab.",
                names["not_emails"],
                list(names.get("not_email_examples") or []),
            )
        )
    if kinds.get("wrong_urls"):
        slashes = kinds.get("trailing_slashes", 0)
        found.append(
            Signal(
                "wrong_base_url",
                f"{kinds['wrong_urls']} requests reached a wrong URL"
                + (f", {slashes} of them because the base URL ends with a slash" if slashes else "")
                + ": fix the SCIM connector base URL in Okta → Provisioning → Integration.",
                kinds["wrong_urls"],
            )
        )
    if kinds.get("revoked_401s"):
        found.append(
            Signal(
                "revoked_token_in_use",
                f"Okta keeps using {kinds['revoked_tokens']} revoked token(s): {kinds['revoked_401s']} "
                "requests refused. Paste a new token in Okta → Provisioning → Integration.",
                kinds["revoked_401s"],
            )
        )
    if names.get("spec_test_users"):
        found.append(
            Signal(
                "spec_test_users",
                "Users created by Okta's SCIM spec test (Runscope…@atko.com) are still in the org; "
                "delete them.",
                names["spec_test_users"],
                list(names.get("spec_test_examples") or []),
            )
        )
    pairs = await store.duplicates(conn, org_id)
    if pairs:
        found.append(
            Signal(
                "duplicate_accounts",
                "Some users' userName is another user's email: probably one person with two accounts, "
                "after the Application username format changed (e.g. userPrincipalName vs mail).",
                len(pairs),
                [
                    f"{p['user_name']} = email of {p['other_user_name']} ({p['other_id']})"
                    for p in pairs
                ],
            )
        )
    return found
