"""Retry guidance for every failure and warning: what happened, what Okta does next, what to fix.

Chosen by the row's code (gateway.provlog.codes) and filled from its arguments and
target; nothing here reads the detail text. The dashboard, the CLI and the alert
runbooks all read it from here.

Okta's own controls, by where a task waits: Dashboard → Tasks → **Retry Selected**
(users), Push Groups → **Push Now** / **Retry All Groups** (teams), **Provision User**
(users assigned before provisioning was on). App Integration Wizard apps test their
connection with **Test Connector Configuration**, OIN apps with **Test API Credentials**.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.provlog import events
from gateway.store.provisioning_log import LogRow

OKTA_WAITS = (
    "Okta does not retry this by itself: the task waits on Dashboard → Tasks until you "
    "click Retry Selected (for groups: Push Groups → Retry All Groups; for users assigned "
    "before provisioning was on: Provision User)."
)
OKTA_WAITS_GROUP = (
    "Okta does not retry this by itself: the group shows an error under Push Groups until "
    "you click Retry All Groups (or Push Now on that group)."
)
OKTA_RETRIES = (
    "Okta retries by itself after the Retry-After seconds, doubling the wait each time, "
    "up to 10 attempts; after the 10th failure the task waits on Dashboard → Tasks."
)
OKTA_NOTHING = "Okta records this as done; nothing waits."
OKTA_SUCCESS = "Okta records this as a success and will not retry."

# App kinds, as gateway.provlog.signals detects them.
OIN, AIW = "oin", "aiw"


def test_button(app_kind: str | None) -> str:
    """The name of Okta's connection test for this kind of app."""
    if app_kind == AIW:
        return "Test Connector Configuration"
    if app_kind == OIN:
        return "Test API Credentials"
    return "Test API Credentials (Test Connector Configuration in an App Integration Wizard app)"


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


@dataclass(frozen=True)
class Row:
    """The parts of a log row guidance depends on."""

    event: str
    outcome: str
    status: int
    method: str
    code: str | None
    code_args: Mapping[str, Any] = field(default_factory=dict)
    event_detail: str | None = None
    target_type: str | None = None
    target_name: str | None = None
    target_id: str | None = None


def guidance_for_log(row: LogRow, *, app_kind: str | None = None) -> Guidance | None:
    return guidance_for(
        Row(
            event=row.event,
            outcome=row.outcome,
            status=row.status,
            method=row.method,
            code=row.code,
            code_args=row.code_args or {},
            event_detail=row.event_detail,
            target_type=row.target_type,
            target_name=row.target_name,
            target_id=str(row.target_id) if row.target_id else None,
        ),
        app_kind=app_kind,
    )


AUTH: dict[str, tuple[str, str]] = {
    "token_missing": ("Okta sent no Authorization header.", "Paste a SCIM token in Okta → Provisioning → Integration (HTTP Header or Bearer mode), click {test}, then Save."),
    "token_basic_scheme": ("Okta sent Basic credentials; SecureCodingHub takes a SCIM token.", "Switch the Okta app to HTTP Header or OAuth Bearer Token and paste a token from Settings → SCIM, then {test}."),
    "token_double_prefix": ("The token was pasted with the word Bearer in front, so Okta sent 'Bearer Bearer …'.", "Paste only the token in Okta → Provisioning → Integration; Okta adds 'Bearer' itself. Then {test}."),
    "token_wrapped": ("The token reached us with quotes, spaces or invisible characters around it.", "Copy the token again and paste it without surrounding characters, then {test}."),
    "token_not_a_scim_token": ("What Okta sent is not a SecureCodingHub SCIM token.", "Generate a token in Settings → SCIM, paste it in Okta → Provisioning → Integration, click {test}, then Save."),
    "token_truncated": ("The token is shorter than a SCIM token: it was cut when copied.", "Copy the token again from Settings → SCIM (or generate a new one) and paste it whole; then {test}."),
    "token_too_long": ("The token has extra characters at the end.", "Copy the token again and paste it exactly; then {test}."),
    "token_mistyped": ("The token's checksum does not match: a character was changed.", "Paste the token rather than typing it, or generate a new one; then {test}."),
    "token_unknown": ("The token is not known here: deleted, or from another environment.", "Generate a new token in Settings → SCIM, paste it in Okta → Provisioning → Integration, click {test}, then Save."),
    "token_revoked": ("The token was revoked, so every Okta request is refused until the app gets a new one.", "Generate a new token in Settings → SCIM, paste it in Okta → Provisioning → Integration, click {test}, then Save."),
    "token_expired": ("The token has expired.", "Generate a new token in Settings → SCIM, paste it in Okta → Provisioning → Integration, click {test}, then Save."),
}  # fmt: skip


def _is_group(row: Row) -> bool:
    return row.target_type == "Group" or "group" in row.event.lower()


def _who(row: Row) -> str:
    """The user or team a row is about, by name where known."""
    noun = "team" if _is_group(row) else "user"
    if row.target_name and row.target_id:
        return f"{noun} {row.target_name} ({row.target_id})"
    if row.target_name or row.target_id:
        return f"{noun} {row.target_name or row.target_id}"
    return f"the {noun}"


def guidance_for(row: Row, *, app_kind: str | None = None) -> Guidance | None:
    code, args = row.code, row.code_args
    test = test_button(app_kind)
    if row.outcome == events.WARNING:
        return _warning(row, code, args)
    if row.outcome != events.FAILURE:
        return None
    waits = OKTA_WAITS_GROUP if _is_group(row) else OKTA_WAITS
    if code in AUTH:
        what, fix = AUTH[code]
        return Guidance(code, what, OKTA_WAITS, fix.format(test=test))
    if code == "wrong_base_url":
        url = args.get("base_url") or "the base URL shown in Settings → SCIM"
        return Guidance(
            code,
            "Okta called a URL that is not a SCIM endpoint: the base URL in Okta is wrong.",
            OKTA_WAITS,
            f"Set the SCIM connector base URL in Okta → Provisioning → Integration to exactly {url}, "
            f"click {test}, then retry.",
        )
    if code == "missing_attribute":
        attribute = args.get("attribute", "a required attribute")
        return Guidance(
            code,
            f"SecureCodingHub refused {_who(row)} because '{attribute}' is missing or empty.",
            waits,
            f"In Okta → Provisioning → To App → attribute mappings, map '{attribute}', and check "
            "that the assigned user has a value for it in Okta; then Retry Selected.",
        )
    if code == "unknown_member":
        values = ", ".join(args.get("values") or []) or "a member"
        skipped = args.get("not_applied_count") or 0
        also = (
            f" Nothing of this request was applied: {skipped} other member change"
            f"{'s' * (skipped != 1)} in it ({', '.join(args.get('not_applied') or [])}) "
            f"{'were' if skipped != 1 else 'was'} not made either."
            if skipped
            else " Nothing of this request was applied."
        )
        return Guidance(
            code,
            f"Okta sent {values} as a member of {_who(row)}, but no such user exists in this org "
            f"(not pushed yet, or deleted here).{also}",
            OKTA_WAITS_GROUP,
            "Assign that person to the app in Okta so the user is created (or remove them from "
            "the Okta group), then Push Groups → Retry All Groups.",
        )
    if code == "duplicate_username":
        existing = args.get("existing_user_name")
        which = (
            f"user {existing} ({args.get('existing_id')})" if existing else "an existing account"
        )
        if args.get("same_case"):
            return Guidance(
                code,
                f"{which} already exists with exactly this userName: two creates of the same "
                "user raced (Okta sent it twice, or its lookup ran before the first create ended).",
                OKTA_WAITS,
                "Retry Selected: Okta looks the user up first and links the existing account.",
            )
        return Guidance(
            code,
            f"The user already exists here as {which}, with the same userName in another case. "
            "Okta looked it up by a different value, usually because the Application username "
            "format (Sign On tab) changed, e.g. from email to Okta username.",
            OKTA_WAITS,
            "Make the Application username format match how the user was first created (or "
            f"rename {which} in SecureCodingHub), then Retry Selected; Okta will link it.",
        )
    if code == "duplicate_external_id":
        return Guidance(
            code,
            f"Another user ({args.get('existing_user_name') or args.get('existing_id') or 'an existing account'}) "
            "already has this externalId: one Okta user mapped to two accounts.",
            OKTA_WAITS,
            "Unassign the duplicate in Okta, or link the existing account; then Retry Selected.",
        )
    if code == "duplicate_team":
        name = args.get("existing_name") or args.get("name") or "that name"
        which = f"{name} ({args['existing_id']})" if args.get("existing_id") else name
        return Guidance(
            code,
            f"A team named {which} already exists here.",
            OKTA_WAITS_GROUP,
            "In Okta → Push Groups, link the existing group (Link Group) instead of creating one.",
        )
    if code in ("user_not_found", "team_not_found"):
        return _not_found(row, code)
    if code == "precondition_failed":
        return Guidance(
            code,
            "The resource changed between the client's read and its write (If-Match).",
            "Okta does not send If-Match; another client did. It should read the resource again.",
            "Nothing to fix in Okta; retry the other client's change after a fresh GET.",
        )
    if code in ("payload_too_large", "unsupported_media_type"):
        return Guidance(
            code,
            "The request was refused before it was read: "
            + (
                "the body is too large."
                if code == "payload_too_large"
                else "it is not SCIM JSON in UTF-8."
            ),
            waits,
            "A proxy or client setting is sending the wrong media type or too large a body; "
            "fix that (or raise SCIM_MAX_BODY_BYTES), then Retry Selected.",
        )
    if code == "rate_limited":
        return Guidance(
            code, "SecureCodingHub asked Okta to slow down.", OKTA_RETRIES,
            "Nothing, unless it keeps happening.",
        )  # fmt: skip
    if code == "client_closed":
        return Guidance(
            code,
            "Okta (or a proxy) closed the connection before SecureCodingHub answered, usually "
            "its 60-second timeout.",
            waits,
            "Retry Selected. If it keeps happening, check the gateway's latency on the "
            "monitoring dashboard.",
        )
    if code in ("db_unavailable", "server_error"):
        return _server_error(row, code)
    if code in ("invalid_value", "invalid_syntax", "invalid_path", "invalid_filter", "mutability"):
        attribute = args.get("attribute")
        subject = f"'{attribute}'" if attribute else "the request"
        return Guidance(
            code,
            f"SecureCodingHub did not accept {subject} for {_who(row)}: see the reason.",
            waits,
            "Fix what the reason names (usually an attribute mapping in Okta → Provisioning → "
            "To App), then Retry Selected; if the request came unchanged from Okta, report it "
            "with the request id.",
        )
    return Guidance(
        code or f"http_{row.status}",
        "The request failed: see the reason.",
        waits,
        "Retry Selected once the cause is fixed.",
    )


def _capitalized(text: str) -> str:
    """The first letter up, the rest as it is (userNames keep their case)."""
    return text[:1].upper() + text[1:]


def _not_found(row: Row, code: str) -> Guidance:
    team = code == "team_not_found"
    if row.event in (events.DELETE_USER, events.DELETE_GROUP):
        return Guidance(
            code,
            f"Okta deleted {_who(row)}, which was already gone here.",
            OKTA_NOTHING,
            "Nothing is left to do.",
        )
    if row.event == events.DEACTIVATE_USER:
        return Guidance(
            code,
            f"Okta deactivated {_who(row)}, which does not exist here (deleted in "
            "SecureCodingHub, or created in another org): the person has no access here.",
            "Okta shows the deactivation as failed on Dashboard → Tasks; it does not retry it.",
            "Nothing to restore: dismiss the task in Okta (Dashboard → Tasks). Do not "
            "re-provision a user you meant to deactivate.",
        )
    if team:
        return Guidance(
            code,
            f"Okta refers to {_who(row)}, which does not exist here (deleted in "
            "SecureCodingHub, or pushed to another org).",
            OKTA_WAITS_GROUP,
            "In Okta → Push Groups, unlink the group choosing 'Leave the group in the target app', "
            "then push it again (Push Now).",
        )
    return Guidance(
        code,
        f"Okta refers to {_who(row)}, which does not exist here (deleted in SecureCodingHub, "
        "or created in another org): Okta shows 'Matching user not found'.",
        OKTA_WAITS,
        "Unassign the user from the app in Okta and assign it again, so Okta creates it anew.",
    )


def _server_error(row: Row, code: str) -> Guidance:
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
    what = (
        "SecureCodingHub's database was unavailable; nothing was changed."
        if code == "db_unavailable"
        else "SecureCodingHub failed while handling the request; nothing was changed."
    )
    return Guidance(
        code,
        what,
        OKTA_WAITS_GROUP if _is_group(row) else OKTA_WAITS,
        f"It is safe to retry: {safe} If it fails again, report the request id.",
    )


def _warning(row: Row, code: str | None, args: Mapping[str, Any]) -> Guidance:
    if code == "duplicate_account":
        other = f"{args.get('other_user_name')} ({args.get('other_id')})"
        return Guidance(
            code,
            f"{_capitalized(_who(row))} and user {other} look like one person with two accounts: "
            f"{args.get('email')} is the other account's {args.get('matched_as', 'email')}. "
            "Single sign-on matches people by email, so they will sign in to only one of the "
            "two, and their training history is split.",
            OKTA_SUCCESS,
            "Check Okta's Sign On → Application username format (e.g. userPrincipalName vs "
            "mail): keep the format the first account was created with, then delete the newer "
            f"account here, or merge them, and unassign/reassign the user in Okta so it links {other}.",
        )
    if code in ("member_not_present", "value_not_present"):
        return Guidance(
            code,
            f"Okta removed values from {_who(row)} that were not there: "
            + (row.event_detail or "nothing changed for them."),
            OKTA_SUCCESS,
            "Nothing, unless memberships look wrong: then push the group again (Push Now).",
        )
    if code == "unchanged":
        return Guidance(
            code,
            f"Okta sent {_who(row)} exactly as stored: nothing changed.",
            OKTA_SUCCESS,
            "Nothing. Many such updates mean Okta re-sends users on every import; that is harmless.",
        )
    return Guidance(
        code or "warning",
        f"Okta's request for {_who(row)} succeeded but did not do everything it asked: "
        + (row.event_detail or "see the notes."),
        OKTA_SUCCESS,
        "Check the attribute mappings (Provisioning → To App): attributes sent under a "
        "namespace SecureCodingHub does not serve are dropped.",
    )
