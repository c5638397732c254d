"""Paging (RFC 7644 §3.4.2.4) on /Users, /Groups, their .search and the root /.search.

A page is always the slice [startIndex - 1, startIndex - 1 + count) of the current
full ordering, whatever pages were served before it and whatever changed since.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import LIST
from tests.scim.test_groups import Api as GroupsApi

Client = TestClient[web.Request, web.Application]
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


class Api(GroupsApi):
    async def team(self, name: str) -> str:
        return str((await self.group(name))["id"])

    async def page(self, path: str, **params: Any) -> dict[str, Any]:
        """A list page: GET with query parameters, or POST …/.search with a SearchRequest."""
        if path.endswith(".search"):
            status, body = await self.call("POST", path, {"schemas": [SEARCH], **params})
        else:
            status, body = await self.call("GET", f"{path}?{urlencode(params)}")
        assert status == 200, body
        assert body["schemas"] == [LIST]
        assert body["itemsPerPage"] == len(body.get("Resources", []))
        return dict(body)


def ids(page: dict[str, Any]) -> list[str]:
    return [r["id"] for r in page.get("Resources", [])]


@pytest.fixture
def api(client: Client, base: str, acme: OrgWithToken) -> Api:
    return Api(client, base, acme)


# -- bug 1: an empty page of a filter that matches ---------------------------------


@pytest.mark.parametrize(
    ("path", "filter_text"),
    [
        ("/Users", 'userName eq "one@example.com"'),
        ("/Users/.search", 'userName eq "one@example.com"'),
        ("/Groups", 'displayName eq "solo"'),
        ("/Groups/.search", 'displayName eq "solo"'),
        ("/.search", 'userName eq "one@example.com"'),
        ("/.search", 'displayName eq "solo"'),
    ],
)
@pytest.mark.parametrize("paging", [{"count": 0}, {"startIndex": 2}, {"startIndex": 9, "count": 3}])
async def test_an_empty_page_of_a_single_match_is_200_with_the_total(
    api: Api, path: str, filter_text: str, paging: dict[str, int]
) -> None:
    await api.user("one")
    await api.team("solo")
    page = await api.page(path, filter=filter_text, **paging)
    assert page["totalResults"] == 1
    assert page["itemsPerPage"] == 0
    assert not page.get("Resources")
