"""SCIM filters (RFC 7644 §3.4.2.2) compiled to parameterised SQL.

Parsing is scim2-models' grammar (precedence, parentheses, escapes, value paths);
the translation is ours. Every fragment emitted is a fixed string from this module
or from the resource's column map; every value goes in as a `$n` parameter.

Semantics, shared with the reference evaluator in the tests:
- strings of caseExact=false attributes are compared casefolded (stored folded in
  `attrs_ci` and the `*_ci` columns); ordering compares code points (COLLATE "C");
- a missing attribute makes eq/co/sw/ew/gt/ge/lt/le false and ne true, so
  `not (a eq x)` is the same as `a ne x`. Comparisons are emitted bare (so the
  planner can use indexes) and may be NULL for a missing attribute; NULL acts as
  false under AND/OR, and `not` compiles to `IS NOT TRUE`, which is never NULL;
- `co`/`sw`/`ew` match `%`, `_` and `\\` literally.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from gateway.scim.errors import ScimError
from gateway.scim.resource import Resolved, ResourceType, storable
from gateway.scim.schema import Attr

MAX_FILTER_LENGTH = 2048
MAX_COMPARISONS = 64
_ORDERING = {
    CompareOperator.gt: ">",
    CompareOperator.ge: ">=",
    CompareOperator.lt: "<",
    CompareOperator.le: "<=",
}
_STRING_MATCH = (CompareOperator.co, CompareOperator.sw, CompareOperator.ew)


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidFilter")


def like_pattern(value: str, op: CompareOperator) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op is CompareOperator.co:
        return f"%{escaped}%"
    if op is CompareOperator.sw:
        return f"{escaped}%"
    return f"%{escaped}"


def parse_datetime(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            try:
                return parsed.astimezone(UTC)
            except OverflowError:
                raise invalid_filter(
                    f"{where}: {value!r} is out of range once converted to UTC."
                ) from None
    raise invalid_filter(
        f"{where} is a dateTime: compare it with an ISO 8601 string with a time zone, "
        f'e.g. "2026-01-01T00:00:00Z", not {value!r}.'
    )


class Params:
    """The `$n` parameters of one statement; the caller's come first."""

    def __init__(self, initial: list[Any] | None = None) -> None:
        self.values: list[Any] = list(initial or [])

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True)
class Column:
    """An attribute kept in a column of its own (indexed or typed)."""

    sql: str
    kind: str  # text | uuid | bool | timestamptz


# A custom translation for one attribute: (op, value, params) -> SQL, or None to fall
# back to the default; op is None for `pr`.
Special = Callable[[CompareOperator | None, Any, Params], str | None]


@dataclass(frozen=True)
class Membership:
    """A multi-valued attribute kept one row per value in a join table (Group.members,
    User.groups), with sub-attributes value (an id), display and a constant type.

    `members.display co "x"` and `members[display co "x"]` both become one EXISTS
    over the rows, so a value filter means what its dotted form means, and a value
    filter with several conditions holds when one row satisfies all of them.
    """

    exists_sql: str  # EXISTS (SELECT 1 FROM … WHERE … AND {cond}); {cond} is on one row
    value_column: str  # a uuid column
    display_column: str  # folded text; NULL when the client sent no display
    type_value: str

    def condition(self, sub: Attr, op: CompareOperator | None, value: Any, params: Params) -> str:
        """`sub op value` on one row; `op` None is `pr`."""
        name = sub.name
        if name in ("value", "$ref"):
            if op is None:
                return "true"
            if op is CompareOperator.eq and isinstance(value, str):
                try:
                    return f"({self.value_column} = {params.add(uuid.UUID(value))})"
                except ValueError:
                    return "false"  # not one of our ids
            return text_predicate(
                f"{self.value_column}::text", op, value, params, fold=False, where=name
            )
        if name == "display":
            if op is None:
                return f"({self.display_column} <> '')"
            return text_predicate(
                self.display_column, op, value, params, fold=True, where="display"
            )
        if name == "type":
            if op is None:
                return "true"
            fold = not sub.case_exact
            constant = self.type_value.casefold() if fold else self.type_value
            return text_predicate(
                f"{params.add(constant)}::text", op, value, params, fold=fold, where="type"
            )
        raise invalid_filter(f"'{name}' cannot be used in a filter.")


@dataclass(frozen=True)
class FilterTarget:
    """How one resource type's attributes live in SQL."""

    resource: ResourceType
    json_root: str  # e.g. "u.attrs_ci"
    columns: dict[str, Column] = field(default_factory=dict)
    specials: dict[str, Special] = field(default_factory=dict)
    # Core multi-valued attributes kept in join tables, by name.
    memberships: dict[str, Membership] = field(default_factory=dict)

    def membership(self, resolved: Resolved) -> Membership | None:
        return None if resolved.is_extension else self.memberships.get(resolved.attr.name)


@dataclass
class _Compiler:
    target: FilterTarget
    text: str
    params: Params
    comparisons: int = 0

    # -- entry ----------------------------------------------------------------
    def node(self, node: FilterNode, element: Resolved | None = None) -> str:
        if isinstance(node, LogicalExpr):
            joiner = " AND " if node.op is LogicalOperator.and_ else " OR "
            return "(" + joiner.join(self.node(t, element) for t in node.terms) + ")"
        if isinstance(node, Not):
            return f"(({self.node(node.expr, element)}) IS NOT TRUE)"
        if isinstance(node, Comparison | Present):
            self.comparisons += 1
            if self.comparisons > MAX_COMPARISONS:
                raise invalid_filter(f"The filter has more than {MAX_COMPARISONS} comparisons.")
            if element is not None:
                return self.element_predicate(node, element)
            return self.predicate(node)
        if isinstance(node, ValuePath):
            if element is not None:
                raise invalid_filter("Value filters cannot be nested.")
            resolved = self.resolve(node.attr_path)
            if not resolved.attr.multi or resolved.sub is not None:
                raise invalid_filter(
                    f"'{resolved.dotted}[...]' needs a multi-valued attribute such as emails."
                )
            inner = self.node(node.val_filter, resolved)
            membership = self.target.membership(resolved)
            if membership is not None:
                return membership.exists_sql.format(cond=inner)
            return f"EXISTS (SELECT 1 FROM {self.elements(resolved)} AS e(v) WHERE {inner})"
        raise invalid_filter("Unsupported filter expression.")

    # -- attribute resolution --------------------------------------------------
    def resolve(self, path: AttrPath) -> Resolved:
        resolved = self.target.resource.resolve(path.uri, path.attr, path.sub_attr)
        if resolved is None:
            name = str(path)
            position = self.text.lower().find((path.sub_attr or path.attr).lower()) + 1
            where = f" at position {position}" if position > 0 else ""
            raise invalid_filter(
                f"Unknown attribute '{name}'{where} in the filter; "
                f"see GET /Schemas for the {self.target.resource.name} attributes."
            )
        if resolved.leaf.returned == "never" or (
            resolved.schema is None
            and resolved.dotted not in self.target.columns
            and resolved.dotted not in self.target.specials
        ):
            raise invalid_filter(
                f"'{resolved.dotted}' cannot be used in a filter here; filter on id instead."
                if resolved.dotted == "meta.location"
                else f"'{resolved.dotted}' cannot be used in a filter."
            )
        return resolved

    def elements(self, resolved: Resolved) -> str:
        return f"jsonb_array_elements(coalesce({self.json(resolved, with_sub=False)}, '[]'::jsonb))"

    def json(self, resolved: Resolved, *, with_sub: bool = True, text: bool = False) -> str:
        parts = []
        if resolved.is_extension and resolved.schema is not None:
            parts.append(resolved.schema.id)
        parts.append(resolved.attr.name)
        if with_sub and resolved.sub is not None:
            parts.append(resolved.sub.name)
        expr = self.target.json_root
        for i, part in enumerate(parts):
            arrow = "->>" if text and i == len(parts) - 1 else "->"
            expr = f"{expr} {arrow} '{part}'"
        return f"({expr})"

    # -- predicates -----------------------------------------------------------
    def predicate(self, node: Comparison | Present) -> str:
        resolved = self.resolve(node.attr_path)
        key = resolved.dotted
        membership = self.target.membership(resolved)
        if membership is not None:
            # members pr: any member; members eq "x" compares the value.
            sub = resolved.sub or resolved.attr.sub_attr("value")
            assert sub is not None
            if isinstance(node, Present):
                cond = membership.condition(sub, None, None, self.params)
            else:
                cond = membership.condition(sub, node.op, node.value, self.params)
            return membership.exists_sql.format(cond=cond)
        special = self.target.specials.get(key)
        if special is not None:
            if isinstance(node, Comparison):
                sql = special(node.op, node.value, self.params)
            else:
                sql = special(None, None, self.params)
            if sql is not None:
                return sql
        column = self.target.columns.get(key)
        if column is not None:
            return self.column_predicate(node, column, resolved)
        if resolved.attr.multi:
            # emails.type eq "work" / emails eq "x" (its value) / emails pr
            if isinstance(node, Present) and resolved.sub is None:
                return f"(jsonb_array_length(coalesce({self.json(resolved)}, '[]'::jsonb)) > 0)"
            sub = resolved.sub or resolved.attr.sub_attr("value")
            if sub is None:
                raise invalid_filter(f"Compare a sub-attribute of '{key}', e.g. {key}.value.")
            inner = Resolved(resolved.schema, resolved.attr, sub)
            return (
                f"EXISTS (SELECT 1 FROM {self.elements(resolved)} AS e(v) "
                f"WHERE {self.json_predicate(node, inner, 'e.v', sub_only=True)})"
            )
        return self.json_predicate(node, resolved, None)

    def element_predicate(self, node: Comparison | Present, element: Resolved) -> str:
        path = node.attr_path
        if path.uri is not None or path.sub_attr is not None:
            raise invalid_filter(
                f"Inside {element.attr.name}[...] name sub-attributes only, e.g. type or value."
            )
        sub = element.attr.sub_attr(path.attr)
        if sub is None:
            raise invalid_filter(f"'{element.attr.name}' has no sub-attribute '{path.attr}'.")
        membership = self.target.membership(element)
        if membership is not None:
            if isinstance(node, Present):
                return membership.condition(sub, None, None, self.params)
            return membership.condition(sub, node.op, node.value, self.params)
        return self.json_predicate(
            node, Resolved(element.schema, element.attr, sub), "e.v", sub_only=True
        )

    def json_predicate(
        self,
        node: Comparison | Present,
        resolved: Resolved,
        root: str | None,
        *,
        sub_only: bool = False,
    ) -> str:
        leaf = resolved.leaf
        if root is not None and sub_only:
            assert resolved.sub is not None
            as_json = f"({root} -> '{resolved.sub.name}')"
            as_text = f"({root} ->> '{resolved.sub.name}')"
        else:
            as_json = self.json(resolved)
            as_text = self.json(resolved, text=True)
        if isinstance(node, Present):
            if leaf.type == "complex":
                return f"({as_json} <> '{{}}'::jsonb)"
            if leaf.type == "boolean":
                return f"({as_json} IS NOT NULL AND {as_json} <> 'null'::jsonb)"
            return f"({as_text} <> '')"
        if leaf.type == "complex":
            raise invalid_filter(
                f"Compare a sub-attribute of '{resolved.dotted}', e.g. {resolved.dotted}.value."
            )
        if leaf.type == "boolean":
            return self.bool_compare(node, as_json, resolved, is_json=True)
        if leaf.type in ("integer", "decimal"):
            return self.number_compare(node, as_json, resolved)
        if leaf.type == "dateTime":
            return self.ordered_compare(
                node, f"({as_text})::timestamptz", parse_datetime(node.value, resolved.dotted)
            )
        return self.text_compare(node, as_text, resolved)

    def column_predicate(
        self, node: Comparison | Present, column: Column, resolved: Resolved
    ) -> str:
        if isinstance(node, Present):
            if column.kind == "text":
                return f"({column.sql} <> '')"
            return f"({column.sql} IS NOT NULL)"
        if column.kind == "bool":
            return self.bool_compare(node, column.sql, resolved, is_json=False)
        if column.kind == "timestamptz":
            if node.value is None:
                raise invalid_filter(f"{resolved.dotted} is always set; compare it with a date.")
            if node.op in _STRING_MATCH:
                raise invalid_filter(
                    f"{resolved.dotted} is a dateTime: use eq, ne, gt, ge, lt or le."
                )
            return self.ordered_compare(
                node, column.sql, parse_datetime(node.value, resolved.dotted)
            )
        if column.kind == "uuid" and node.op in (CompareOperator.eq, CompareOperator.ne):
            if not isinstance(node.value, str):
                raise invalid_filter(f"{resolved.dotted} compares with a string.")
            try:
                value = uuid.UUID(node.value)
            except ValueError:
                # Not one of our ids, so it matches nothing (Entra probes random ids).
                return "false" if node.op is CompareOperator.eq else "true"
            sql = f"{column.sql} = {self.params.add(value)}"
            return sql if node.op is CompareOperator.eq else f"NOT ({sql})"
        expr = f"{column.sql}::text" if column.kind == "uuid" else column.sql
        return self.text_compare(node, expr, resolved)

    def text_compare(self, node: Comparison, expr: str, resolved: Resolved) -> str:
        return text_predicate(
            expr,
            node.op,
            node.value,
            self.params,
            fold=not resolved.leaf.case_exact,
            where=resolved.dotted,
        )

    def bool_compare(
        self, node: Comparison, expr: str, resolved: Resolved, *, is_json: bool
    ) -> str:
        value = node.value
        if node.op not in (CompareOperator.eq, CompareOperator.ne):
            raise invalid_filter(f"{resolved.dotted} is a boolean: use eq or ne.")
        if value is None:
            null_sql = f"({expr} IS NULL)"
            return null_sql if node.op is CompareOperator.eq else f"(NOT {null_sql})"
        if not isinstance(value, bool):
            raise invalid_filter(
                f"{resolved.dotted} is a boolean: compare it with true or false, not {value!r}."
            )
        param = self.params.add(value)
        rhs = f"to_jsonb({param}::boolean)" if is_json else param
        if node.op is CompareOperator.eq:
            return f"({expr} = {rhs})"
        return f"({expr} IS DISTINCT FROM {rhs})"

    def number_compare(self, node: Comparison, expr: str, resolved: Resolved) -> str:
        if not isinstance(node.value, int | float) or isinstance(node.value, bool):
            raise invalid_filter(f"{resolved.dotted} is a number: compare it with a number.")
        return self.ordered_compare(node, f"({expr})::numeric", node.value)

    def ordered_compare(self, node: Comparison, expr: str, value: Any) -> str:
        if node.op in _STRING_MATCH:
            raise invalid_filter(f"{node.op.value} compares strings only.")
        param = self.params.add(value)
        if node.op is CompareOperator.eq:
            return f"({expr} = {param})"
        if node.op is CompareOperator.ne:
            return f"({expr} IS DISTINCT FROM {param})"
        return f"({expr} {_ORDERING[node.op]} {param})"


def text_predicate(
    expr: str, op: CompareOperator, value: Any, params: Params, *, fold: bool, where: str
) -> str:
    """`expr op value` for a string attribute; `expr` holds folded text when `fold`."""
    if value is None:
        if op is CompareOperator.eq:
            return f"({expr} IS NULL)"
        if op is CompareOperator.ne:
            return f"({expr} IS NOT NULL)"
        raise invalid_filter(f"Only eq and ne compare with null ({where} {op.value} null).")
    if not isinstance(value, str):
        raise invalid_filter(f"{where} is a string: compare it with a quoted value, not {value!r}.")
    if fold:
        value = value.casefold()
    if op is CompareOperator.eq:
        return f"({expr} = {params.add(value)})"
    if op is CompareOperator.ne:
        return f"({expr} IS DISTINCT FROM {params.add(value)})"
    if op in _STRING_MATCH:
        return f"({expr} LIKE {params.add(like_pattern(value, op))})"
    return f'({expr} COLLATE "C" {_ORDERING[op]} {params.add(value)})'


# Okta's lookup before every create, `userName eq "jane@example.com"`, in its exact
# shape: one space each side of a lower-case eq, a quoted value without escapes or
# control characters. The general grammar costs most of a lookup's own CPU; on this
# shape the two agree (tests/scim/test_filters_differential.py checks it).
_SIMPLE_EQUALITY = re.compile(r'([A-Za-z][A-Za-z0-9_]*) eq "([^"\\\x00-\x1f\x7f]*)"')


def simple_equality(text: str) -> tuple[str, str] | None:
    """(attribute name, value) of a filter that is a single `name eq "plain text"`."""
    if len(text) > MAX_FILTER_LENGTH:
        return None  # refused by the grammar's own checks, with their message
    match = _SIMPLE_EQUALITY.fullmatch(text)
    if match is None or not storable(match[2]):
        return None
    return match[1], match[2]


def parse_filter(text: str) -> FilterNode:
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    if not text.strip():
        raise invalid_filter("The filter is empty.")
    try:
        return ScimFilter(text).ast
    except InvalidFilterException as exc:
        raise invalid_filter(
            f"The filter {text!r} does not parse: {exc.detail}. Filters look like "
            'userName eq "jane@example.com" (RFC 7644 §3.4.2.2).'
        ) from None
    except RecursionError:
        raise invalid_filter("The filter nests too deeply.") from None


def _check_values(node: FilterNode) -> None:
    if isinstance(node, LogicalExpr):
        for term in node.terms:
            _check_values(term)
    elif isinstance(node, Not):
        _check_values(node.expr)
    elif isinstance(node, ValuePath):
        _check_values(node.val_filter)
    elif isinstance(node, Comparison) and isinstance(node.value, str) and not storable(node.value):
        raise invalid_filter(
            f"The value compared with {node.attr_path} contains a NUL character or an unpaired "
            "surrogate, which no stored value can contain."
        )


def compile_filter(text: str, target: FilterTarget, params: Params) -> str:
    """The SQL predicate for a filter string; its values are appended to `params`."""
    tree = parse_filter(text)
    _check_values(tree)
    return _Compiler(target, text, params).node(tree)


def sort_expression(sort_by: str, target: FilterTarget, *, descending: bool, tiebreak: str) -> str:
    """ORDER BY for `sortBy` on a singular attribute; missing values sort last."""
    uri, rest = target.resource.split_urn_path(sort_by)
    attr_name, _, sub_name = rest.partition(".")
    resolved = target.resource.resolve(uri, attr_name, sub_name or None)
    if resolved is None:
        raise ScimError(
            400,
            f"sortBy names an unknown attribute {sort_by!r}; see GET /Schemas.",
            scim_type="invalidValue",
        )
    if resolved.attr.multi or resolved.leaf.type == "complex" or resolved.leaf.returned == "never":
        raise ScimError(
            400,
            f"sortBy must name a singular attribute, not {resolved.dotted!r}.",
            scim_type="invalidValue",
        )
    column = target.columns.get(resolved.dotted)
    if column is not None:
        expr = f'{column.sql} COLLATE "C"' if column.kind == "text" else column.sql
    else:
        compiler = _Compiler(target, sort_by, Params())
        expr = compiler.json(resolved, text=True)
        if resolved.leaf.type not in ("boolean", "integer", "decimal"):
            expr = f'{expr} COLLATE "C"'
    direction = "DESC" if descending else "ASC"
    return f"{expr} {direction} NULLS LAST, {tiebreak}"
