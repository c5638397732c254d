"""The SCIM schemas served here (RFC 7643 §4, §8.7), as data.

One definition drives validation of input, case folding, filters, sorting,
`attributes`/`excludedAttributes` and the `/Schemas` discovery documents, so
they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.scim.limits import MAX_INDEXED_STRING, MAX_STRING

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference binary complex
    description: str = ""
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"
    canonical: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub: tuple[Attr, ...] = ()
    # Longest accepted string value, in characters; indexed attributes get less.
    max_length: int = MAX_STRING
    _sub_index: dict[str, Attr] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._sub_index.update({a.name.lower(): a for a in self.sub})

    def sub_attr(self, name: str) -> Attr | None:
        return self._sub_index.get(name.lower())

    @property
    def writable(self) -> bool:
        return self.mutability in ("readWrite", "writeOnly", "immutable")

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
        }
        if self.type != "complex":
            doc["caseExact"] = self.case_exact
        if self.canonical:
            doc["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            doc["referenceTypes"] = list(self.reference_types)
        doc.update(mutability=self.mutability, returned=self.returned, uniqueness=self.uniqueness)
        if self.sub:
            doc["subAttributes"] = [a.to_document() for a in self.sub]
        return doc


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]
    _index: dict[str, Attr] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({a.name.lower(): a for a in self.attributes})

    def attr(self, name: str) -> Attr | None:
        return self._index.get(name.lower())

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_document() for a in self.attributes],
        }

    def walk(self) -> Iterator[tuple[str, Attr]]:
        for attr in self.attributes:
            yield attr.name, attr
            for sub in attr.sub:
                yield f"{attr.name}.{sub.name}", sub


def _s(name: str, description: str, **kw: Any) -> Attr:
    return Attr(name, "string", description, **kw)


_PRIMARY = Attr("primary", "boolean", "Whether this is the preferred value; true at most once.")


def _multi(
    name: str,
    description: str,
    types: tuple[str, ...],
    value_type: str = "string",
    *,
    value_case_exact: bool = False,
    reference_types: tuple[str, ...] = (),
    value_max_length: int = MAX_STRING,
) -> Attr:
    return Attr(
        name,
        "complex",
        description,
        multi=True,
        sub=(
            Attr(
                "value",
                value_type,
                f"The value of the {name} entry.",
                case_exact=value_case_exact,
                reference_types=reference_types,
                max_length=value_max_length,
            ),
            _s("display", "A human-readable name, primarily used for display purposes."),
            _s("type", "A label indicating the attribute's function.", canonical=types),
            _PRIMARY,
        ),
    )


USER = Schema(
    id=USER_SCHEMA,
    name="User",
    description="User Account",
    attributes=(
        _s(
            "userName",
            "Unique identifier for the User, used to sign in. Matched case-insensitively, "
            "returned exactly as sent.",
            required=True,
            uniqueness="server",
            max_length=MAX_INDEXED_STRING,
        ),
        Attr(
            "name",
            "complex",
            "The components of the user's real name. SecureCodingHub needs a given and a "
            "family name for every learner (certificates carry them).",
            required=True,
            sub=(
                _s("formatted", "The full name, formatted for display."),
                _s("familyName", "The family name, or last name.", required=True),
                _s("givenName", "The given name, or first name.", required=True),
                _s("middleName", "The middle name(s)."),
                _s("honorificPrefix", "The honorific prefix(es), e.g. 'Ms.'."),
                _s("honorificSuffix", "The honorific suffix(es), e.g. 'III'."),
            ),
        ),
        _s(
            "displayName",
            "The name of the User, suitable for display to end-users.",
            max_length=MAX_INDEXED_STRING,
        ),
        _s("nickName", "The casual way to address the user."),
        Attr(
            "profileUrl",
            "reference",
            "A URI to the user's online profile.",
            reference_types=("external",),
        ),
        _s("title", "The user's title, such as 'Vice President'."),
        _s("userType", "The relationship between the organization and the user, e.g. 'Employee'."),
        _s("preferredLanguage", "The preferred written or spoken language, e.g. 'en-US'."),
        _s("locale", "The default location for localizing, e.g. 'en-US'."),
        _s("timezone", "The time zone in IANA format, e.g. 'America/Los_Angeles'."),
        Attr("active", "boolean", "Whether the account is active; deactivation keeps the user."),
        Attr(
            "password",
            "string",
            "Accepted and discarded: never stored, returned or logged.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi(
            "emails",
            "Email addresses for the user.",
            ("work", "home", "other"),
            value_max_length=MAX_INDEXED_STRING,
        ),
        _multi(
            "phoneNumbers",
            "Phone numbers for the user.",
            ("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the user.",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi(
            "photos",
            "URLs of photos of the user.",
            ("photo", "thumbnail"),
            "reference",
            value_case_exact=True,
            reference_types=("external",),
        ),
        Attr(
            "addresses",
            "complex",
            "Physical mailing addresses for the user.",
            multi=True,
            sub=(
                _s("formatted", "The full mailing address, formatted for display."),
                _s("streetAddress", "The full street address component."),
                _s("locality", "The city or locality component."),
                _s("region", "The state or region component."),
                _s("postalCode", "The zip code or postal code component."),
                _s("country", "The country name component."),
                _s(
                    "type",
                    "A label indicating the address's function.",
                    canonical=("work", "home", "other"),
                ),
                _PRIMARY,
            ),
        ),
        Attr(
            "groups",
            "complex",
            "The groups (teams) the user belongs to; changed through /Groups only.",
            multi=True,
            mutability="readOnly",
            sub=(
                Attr(
                    "value",
                    "string",
                    "The id of the group.",
                    case_exact=True,
                    mutability="readOnly",
                ),
                Attr(
                    "$ref",
                    "reference",
                    "The URI of the group.",
                    case_exact=True,
                    mutability="readOnly",
                    reference_types=("Group",),
                ),
                _s("display", "The group's displayName.", mutability="readOnly"),
                _s(
                    "type",
                    "'direct' membership.",
                    canonical=("direct", "indirect"),
                    mutability="readOnly",
                ),
            ),
        ),
        _multi("entitlements", "Entitlements for the user.", ()),
        _multi("roles", "Roles for the user.", ()),
        _multi(
            "x509Certificates",
            "DER-encoded X.509 certificates, base64.",
            (),
            "binary",
            value_case_exact=True,
        ),
    ),
)

ENTERPRISE_USER = Schema(
    id=ENTERPRISE_USER_SCHEMA,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        _s("employeeNumber", "A string identifier, typically numeric or alphanumeric."),
        _s("costCenter", "The name of a cost center."),
        _s("organization", "The name of an organization."),
        _s("division", "The name of a division."),
        _s("department", "The name of a department."),
        Attr(
            "manager",
            "complex",
            "The user's manager.",
            sub=(
                Attr("value", "string", "The id of the manager's SCIM resource.", case_exact=True),
                Attr(
                    "$ref",
                    "reference",
                    "The URI of the manager's SCIM resource.",
                    case_exact=True,
                    reference_types=("User",),
                ),
                _s("displayName", "The manager's displayName.", mutability="readOnly"),
            ),
        ),
    ),
)

GROUP = Schema(
    id=GROUP_SCHEMA,
    name="Group",
    description="Group (a SecureCodingHub team)",
    attributes=(
        _s(
            "displayName",
            "The team's name; unique in the org, compared case-insensitively, kept as sent.",
            required=True,
            uniqueness="server",
            max_length=MAX_INDEXED_STRING,
        ),
        Attr(
            "members",
            "complex",
            "The users in the team. PATCH /Groups answers 204 No Content (members are not "
            "echoed, so a change to a 100,000-member team stays small); ask for a body with "
            "?attributes= or ?excludedAttributes=.",
            multi=True,
            sub=(
                Attr(
                    "value",
                    "string",
                    "The id of a User of this org.",
                    case_exact=True,
                    mutability="immutable",
                ),
                Attr(
                    "$ref",
                    "reference",
                    "The URI of the member.",
                    case_exact=True,
                    mutability="immutable",
                    reference_types=("User",),
                ),
                _s(
                    "display",
                    "The member's name, as the client sent it (Okta: the username).",
                    max_length=MAX_INDEXED_STRING,
                ),
                Attr(
                    "type",
                    "string",
                    "The member's resource type; only User members are supported.",
                    case_exact=True,
                    mutability="immutable",
                    canonical=("User",),
                ),
            ),
        ),
    ),
)

# Attributes every resource has (RFC 7643 §3.1); not part of any schema document.
COMMON_ATTRIBUTES: dict[str, Attr] = {
    "id": Attr(
        "id",
        "string",
        "Server-assigned id.",
        case_exact=True,
        mutability="readOnly",
        returned="always",
    ),
    "externalid": Attr(
        "externalId",
        "string",
        "The client's id for the resource; unique in the org.",
        case_exact=True,
        max_length=MAX_INDEXED_STRING,
    ),
    "meta": Attr(
        "meta",
        "complex",
        "Resource metadata.",
        mutability="readOnly",
        sub=(
            Attr("resourceType", "string", case_exact=True, mutability="readOnly"),
            Attr("created", "dateTime", mutability="readOnly"),
            Attr("lastModified", "dateTime", mutability="readOnly"),
            Attr("location", "reference", case_exact=True, mutability="readOnly"),
            Attr("version", "string", case_exact=True, mutability="readOnly"),
        ),
    ),
}
