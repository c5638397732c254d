"""Retry guidance for every failure class: what happened, what Okta does next, what to fix.

Data, chosen by `guidance_for` from a log row; the dashboard, the CLI and the
metrics all read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway import events
from gateway.store.provisioning_log import LogRow

OKTA_WAITS = (
    "Okta does not retry this by itself: the task waits on Dashboard → Tasks until you "
    "click Retry Selected (for groups: Push Groups → Retry All Groups; for users assigned "
    "before provisioning was on: Provision User)."
)
OKTA_RETRIES = (
    "Okta retries by itself after the Retry-After seconds, doubling the wait each time, "
    "up to 10 attempts; after the 10th failure the task waits on Dashboard → Tasks."
)
GENERATE_AGAIN = (
    "Generate a new token in Settings → SCIM, paste it in Okta → Provisioning → Integration, "
    "click Test API Credentials, then Save."
)


@dataclass(frozen=True)
class Guidance:
    key: str
    what_happened: str
    okta_next: str
    fix_first: str

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "what_happened": self.what_happened,
            "okta_next": self.okta_next,
            "fix_first": self.fix_first,
        }


def guidance_for_log(row: LogRow) -> Guidance | None:
    return guidance_for(
        Row(
            event=row.event,
            outcome=row.outcome,
            status=row.status,
            method=row.method,
            scim_type=row.scim_type,
            detail=row.detail,
            auth_failure=row.auth_failure,
            notes=tuple(row.notes),
            event_detail=row.event_detail,
        )
    )


@dataclass(frozen=True)
class Row:
    """The parts of a log row guidance depends on."""

    event: str
    outcome: str
    status: int
    method: str
    scim_type: str | None
    detail: str | None
    auth_failure: str | None
    notes: tuple[str, ...] = ()
    event_detail: str | None = None


AUTH: dict[str, tuple[str, str]] = {
    "missing": ("Okta sent no Authorization header.", "Paste a SCIM token in Okta → Provisioning → Integration (HTTP Header or Bearer mode), click Test API Credentials, then Save."),
    "basic_scheme": ("Okta sent Basic credentials; SecureCodingHub takes a SCIM token.", "Switch the Okta app to HTTP Header or OAuth Bearer Token and paste a token from Settings → SCIM."),
    "double_prefix": ("The token was pasted with the word Bearer in front, so Okta sent 'Bearer Bearer …'.", "Paste only the token in Okta → Provisioning → Integration; Okta adds 'Bearer' itself. Then Test API Credentials."),
    "wrapped": ("The token reached us with quotes, spaces or invisible characters around it.", "Copy the token again and paste it without surrounding characters, then Test API Credentials."),
    "not_a_scim_token": ("What Okta sent is not a SecureCodingHub SCIM token.", GENERATE_AGAIN),
    "truncated": ("The token is shorter than a SCIM token: it was cut when copied.", "Copy the token again from Settings → SCIM (or generate a new one) and paste it whole; then Test API Credentials."),
    "too_long": ("The token has extra characters at the end.", "Copy the token again and paste it exactly; then Test API Credentials."),
    "mistyped": ("The token's checksum does not match: a character was changed.", "Paste the token rather than typing it, or generate a new one; then Test API Credentials."),
    "unknown": ("The token is not known here: deleted, or from another environment.", GENERATE_AGAIN),
    "revoked": ("The token was revoked, so every Okta request is refused until the app gets a new one.", GENERATE_AGAIN),
    "expired": ("The token has expired.", GENERATE_AGAIN),
}  # fmt: skip

_REQUIRED = re.compile(r"Attribute '([^']+)' is required")
_FORMAT = re.compile(r"Attribute '([^']+)' must be (.+?), not")
_ID = re.compile(r"\(id ([0-9a-f-]{36})\)")
_BASE_URL = re.compile(r"paste into Okta is (\S+)")


def guidance_for(row: Row) -> Guidance | None:
    if row.outcome == events.WARNING:
        return Guidance(
            "warning",
            "Okta's request succeeded but did not do everything it asked: "
            + (row.event_detail or "; ".join(row.notes)),
            "Okta records this as a success and will not retry.",
            "Check the attribute mappings (Provisioning → To App): attributes sent under a "
            "namespace SecureCodingHub does not serve, or removals of members that are not there, "
            "are dropped.",
        )
    if row.outcome != events.FAILURE:
        return None
    detail = row.detail or ""
    if row.status == 401:
        reason = row.auth_failure if row.auth_failure in AUTH else "unknown"
        what, fix = AUTH[reason]
        return Guidance(f"auth.{reason}", what, OKTA_WAITS, fix)
    if row.event == events.WRONG_BASE_URL:
        match = _BASE_URL.search(detail)
        url = match[1] if match else "the base URL shown in Settings → SCIM"
        return Guidance(
            "wrong_base_url",
            "Okta called a URL that is not a SCIM endpoint: the base URL in Okta is wrong.",
            OKTA_WAITS,
            f"Set the SCIM connector base URL in Okta → Provisioning → Integration to exactly {url}, "
            "click Test API Credentials, then retry.",
        )
    if row.status == 400 and (match := _REQUIRED.search(detail)):
        attribute = match[1]
        return Guidance(
            "missing_attribute",
            f"SecureCodingHub refused the user because '{attribute}' is missing or empty.",
            OKTA_WAITS,
            f"In Okta → Provisioning → To App → attribute mappings, map '{attribute}', and check that "
            "the assigned user has a value for it in Okta; then Retry Selected.",
        )
    if row.status == 400 and (match := _FORMAT.search(detail)):
        return Guidance(
            "invalid_format",
            f"'{match[1]}' arrived in the wrong form: it must be {match[2]}.",
            OKTA_WAITS,
            f"Fix the mapping or the user's value for '{match[1]}' in Okta so it is {match[2]}; then Retry Selected.",
        )
    if row.status == 400:
        return Guidance(
            f"bad_request.{row.scim_type or 'other'}",
            f"SecureCodingHub did not accept the request: {detail}",
            OKTA_WAITS,
            "Fix what the detail names (usually an attribute mapping in Okta), then Retry Selected; "
            "if the request came unchanged from Okta, report it with the request id.",
        )
    if row.status == 404 and detail.startswith("Group"):
        return Guidance(
            "group_not_found",
            "Okta refers to a team that does not exist here (deleted in SecureCodingHub, or pushed to another org).",
            OKTA_WAITS,
            "In Okta → Push Groups, unlink the group choosing 'Leave the group in the target app', "
            "then push it again (Push Now).",
        )
    if row.status == 404 and detail.startswith("User"):
        return Guidance(
            "user_not_found",
            "Okta refers to a user that does not exist here (deleted in SecureCodingHub, or created in another org): "
            "Okta shows 'Matching user not found'.",
            OKTA_WAITS,
            "Unassign the user from the app in Okta and assign it again, so Okta creates it anew.",
        )
    if row.status == 409:
        existing = _ID.search(detail)
        which = f"account {existing[1]}" if existing else "an existing account"
        if (
            row.event == events.PUSH_GROUP
            or row.event_detail == f"during {events.PUSH_GROUP}"
            or detail.startswith("A team named")
        ):
            return Guidance(
                "duplicate_group",
                f"A team with that name already exists ({which}).",
                OKTA_WAITS,
                "In Okta → Push Groups, link the existing group (Link Group) instead of creating one.",
            )
        return Guidance(
            "duplicate_user",
            f"The user already exists here as {which}, with the same userName in another case. Okta "
            "looked it up by a different value, usually because the Application username format "
            "(Sign On tab) changed, e.g. from email to Okta username.",
            OKTA_WAITS,
            "Make the Application username format match how the user was first created (or rename "
            f"{which} in SecureCodingHub), then Retry Selected; Okta will link it.",
        )
    if row.status == 412:
        return Guidance(
            "precondition_failed",
            "The resource changed between the client's read and its write (If-Match).",
            "Okta does not send If-Match; another client did. It should read the resource again.",
            "Nothing to fix in Okta; retry the other client's change after a fresh GET.",
        )
    if row.status in (413, 415):
        return Guidance(
            f"http_{row.status}",
            f"The request was refused before it was read: {detail}",
            OKTA_WAITS,
            "A proxy or client setting is sending the wrong media type or too large a body; "
            "fix that (or raise SCIM_MAX_BODY_BYTES), then Retry Selected.",
        )
    if row.status == 429:
        return Guidance(
            "rate_limited",
            "SecureCodingHub asked Okta to slow down.",
            OKTA_RETRIES,
            "Nothing, unless it keeps happening.",
        )
    if row.status >= 500:
        action = (row.event_detail or "").removeprefix("during ")
        idempotent = row.method in ("GET", "PUT", "DELETE") or action in (
            events.DEACTIVATE_USER,
            events.REACTIVATE_USER,
            events.PUSH_GROUP_MEMBERS,
            events.REPLACE_GROUP_MEMBERS,
        )
        safe = (
            "This request is idempotent: retrying it cannot apply it twice."
            if idempotent
            else "Okta looks the user or group up before creating it, so a retry links instead of duplicating."
        )
        return Guidance(
            "server_error",
            "SecureCodingHub failed while handling the request; nothing was changed.",
            OKTA_WAITS,
            f"It is safe to retry: {safe} If it fails again, report the request id.",
        )
    return Guidance(
        f"http_{row.status}",
        detail or "The request failed.",
        OKTA_WAITS,
        "Retry Selected once the cause is fixed.",
    )
