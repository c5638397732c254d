"""List and search requests (RFC 7644 §3.4.2-3.4.3): parameters, paging, responses."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.appkeys import METRICS, SETTINGS
from gateway.scim.body import shown
from gateway.scim.errors import ScimError
from gateway.scim.filters import FilterTarget, Params, compile_filter, sort_expression
from gateway.scim.limits import MAX_FILTER_LENGTH, MAX_START_INDEX
from gateway.scim.resource import storable

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 1000
DEFAULT_COUNT = 100


@dataclass(frozen=True)
class ListQuery:
    filter: str | None = None
    start_index: int = 1
    count: int = DEFAULT_COUNT
    sort_by: str | None = None
    descending: bool = False
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


def _integer(raw: Any, name: str) -> int:
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and len(raw) <= 32:
        with contextlib.suppress(ValueError):
            value = int(raw.strip())
    if value is None:
        raise ScimError(
            400,
            f"{name} must be an integer, not {shown(str(raw))!r}.",
            scim_type="invalidValue",
        )
    if abs(value) > MAX_START_INDEX:
        raise ScimError(
            400,
            f"{name} must be between -{MAX_START_INDEX} and {MAX_START_INDEX}, not {value}.",
            scim_type="invalidValue",
        )
    return value


def _check_params(params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        if not storable(key) or (isinstance(value, str) and not storable(value)):
            raise ScimError(
                400,
                f"The parameter {shown(key)!r} contains a NUL character or an unpaired "
                "surrogate (\\u0000, \\ud800-\\udfff); remove it.",
                scim_type="invalidValue",
            )


def _names(raw: Any, name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        return tuple(p.strip() for p in raw if p.strip())
    raise ScimError(400, f"{name} must be a list of attribute names.", scim_type="invalidValue")


def build_query(params: Mapping[str, Any]) -> ListQuery:
    """From query parameters or a SearchRequest body (keys compared case-insensitively)."""
    _check_params(params)
    fields = {k.lower(): v for k, v in params.items()}
    start = _integer(fields["startindex"], "startIndex") if "startindex" in fields else 1
    count = _integer(fields["count"], "count") if "count" in fields else DEFAULT_COUNT
    order = fields.get("sortorder")
    if order is not None and (
        not isinstance(order, str) or order.lower() not in ("ascending", "descending")
    ):
        raise ScimError(400, "sortOrder must be ascending or descending.", scim_type="invalidValue")
    sort_by = fields.get("sortby")
    if sort_by is not None and not isinstance(sort_by, str):
        raise ScimError(400, "sortBy must be an attribute name.", scim_type="invalidValue")
    filter_text = fields.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise ScimError(400, "filter must be a string.", scim_type="invalidFilter")
    if filter_text is not None and len(filter_text) > MAX_FILTER_LENGTH:
        raise ScimError(
            400,
            f"The filter is {len(filter_text)} characters long; at most {MAX_FILTER_LENGTH} are "
            "accepted.",
            scim_type="invalidFilter",
        )
    attributes = _names(fields.get("attributes"), "attributes")
    excluded = _names(fields.get("excludedattributes"), "excludedAttributes")
    return ListQuery(
        filter=filter_text if filter_text and filter_text.strip() else None,
        # RFC 7644 §3.4.2.4: startIndex below 1 means 1; a negative count means 0.
        start_index=max(start, 1),
        count=min(max(count, 0), MAX_RESULTS),
        sort_by=sort_by.strip() if sort_by and sort_by.strip() else None,
        descending=bool(order and order.lower() == "descending"),
        attributes=attributes,
        excluded=excluded,
    )


def search_query(body: Mapping[str, Any]) -> ListQuery:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST_SCHEMA not in schemas:
        raise ScimError(
            400,
            f'A search body must have "schemas": ["{SEARCH_REQUEST_SCHEMA}"].',
            scim_type="invalidSyntax",
        )
    return build_query({k: v for k, v in body.items() if k != "schemas"})


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def base_url(request: web.Request) -> str:
    return request.config_dict[SETTINGS].scim_base_url


def projection(request: web.Request) -> ListQuery:
    """`attributes`/`excludedAttributes` of a request that is not a list (GET one, PATCH…)."""
    return build_query(
        {
            k: v
            for k, v in request.query.items()
            if k.lower() in ("attributes", "excludedattributes")
        }
    )


@dataclass(frozen=True)
class Window:
    """Where a page starts: `before` rows precede it in the current order, in the
    walk `walk` (the SHA-256 of its resource type and filter text; None when the
    page is sorted, which no walk continues by keyset).

    The page query reads where the walk's previous page ended, as noted in the
    database by whichever process served it (scim_page_positions), and writes
    where this page ends, in the same statement. The noted position is only a
    candidate: the query continues after it only when exactly `before` rows come
    up to it in the current order, checked in the same statement (unfiltered: the
    org's count of inserts and deletes is unchanged, or a count says so; filtered:
    counted in the scan that counts the total). Deletes, renames out of a filter
    or a position noted by another walk make it land elsewhere, and then the page
    is found by OFFSET. So a page is always the slice of the current ordering,
    whichever process or replica served the pages before it.
    """

    walk: bytes | None
    before: int


def open_window(resource: str, query: ListQuery) -> Window:
    walk = None
    if query.sort_by is None:
        walk = hashlib.sha256(f"{resource}\0{query.filter or ''}".encode()).digest()
    return Window(walk, query.start_index - 1)


def count_page(request: web.Request, resource: str, query: ListQuery, by_keyset: bool) -> None:
    """Count a page after the first by how it was found (keyset or OFFSET)."""
    if query.start_index > 1:
        mode = "keyset" if by_keyset else "offset"
        request.config_dict[METRICS].list_pages.labels(resource=resource, mode=mode).inc()


def page_params(
    query: ListQuery, target: FilterTarget, fixed: list[Any], seq_column: str
) -> tuple[Params, str | None, str]:
    """The page query's parameters (`fixed`, then the filter's values), its compiled
    filter and ORDER BY."""
    params = Params(fixed)
    where, order = where_and_order(query, target, params, seq_column)
    return params, where, order


def where_and_order(
    query: ListQuery, target: FilterTarget, params: Params, seq_column: str
) -> tuple[str | None, str]:
    """The compiled filter (None for none) and ORDER BY of a list query."""
    where = compile_filter(query.filter, target, params) if query.filter else None
    if query.sort_by is None:
        return where, seq_column
    return where, sort_expression(
        query.sort_by, target, descending=query.descending, tiebreak=seq_column
    )
