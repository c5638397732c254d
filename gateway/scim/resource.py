"""Resource documents: validate and normalise input, fold case, project output.

A stored document ("attrs") holds every client-writable attribute under its
canonical name: core attributes at the top level, each extension under its URN.
`id`, `meta`, `groups` and `password` never enter it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.scim.errors import ScimError
from gateway.scim.schema import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER,
    GROUP,
    USER,
    Attr,
    Schema,
)

_TRUE = frozenset({"true"})
_FALSE = frozenset({"false"})
_JSON_TYPE = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def json_kind(value: Any) -> str:
    return "null" if value is None else _JSON_TYPE.get(type(value), "a value")


@dataclass(frozen=True)
class Resolved:
    """An attribute path resolved against a resource type's schemas."""

    schema: Schema | None  # None for common attributes (id, externalId, meta)
    attr: Attr
    sub: Attr | None = None

    @property
    def is_extension(self) -> bool:
        return self.schema is not None and self.schema.id not in (USER.id, GROUP.id)

    @property
    def dotted(self) -> str:
        name = self.attr.name if self.sub is None else f"{self.attr.name}.{self.sub.name}"
        if self.schema is not None and self.is_extension:
            return f"{self.schema.id}:{name}"
        return name

    @property
    def leaf(self) -> Attr:
        return self.sub or self.attr


@dataclass(frozen=True)
class ResourceType:
    name: str
    endpoint: str
    description: str
    core: Schema
    extensions: tuple[Schema, ...] = ()

    def schema_for_urn(self, urn: str) -> Schema | None:
        lowered = urn.lower()
        for schema in (self.core, *self.extensions):
            if schema.id.lower() == lowered:
                return schema
        return None

    def resolve(self, uri: str | None, attr: str, sub: str | None = None) -> Resolved | None:
        """Find `[uri:]attr[.sub]`; names are case-insensitive (RFC 7643 §2.1)."""
        if uri is not None:
            schema = self.schema_for_urn(uri)
            if schema is None:
                return None
            schemas: tuple[Schema | None, ...] = (schema,)
        else:
            schemas = (self.core, None)
        for schema in schemas:
            found = COMMON_ATTRIBUTES.get(attr.lower()) if schema is None else schema.attr(attr)
            if found is None:
                continue
            if sub is None:
                return Resolved(schema, found)
            sub_attr = found.sub_attr(sub)
            if sub_attr is None:
                return None
            return Resolved(schema, found, sub_attr)
        return None

    def split_urn_path(self, path: str) -> tuple[str | None, str]:
        """`urn:…:User:department` → (extension URN, 'department'); plain names pass through."""
        lowered = path.lower()
        for schema in (self.core, *self.extensions):
            prefix = schema.id.lower() + ":"
            if lowered.startswith(prefix):
                return schema.id, path[len(prefix) :]
        return None, path


USER_TYPE = ResourceType(
    name="User",
    endpoint="/Users",
    description="User Account",
    core=USER,
    extensions=(ENTERPRISE_USER,),
)


GROUP_TYPE = ResourceType(
    name="Group",
    endpoint="/Groups",
    description="Group (a SecureCodingHub team)",
    core=GROUP,
)


class NoteSink(Protocol):
    """Where a dropped attribute is noted: the request's provisioning-log entry."""

    def note(self, code: str, text: str) -> None: ...


@dataclass
class Normalizer:
    """Turn a request's attributes into stored form, noting what was dropped."""

    resource: ResourceType
    log: NoteSink | None = None
    # What was noted, as a set: a body of many unknown keys must not cost a scan per key.
    _noted: set[str] = field(default_factory=set, init=False, repr=False)

    def note(self, text: str, code: str = "attributes_ignored") -> None:
        if text in self._noted:
            return
        self._noted.add(text)
        if self.log is not None:
            self.log.note(code, text)

    def document(self, body: dict[str, Any], *, require: bool = True) -> dict[str, Any]:
        """The stored attributes of a full resource body (POST or PUT).

        `require=False` accepts documents without required attributes: users stored
        before an attribute became required (and the tests that seed them).
        """
        attrs: dict[str, Any] = {}
        for key, value in body.items():
            self.put(attrs, key, value)
        if require:
            self.require(attrs)
        return attrs

    def put(self, attrs: dict[str, Any], key: str, value: Any) -> None:
        """Set one top-level key of a body (or of a path-less PATCH value) into `attrs`."""
        lowered = key.lower()
        if lowered in ("schemas", "id", "meta") or lowered == "groups":
            return  # read-only or envelope; Okta echoes them on PUT
        if lowered == "externalid":
            self._set(
                attrs,
                "externalId",
                self.value(COMMON_ATTRIBUTES["externalid"], value, "externalId"),
            )
            return
        extension = next(
            (s for s in self.resource.extensions if s.id.lower() == lowered),
            None,
        )
        if extension is not None:
            if value is None:
                attrs.pop(extension.id, None)
                return
            if not isinstance(value, dict):
                raise invalid_value(extension.id, "an object", value)
            target = attrs.setdefault(extension.id, {})
            for sub_key, sub_value in value.items():
                attr = extension.attr(sub_key)
                if attr is None:
                    self.note(f"ignored unknown attribute {extension.id}:{sub_key}")
                    continue
                if not attr.writable:
                    continue
                self._set(
                    target, attr.name, self.value(attr, sub_value, f"{extension.id}:{attr.name}")
                )
            if not target:
                attrs.pop(extension.id, None)
            return
        uri, name = self.resource.split_urn_path(key)
        if uri is None and lowered.startswith("urn:"):
            self.note(f"ignored attributes under {key} (schema not served)")
            return
        if uri is not None and uri != self.resource.core.id:
            schema = self.resource.schema_for_urn(uri)
            assert schema is not None
            self.put(attrs, schema.id, {name: value})
            return
        attr = self.resource.core.attr(name)
        if attr is None:
            self.note(f"ignored unknown attribute {key}")
            return
        if attr.name == "password" or not attr.writable:
            return  # password: accepted, never stored; read-only: ignored on input
        self._set(attrs, attr.name, self.value(attr, value, attr.name))

    @staticmethod
    def _set(target: dict[str, Any], name: str, value: Any) -> None:
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value

    def value(self, attr: Attr, value: Any, where: str) -> Any:
        """Check and normalise one attribute value; None means unassigned."""
        if value is None:
            return None
        if attr.multi:
            if not isinstance(value, list):
                raise invalid_value(where, "an array", value)
            items = [self.single(attr, item, f"{where}[{i}]") for i, item in enumerate(value)]
            items = [item for item in items if item not in (None, {})]
            if attr.type == "complex":
                self._one_primary(items, where)
            return items or None
        return self.single(attr, value, where)

    def single(self, attr: Attr, value: Any, where: str) -> Any:
        if value is None:
            return None
        if attr.type == "complex":
            if isinstance(value, str) and attr.sub_attr("value") is not None and not attr.multi:
                value = {"value": value}  # Entra sends manager as a bare id
            if not isinstance(value, dict):
                raise invalid_value(where, "an object", value)
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = attr.sub_attr(key)
                if sub is None:
                    self.note(f"ignored unknown attribute {where}.{key}")
                    continue
                if sub.mutability == "readOnly":
                    continue
                checked = self.single(sub, item, f"{where}.{sub.name}")
                if checked is not None:
                    out[sub.name] = checked
            return out
        if attr.type == "boolean":
            if isinstance(value, bool):
                return value
            # Entra sends "True"/"False".
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise invalid_value(where, "true or false", value)
        if attr.type in ("string", "reference", "binary", "dateTime"):
            if not isinstance(value, str):
                raise invalid_value(where, "a string", value)
            return check_text(value, where, attr.max_length)
        if attr.type in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid_value(where, "a number", value)
            return value
        raise invalid_value(where, attr.type, value)

    def _one_primary(self, items: list[Any], where: str) -> None:
        seen = False
        for item in items:
            if isinstance(item, dict) and item.get("primary") is True:
                if seen:
                    item["primary"] = False
                    self.note(
                        f"{where}: more than one primary value; kept the first", "primary_kept"
                    )
                seen = True

    def require(self, attrs: dict[str, Any]) -> None:
        for attr in self.resource.core.attributes:
            if not attr.required:
                continue
            value = attrs.get(attr.name)
            missing = [attr.name] if not value else []
            if attr.type == "complex" and not attr.multi:
                missing = [
                    f"{attr.name}.{sub.name}"
                    for sub in attr.sub
                    if sub.required and not (isinstance(value, dict) and value.get(sub.name))
                ]
            if missing:
                raise ScimError(
                    400,
                    f"Attribute '{missing[0]}' is required and missing or empty. In Okta, check "
                    f"the {missing[0]} mapping under Provisioning → To App and that the user has a value.",
                    scim_type="invalidValue",
                    code="missing_attribute",
                    args={"attribute": missing[0]},
                )


def storable(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor unpaired UTF-16 surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, where: str, max_length: int) -> str:
    if len(value) > max_length:
        raise ScimError(
            400,
            f"Attribute '{where}' is {len(value)} characters long; at most {max_length} are "
            "accepted. Shorten the value (or its mapping) in Okta.",
            scim_type="invalidValue",
        )
    if not storable(value):
        raise ScimError(
            400,
            f"Attribute '{where}' contains a NUL character or an unpaired surrogate (\\u0000, "
            "\\ud800-\\udfff); remove it from the value in Okta.",
            scim_type="invalidValue",
        )
    return value


def invalid_value(where: str, expected: str, value: Any) -> ScimError:
    return ScimError(
        400,
        f"Attribute '{where}' must be {expected}, not {json_kind(value)}.",
        scim_type="invalidValue",
        args={"attribute": where, "expected": expected},
    )


def fold(attrs: dict[str, Any], resource: ResourceType) -> dict[str, Any]:
    """A copy of `attrs` with every caseExact=false string casefolded, for matching."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "externalId":
            out[key] = value
            continue
        schema = resource.schema_for_urn(key)
        if schema is not None:
            out[key] = {k: _fold_value(schema.attr(k), v) for k, v in value.items()}
            continue
        out[key] = _fold_value(resource.core.attr(key), value)
    return out


def _fold_value(attr: Attr | None, value: Any) -> Any:
    if attr is None:
        return value
    if isinstance(value, list):
        return [_fold_single(attr, item) for item in value]
    return _fold_single(attr, value)


def _fold_single(attr: Attr, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _fold_single(attr.sub_attr(k) or attr, v) for k, v in value.items()}
    if isinstance(value, str) and not attr.case_exact:
        return value.casefold()
    return value


def project(
    doc: dict[str, Any],
    resource: ResourceType,
    attributes: Iterable[str] = (),
    excluded: Iterable[str] = (),
) -> dict[str, Any]:
    """Apply `attributes`/`excludedAttributes` (RFC 7644 §3.4.2.5) to a rendered resource."""
    wanted = [_projection_path(resource, p) for p in attributes]
    unwanted = [_projection_path(resource, p) for p in excluded]
    if wanted:
        out: dict[str, Any] = {k: doc[k] for k in ("schemas", "id") if k in doc}
        for path in wanted:
            if path is not None:
                _copy_path(doc, out, path)
        for key, value in out.items():
            if isinstance(value, list):
                out[key] = [item for item in value if item != {}]
        return out
    if unwanted:
        out = dict(doc)
        for path in unwanted:
            if path is not None and path[-1] not in ("id", "schemas"):
                _drop_path(out, path)
        return out
    return doc


def _projection_path(resource: ResourceType, raw: str) -> tuple[str, ...] | None:
    raw = raw.strip()
    schema = resource.schema_for_urn(raw)
    if schema is not None:
        return (schema.id,) if schema is not resource.core else None
    uri, rest = resource.split_urn_path(raw)
    attr_name, _, sub_name = rest.partition(".")
    resolved = resource.resolve(uri, attr_name, sub_name or None)
    if resolved is None:
        return None
    path: tuple[str, ...] = (resolved.attr.name,)
    if resolved.is_extension and resolved.schema is not None:
        path = (resolved.schema.id, *path)
    if resolved.sub is not None:
        path = (*path, resolved.sub.name)
    return path


def _copy_path(src: dict[str, Any], dst: dict[str, Any], path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    if head not in src:
        return
    value = src[head]
    if not rest:
        dst[head] = value
    elif isinstance(value, dict):
        target = dst.setdefault(head, {})
        _copy_path(value, target, rest)
        if not target:
            del dst[head]
    elif isinstance(value, list):
        # Multi-valued complex: keep the requested sub-attribute of each value, merging
        # with sub-attributes already copied (attributes=emails.value,emails.type).
        merged = dst.get(head) or [{} for _ in value]
        for item, target in zip(value, merged, strict=True):
            if isinstance(item, dict) and rest[0] in item:
                target[rest[0]] = item[rest[0]]
        dst[head] = merged


def _drop_path(doc: dict[str, Any], path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    if head not in doc:
        return
    if not rest:
        del doc[head]
        return
    value = doc[head]
    if isinstance(value, list):
        doc[head] = [{k: v for k, v in item.items() if k != rest[0]} for item in value]
    elif isinstance(value, dict):
        doc[head] = {k: v for k, v in value.items() if k != rest[0]}
