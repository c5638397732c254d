"""PATCH (RFC 7644 §3.5.2) applied to a stored document, all or nothing.

Paths are parsed by scim2-models; the operations are applied here, to a copy, so
an invalid last operation leaves the resource as it was. Okta's path-less
`{"op":"replace","value":{"active":false}}` and Entra's dialect (capitalised ops,
"False" strings, dotted keys, `emails[type eq "work"].value`) land in the same
state as the RFC forms.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from scim2_models import InvalidPathException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Path,
    Present,
    ValuePath,
)

from gateway.scim.body import large_body
from gateway.scim.errors import ScimError
from gateway.scim.limits import MAX_OPERATIONS, MAX_PATCH_PATH_CHARACTERS, MAX_PATCH_PATHS
from gateway.scim.resource import Normalizer, Resolved, ResourceType

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_OPS = ("add", "replace", "remove")
# Parsing a path takes scim2-models tens of microseconds: operations naming more
# than this many are applied on a worker thread (see `named_paths`).
OFF_LOOP_PATHS = 64


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidPath")


def mutability(name: str) -> ScimError:
    return ScimError(
        400,
        f"Attribute '{name}' is read-only and cannot be changed by PATCH.",
        scim_type="mutability",
    )


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="noTarget")


@dataclass(frozen=True)
class Operation:
    index: int
    op: str
    path: str | None
    value: Any


def parse_operations(body: dict[str, Any]) -> list[Operation]:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas:
        raise ScimError(
            400,
            f'A PATCH body must have "schemas": ["{PATCH_OP_SCHEMA}"].',
            scim_type="invalidSyntax",
        )
    raw = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(raw, list) or not raw:
        raise ScimError(
            400, 'A PATCH body needs a non-empty "Operations" array.', scim_type="invalidSyntax"
        )
    if len(raw) > MAX_OPERATIONS:
        raise ScimError(
            400,
            f"At most {MAX_OPERATIONS} operations per PATCH, not {len(raw)}; send them in "
            "several requests.",
            scim_type="tooMany",
        )
    ops = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ScimError(400, f"Operations[{i}] must be an object.", scim_type="invalidSyntax")
        fields = {k.lower(): v for k, v in item.items()}
        op = fields.get("op")
        if not isinstance(op, str) or op.lower() not in _OPS:
            raise ScimError(
                400,
                f"Operations[{i}].op must be add, replace or remove, not {op!r}.",
                scim_type="invalidSyntax",
            )
        path = fields.get("path")
        if path is not None and not isinstance(path, str):
            raise invalid_path(f"Operations[{i}].path must be a string.")
        ops.append(
            Operation(
                i, op.lower(), path.strip() if path and path.strip() else None, fields.get("value")
            )
        )
    if (named := named_paths(ops)) > MAX_PATCH_PATHS:
        raise ScimError(
            400,
            f"The operations name {named} attributes (paths, and keys of path-less values); at "
            f"most {MAX_PATCH_PATHS} are accepted per PATCH. Send them in several requests.",
            scim_type="tooMany",
        )
    if (characters := sum(len(op.path or "") for op in ops)) > MAX_PATCH_PATH_CHARACTERS:
        raise ScimError(
            400,
            f"The operations' paths are {characters} characters long in all; at most "
            f"{MAX_PATCH_PATH_CHARACTERS} are accepted per PATCH. Send them in several requests.",
            scim_type="tooMany",
        )
    return ops


def off_loop_patch(request: web.Request, operations: list[Operation]) -> bool:
    """Whether to apply these operations on a worker thread: many paths, or a large body."""
    return named_paths(operations) > OFF_LOOP_PATHS or large_body(request)


def named_paths(operations: list[Operation]) -> int:
    """The attributes operations name: each path, and each key of a path-less value."""
    return sum(
        len(op.value) if op.path is None and isinstance(op.value, dict) else 1 for op in operations
    )


class Patcher:
    """Apply operations to a copy of a stored document."""

    def __init__(self, resource: ResourceType, normalizer: Normalizer, resource_id: str) -> None:
        self.resource = resource
        self.normalizer = normalizer
        self.resource_id = resource_id

    def apply(self, attrs: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
        doc = copy.deepcopy(attrs)
        for operation in operations:
            self.operation(doc, operation)
        return self.normalizer.document(doc)

    def operation(self, doc: dict[str, Any], op: Operation) -> None:
        where = f"Operations[{op.index}]"
        if op.path is None:
            if op.op == "remove":
                raise no_target(f"{where}: remove needs a path naming what to remove.")
            if not isinstance(op.value, dict):
                raise ScimError(
                    400,
                    f"{where}: without a path, value must be an object of attributes, e.g. "
                    '{"active": false}.',
                    scim_type="invalidValue",
                )
            for key, value in op.value.items():
                self.pathless_item(doc, op, key, value)
            return
        self.at_path(doc, op.op, op.path, op.value, where, explicit=True)

    def pathless_item(self, doc: dict[str, Any], op: Operation, key: str, value: Any) -> None:
        lowered = key.lower()
        if lowered == "id":
            # Okta repeats the id in a rename value; only a different id is a change.
            if str(value) != self.resource_id:
                raise mutability("id")
            return
        if lowered == "schemas":
            return
        if lowered.startswith("urn:") and self.resource.schema_for_urn(key) is None:
            uri, _ = self.resource.split_urn_path(key)
            if uri is None:
                self.normalizer.note(f"ignored attributes under {key} (schema not served)")
                return
        self.at_path(doc, op.op, key, value, f"Operations[{op.index}].value.{key}", explicit=False)

    def at_path(
        self, doc: dict[str, Any], op: str, path: str, value: Any, where: str, *, explicit: bool
    ) -> None:
        extension = self.resource.schema_for_urn(path)
        if extension is not None and extension is not self.resource.core:
            if op == "remove":
                doc.pop(extension.id, None)
                return
            if op == "replace" and explicit:
                doc.pop(extension.id, None)
            self.normalizer.put(doc, extension.id, value)
            return
        try:
            parsed = Path(path).ast
        except InvalidPathException as exc:
            raise invalid_path(f"{where}: path {path!r} does not parse: {exc.detail}.") from None
        if isinstance(parsed, ValuePath):
            resolved = self.resolve(parsed.attr_path, where, explicit=explicit)
            if resolved is None:
                return
            self.value_path(doc, op, resolved, parsed, value, where)
            return
        if not isinstance(parsed, AttrPath):
            raise invalid_path(f"{where}: {path!r} is a filter, not an attribute path.")
        resolved = self.resolve(parsed, where, explicit=explicit)
        if resolved is None:
            return
        self.attr_path(doc, op, resolved, value, where)

    def resolve(self, path: AttrPath, where: str, *, explicit: bool) -> Resolved | None:
        resolved = self.resource.resolve(path.uri, path.attr, path.sub_attr)
        if resolved is None:
            if not explicit:
                self.normalizer.note(f"ignored unknown attribute {path}")
                return None
            raise invalid_path(
                f"{where}: no attribute {str(path)!r} on {self.resource.name}; "
                "GET /Schemas lists the attributes."
            )
        if resolved.attr.name == "password":
            return None  # accepted, never stored
        if resolved.attr.mutability == "readOnly" or (
            resolved.sub and resolved.sub.mutability == "readOnly"
        ):
            raise mutability(resolved.dotted)
        return resolved

    def container(
        self, doc: dict[str, Any], resolved: Resolved, *, create: bool
    ) -> dict[str, Any] | None:
        if resolved.is_extension and resolved.schema is not None:
            found: dict[str, Any] | None = (
                doc.setdefault(resolved.schema.id, {}) if create else doc.get(resolved.schema.id)
            )
            return found
        return doc

    def attr_path(
        self, doc: dict[str, Any], op: str, resolved: Resolved, value: Any, where: str
    ) -> None:
        attr = resolved.attr
        name = attr.name
        target = self.container(doc, resolved, create=op != "remove")
        if target is None:
            return
        if resolved.sub is not None:
            sub = resolved.sub
            if attr.multi:
                items = target.get(name) or []
                if op == "remove":
                    for item in items:
                        item.pop(sub.name, None)
                    target[name] = [i for i in items if i]
                else:
                    checked = self.normalizer.single(sub, value, resolved.dotted)
                    if not items:
                        items = [{}]
                    for item in items:
                        item[sub.name] = checked
                    target[name] = items
            else:
                current = target.get(name) or {}
                if op == "remove" or value is None:
                    current.pop(sub.name, None)
                else:
                    current[sub.name] = self.normalizer.single(sub, value, resolved.dotted)
                target[name] = current
            self._tidy(doc, resolved, target)
            return
        if op == "remove":
            if attr.multi and value is not None:
                self.remove_values(target, resolved, value, where)
            else:
                target.pop(name, None)
            self._tidy(doc, resolved, target)
            return
        if attr.multi:
            items = value if isinstance(value, list) else [value]
            checked = self.normalizer.value(attr, items, resolved.dotted) or []
            if op == "add":
                target[name] = add_values(target.get(name) or [], checked)
            else:
                target[name] = checked
        elif attr.type == "complex":
            checked = self.normalizer.single(attr, value, resolved.dotted)
            if checked is None:
                target.pop(name, None)
            else:
                # RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
                target[name] = {**(target.get(name) or {}), **checked}
        else:
            checked = self.normalizer.value(attr, value, resolved.dotted)
            if checked is None:
                target.pop(name, None)
            else:
                target[name] = checked
        self._tidy(doc, resolved, target)

    def remove_values(
        self, target: dict[str, Any], resolved: Resolved, value: Any, where: str
    ) -> None:
        """Entra's remove-by-value: {"op":"Remove","path":"members","value":[{"value":"x"}]}."""
        wanted = value if isinstance(value, list) else [value]
        keys = set()
        for item in wanted:
            if isinstance(item, dict) and "value" in item:
                keys.add(str(item["value"]))
            elif isinstance(item, str):
                keys.add(item)
            else:
                raise ScimError(
                    400,
                    f'{where}: a remove value must be a list of objects with "value".',
                    scim_type="invalidValue",
                )
        items = target.get(resolved.attr.name) or []
        kept = [i for i in items if not (isinstance(i, dict) and str(i.get("value")) in keys)]
        if len(kept) == len(items):
            self.normalizer.note(
                f"{where}: remove matched no {resolved.attr.name} value", "value_not_present"
            )
        target[resolved.attr.name] = kept

    def value_path(
        self,
        doc: dict[str, Any],
        op: str,
        resolved: Resolved,
        parsed: ValuePath,
        value: Any,
        where: str,
    ) -> None:
        attr = resolved.attr
        if not attr.multi:
            raise invalid_path(f"{where}: {attr.name}[...] needs a multi-valued attribute.")
        sub_name = parsed.sub_attr
        sub = attr.sub_attr(sub_name) if sub_name else None
        if sub_name and sub is None:
            raise invalid_path(f"{where}: {attr.name} has no sub-attribute {sub_name!r}.")
        if sub is not None and sub.mutability == "readOnly":
            raise mutability(f"{attr.name}.{sub.name}")
        matches = element_matcher(parsed.val_filter, resolved)
        target = self.container(doc, resolved, create=op != "remove")
        if target is None:
            return
        items: list[Any] = target.get(attr.name) or []
        hits = [i for i, item in enumerate(items) if isinstance(item, dict) and matches(item)]
        if op == "remove":
            if not hits:
                self.normalizer.note(
                    f"{where}: remove matched no {attr.name} value", "value_not_present"
                )
            elif sub is not None:
                for i in hits:
                    items[i].pop(sub.name, None)
            else:
                items = [item for i, item in enumerate(items) if i not in hits]
            target[attr.name] = [i for i in items if i]
            self._tidy(doc, resolved, target)
            return
        if not hits:
            seed = equality_seed(parsed.val_filter)
            if op == "replace" or seed is None:
                raise no_target(
                    f"{where}: no {attr.name} value matches the filter, so there is nothing to {op}."
                )
            # Entra adds emails[type eq "work"].value to users without a work email.
            items.append(seed)
            hits = [len(items) - 1]
        for i in hits:
            if sub is not None:
                items[i][sub.name] = self.normalizer.single(sub, value, f"{attr.name}.{sub.name}")
            else:
                checked = self.normalizer.single(attr, value, attr.name)
                if checked is not None:
                    items[i] = {**items[i], **checked} if op == "add" else checked
        target[attr.name] = self.normalizer.value(attr, items, attr.name) or []
        self._tidy(doc, resolved, target)

    @staticmethod
    def _tidy(doc: dict[str, Any], resolved: Resolved, target: dict[str, Any]) -> None:
        name = resolved.attr.name
        if name in target and target[name] in ([], {}, None):
            del target[name]
        if resolved.is_extension and resolved.schema is not None and not target:
            doc.pop(resolved.schema.id, None)


def add_values(existing: list[Any], new: list[Any]) -> list[Any]:
    """Add values to a multi-valued attribute; a value already there is updated, not repeated."""
    merged = [dict(item) if isinstance(item, dict) else item for item in existing]
    for item in new:
        if not isinstance(item, dict):
            if item not in merged:
                merged.append(item)
            continue
        same = next(
            (
                m
                for m in merged
                if isinstance(m, dict)
                and "value" in item
                and m.get("value") == item["value"]
                and (m.get("type") == item.get("type") or "type" not in item or "type" not in m)
            ),
            None,
        )
        if item.get("primary") is True:
            # RFC 7643 §2.4: primary is true for one value at most.
            for other in merged:
                if isinstance(other, dict) and other is not same:
                    other.pop("primary", None)
        if same is not None:
            same.update(item)
        else:
            merged.append(dict(item))
    return merged


def element_matcher(node: FilterNode, resolved: Resolved) -> Callable[[dict[str, Any]], bool]:
    """A predicate on one value of a multi-valued attribute, for value-path filters."""
    attr = resolved.attr

    def check(n: FilterNode, item: dict[str, Any]) -> bool:
        if isinstance(n, LogicalExpr):
            results = (check(t, item) for t in n.terms)
            return all(results) if n.op is LogicalOperator.and_ else any(results)
        if isinstance(n, Not):
            return not check(n.expr, item)
        if isinstance(n, Present | Comparison):
            sub = attr.sub_attr(n.attr_path.attr)
            if sub is None or n.attr_path.sub_attr is not None:
                raise invalid_path(f"{attr.name} has no sub-attribute {n.attr_path}.")
            actual = item.get(sub.name)
            if isinstance(n, Present):
                return actual not in (None, "", [], {})
            return compare(actual, n.op, n.value, case_exact=sub.case_exact)
        raise invalid_path("Value filters cannot be nested.")

    return lambda item: check(node, item)


def compare(actual: Any, op: CompareOperator, expected: Any, *, case_exact: bool) -> bool:
    if isinstance(actual, str) and isinstance(expected, str) and not case_exact:
        actual, expected = actual.casefold(), expected.casefold()
    if op is CompareOperator.eq:
        return bool(actual == expected and type(actual) is type(expected)) or (
            actual is None and expected is None
        )
    if op is CompareOperator.ne:
        return not compare(actual, CompareOperator.eq, expected, case_exact=True)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False
    if op is CompareOperator.co:
        return expected in actual
    if op is CompareOperator.sw:
        return actual.startswith(expected)
    if op is CompareOperator.ew:
        return actual.endswith(expected)
    return {
        CompareOperator.gt: actual > expected,
        CompareOperator.ge: actual >= expected,
        CompareOperator.lt: actual < expected,
        CompareOperator.le: actual <= expected,
    }[op]


def equality_seed(node: FilterNode) -> dict[str, Any] | None:
    """The element a filter made only of `eq` on sub-attributes describes, or None."""
    if (
        isinstance(node, Comparison)
        and node.op is CompareOperator.eq
        and node.attr_path.sub_attr is None
    ):
        return {node.attr_path.attr: node.value}
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        seed: dict[str, Any] = {}
        for term in node.terms:
            part = equality_seed(term)
            if part is None:
                return None
            seed.update(part)
        return seed
    return None
