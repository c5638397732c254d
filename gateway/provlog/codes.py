"""Stable codes for every failure and warning the provisioning log records.

A code is decided once, where the failure or the warning arises (a `ScimError`,
an authentication check, a note added by a handler, the duplicate detector inside
the write statement), stored in the row's `code` column with its arguments in
`code_args`, and read everywhere else: guidance, the CLI, the dashboard and the
metrics. Nothing downstream re-derives a code from a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Code:
    name: str
    kind: str  # failure | warning | note
    meaning: str


_FAILURES = (
    ("token_missing", "Okta sent no Authorization header."),
    ("token_basic_scheme", "Basic credentials instead of a SCIM token."),
    ("token_double_prefix", "The token was pasted with 'Bearer' in front of it."),
    ("token_wrapped", "The token arrived with quotes, spaces or invisible characters."),
    ("token_not_a_scim_token", "The credential is not a SecureCodingHub SCIM token."),
    ("token_truncated", "The token was cut short when copied."),
    ("token_too_long", "The token has extra characters at its end."),
    ("token_mistyped", "The token's checksum does not match: a character changed."),
    ("token_unknown", "The token is not known here (deleted, or another environment)."),
    ("token_revoked", "The token was revoked."),
    ("token_expired", "The token has expired."),
    ("wrong_base_url", "A URL that is not a SCIM endpoint: the base URL in Okta is wrong."),
    ("missing_attribute", "A required attribute is missing or empty."),
    ("invalid_value", "An attribute has a value of the wrong type or form."),
    ("invalid_syntax", "The body is not the JSON object SCIM expects."),
    ("invalid_filter", "The filter does not parse or names an unknown attribute."),
    ("invalid_path", "A PATCH path does not parse or names an unknown attribute."),
    ("mutability", "The request tries to change a read-only attribute (such as id)."),
    ("unknown_member", "A team member is not a user of this org."),
    ("duplicate_username", "Another user of the org has this userName (in any case)."),
    ("duplicate_external_id", "Another user of the org has this externalId."),
    ("duplicate_team", "Another team of the org has this name (in any case)."),
    ("user_not_found", "The user does not exist in this org."),
    ("team_not_found", "The team does not exist in this org."),
    ("precondition_failed", "The resource changed since the client read it (If-Match)."),
    ("method_not_allowed", "The HTTP method is not supported on this endpoint."),
    ("payload_too_large", "The body is larger than the gateway accepts."),
    ("unsupported_media_type", "The body's media type or charset is not SCIM JSON in UTF-8."),
    ("rate_limited", "The client sent more requests than its share."),
    ("db_unavailable", "The database could not be reached; nothing was changed."),
    ("server_error", "The gateway failed while handling the request; nothing was changed."),
    ("client_closed", "The client closed the connection before the response was sent."),
    ("bad_request", "Any other request the gateway refused (see the detail)."),
)
_WARNINGS = (
    ("duplicate_account", "Another user's userName or email is one of this user's emails."),
    ("attributes_ignored", "Attributes under a schema we do not serve, or unknown, were dropped."),
    ("member_not_present", "A member removal matched nobody."),
    ("value_not_present", "A PATCH remove of a value (an email, a phone…) matched none."),
    ("unchanged", "A PUT or PATCH identical to the stored user changed nothing."),
)
_NOTES = (
    ("unchanged_team", "A team change that matched the stored team (Okta repeats the name)."),
    ("primary_kept", "More than one value was marked primary; the first was kept."),
)

CODES: Final[dict[str, Code]] = {
    **{name: Code(name, "failure", meaning) for name, meaning in _FAILURES},
    **{name: Code(name, "warning", meaning) for name, meaning in _WARNINGS},
    **{name: Code(name, "note", meaning) for name, meaning in _NOTES},
}
WARNING_CODES: Final = frozenset(name for name, _ in _WARNINGS)

# RFC 7644 scimType → code, for errors raised without a code of their own.
_SCIM_TYPES = {
    "invalidValue": "invalid_value",
    "invalidSyntax": "invalid_syntax",
    "invalidFilter": "invalid_filter",
    "invalidPath": "invalid_path",
    "noTarget": "invalid_path",
    "mutability": "mutability",
    "uniqueness": "duplicate_username",
    "tooMany": "invalid_filter",
    "invalidVers": "precondition_failed",
}
_STATUSES = {
    404: "wrong_base_url",
    405: "method_not_allowed",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    499: "client_closed",
    503: "db_unavailable",
}


def auth_code(failure: str) -> str:
    """The code of a 401, from the authentication failure's name."""
    return f"token_{failure}"


def default_code(status: int, scim_type: str | None) -> str | None:
    """The code of an error raised without one: by scimType, then by status."""
    if status < 400:
        return None
    if scim_type in _SCIM_TYPES:
        return _SCIM_TYPES[scim_type]
    if status in _STATUSES:
        return _STATUSES[status]
    if status >= 500:
        return "server_error"
    return "bad_request"


def code_table() -> list[Code]:
    """Every code, for README and `logs --help`."""
    return list(CODES.values())
