"""POST /.search (RFC 7644 §3.4.3): one search across Users, then Groups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from gateway.scim import groups, users
from gateway.scim.body import read_json_object
from gateway.scim.errors import ScimError, scim_response
from gateway.scim.listing import ListQuery, list_response, search_query

Finder = Callable[[web.Request, ListQuery], Awaitable[tuple[int, list[dict[str, Any]]]]]
FINDERS: tuple[Finder, ...] = (users.find_resources, groups.find_resources)


async def search_all(request: web.Request) -> web.Response:
    query = search_query(await read_json_object(request))
    resources: list[dict[str, Any]] = []
    total = 0
    errors: list[ScimError] = []
    for finder in FINDERS:
        # Paging runs across the concatenation, Users first: this type's slice starts
        # where the previous types' results end.
        start = max(query.start_index - total, 1)
        count = query.count - len(resources)
        try:
            found_total, page = await finder(
                request, replace(query, start_index=start, count=count)
            )
        except ScimError as exc:
            if exc.scim_type != "invalidFilter":
                raise
            errors.append(exc)  # the filter names attributes this type does not have
            continue
        resources += page
        total += found_total
    if len(errors) == len(FINDERS):
        raise errors[0]
    return scim_response(list_response(resources, total, query.start_index))
