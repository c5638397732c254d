"""Paging (RFC 7644 §3.4.2.4) on /Users, /Groups, their .search and the root /.search.

A page is always the slice [startIndex - 1, startIndex - 1 + count) of the current
full ordering, whatever pages were served before it and whatever changed since.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import METRICS
from gateway.scim.listing import ListQuery, open_window
from gateway.settings import Settings
from gateway.store import delete_expired_page_positions
from tests.conftest import GatewayTestServer, OrgWithToken
from tests.metrics_text import Scrape
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


# -- bug 3: remembered paging positions ---------------------------------------------


async def test_a_walk_after_a_delete_serves_slices_of_the_current_order(api: Api) -> None:
    a, b, c, d, e = [await api.user(f"vcur{n}") for n in "abcde"]
    query = {"filter": 'userName sw "vcur"', "count": 2}
    walk = [ids(await api.page("/Users", startIndex=start, **query)) for start in (1, 3, 5)]
    assert walk == [[a, b], [c, d], [e]]
    status, _ = await api.call("DELETE", f"/Users/{a}")
    assert status == 204
    # Straight to the later pages, as a client resuming its walk would.
    pages = {start: await api.page("/Users", startIndex=start, **query) for start in (3, 5, 1)}
    assert {start: ids(p) for start, p in pages.items()} == {3: [d, e], 5: [], 1: [b, c]}
    assert {p["totalResults"] for p in pages.values()} == {4}


@pytest.mark.parametrize("path", ["/Users", "/Users/.search"])
async def test_an_unfiltered_walk_after_a_delete_serves_slices(api: Api, path: str) -> None:
    users = [await api.user(f"plain{n}") for n in range(7)]
    for start in (1, 4):
        assert ids(await api.page(path, startIndex=start, count=3)) == users[start - 1 : start + 2]
    status, _ = await api.call("DELETE", f"/Users/{users[1]}")
    assert status == 204
    del users[1]
    assert ids(await api.page(path, startIndex=4, count=3)) == users[3:6]
    assert ids(await api.page(path, startIndex=7, count=3)) == users[6:]


async def test_a_walk_after_a_rename_out_of_the_filter_serves_slices(api: Api) -> None:
    users = [await api.user(f"mv{n}") for n in range(5)]
    query = {"filter": 'userName sw "mv"', "count": 2}
    for start in (1, 3):
        await api.page("/Users", startIndex=start, **query)
    status, _ = await api.call(
        "PATCH",
        f"/Users/{users[0]}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "gone@example.com"}],
        },
    )
    assert status == 200
    assert ids(await api.page("/Users", startIndex=3, **query)) == users[3:5]


async def test_groups_walk_after_a_delete_serves_slices(api: Api) -> None:
    teams = [await api.team(f"team{n}") for n in range(5)]
    for start in (1, 3, 5):
        await api.page("/Groups", startIndex=start, count=2)
    status, _ = await api.call("DELETE", f"/Groups/{teams[0]}")
    assert status == 204
    assert ids(await api.page("/Groups", startIndex=3, count=2)) == teams[3:5]
    assert ids(await api.page("/Groups", startIndex=5, count=2)) == []


async def test_users_added_mid_walk_keep_the_walk_whole(api: Api) -> None:
    users = [await api.user(f"grow{n}") for n in range(4)]
    assert ids(await api.page("/Users", startIndex=1, count=2)) == users[:2]
    users.append(await api.user("grow9"))
    assert ids(await api.page("/Users", startIndex=3, count=2)) == users[2:4]
    assert ids(await api.page("/Users", startIndex=5, count=2)) == users[4:]


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_root_search_walk_serves_each_resource_once(api: Api, count: int) -> None:
    users = [await api.user(f"root{n}") for n in range(6)]
    teams = [await api.team(f"rteam{n}") for n in range(3)]
    # Positions remembered by earlier walks of /Users and /Groups, then users and a
    # team deleted: the root walk reaches positions past the users that no write
    # of its own corrects, so it may trust none of them blindly.
    for start in range(1, 7):
        await api.page("/Users", startIndex=start, count=1)
    for start in range(1, 4):
        await api.page("/Groups", startIndex=start, count=1)
    gone = [f"/Users/{users.pop(0)}" for _ in range(4)] + [f"/Groups/{teams.pop(0)}"]
    for path in gone:
        status, _ = await api.call("DELETE", path)
        assert status == 204
    everything = users + teams
    seen: list[str] = []
    for start in range(1, len(everything) + 2, count):
        page = await api.page("/.search", startIndex=start, count=count)
        assert page["totalResults"] == len(everything)
        assert ids(page) == everything[start - 1 : start - 1 + count], start
        seen += ids(page)
    assert seen == everything


# -- positions shared by every process (scim_page_positions) -------------------------


def pages_by_mode(client: Client, resource: str = "User") -> dict[str, float]:
    """This app's count of pages after the first, by how each was found."""
    scrape = Scrape(generate_latest(client.app[METRICS].registry).decode())
    return {
        mode: scrape.value("scim_list_pages_total", resource=resource, mode=mode)
        for mode in ("keyset", "offset")
    }


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/Users", {}),
        ("/Users", {"filter": 'userName sw "walk"'}),
        ("/Users/.search", {"filter": 'userName sw "walk"'}),
        ("/Groups", {}),
    ],
)
async def test_a_walk_alternating_between_processes_continues_by_keyset(
    api: Api,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    acme: OrgWithToken,
    base: str,
    path: str,
    query: dict[str, str],
) -> None:
    """Two apps on one database stand for two workers or replicas: each page is served
    by the one that did not serve the page before, and still continues by keyset."""
    groups = path.startswith("/Groups")
    made = [await (api.team(f"walk{n}") if groups else api.user(f"walk{n}")) for n in range(7)]
    other = cast(Client, await aiohttp_client(GatewayTestServer(create_app(settings))))
    apis = [api, Api(other, base, acme)]
    walk = []
    for page, start in enumerate((1, 3, 5, 7)):
        walk.append(ids(await apis[page % 2].page(path, startIndex=start, count=2, **query)))
    assert walk == [made[0:2], made[2:4], made[4:6], made[6:]]
    resource = "Group" if groups else "User"
    assert pages_by_mode(api.client, resource) == {"keyset": 1, "offset": 0}  # startIndex 5
    assert pages_by_mode(other, resource) == {"keyset": 2, "offset": 0}  # 3 and 7


async def test_a_page_notes_the_next_position_only_when_rows_follow(
    api: Api, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    users = [await api.user(f"note{n}") for n in range(3)]
    seqs = await db.fetch("SELECT seq FROM scim_users WHERE org_id = $1 ORDER BY seq", acme.org.id)

    async def noted() -> list[tuple[bytes, int, int]]:
        rows = await db.fetch(
            "SELECT walk, start_index, seq FROM scim_page_positions WHERE org_id = $1 "
            "ORDER BY start_index",
            acme.org.id,
        )
        return [(r["walk"], r["start_index"], r["seq"]) for r in rows]

    # Okta's lookups before each create, and the last page of a walk: nothing follows.
    assert await noted() == []
    await api.page("/Users", filter='userName eq "note1@example.com"')
    await api.page("/Users", startIndex=3, count=2)
    # A sorted list is no walk.
    await api.page("/Users", sortBy="userName", count=1)
    assert await noted() == []
    assert ids(await api.page("/Users", startIndex=1, count=2)) == users[:2]
    walk = open_window("User", ListQuery()).walk
    assert await noted() == [(walk, 3, seqs[1]["seq"])]


async def test_expired_positions_are_forgotten_by_upkeep(api: Api, db: asyncpg.Connection) -> None:
    for n in range(3):
        await api.user(f"old{n}")
    for start in (1, 2):
        await api.page("/Users", startIndex=start, count=1)
    await db.execute(
        "UPDATE scim_page_positions SET expires_at = now() - interval '1 second' "
        "WHERE start_index = 2"
    )
    assert await delete_expired_page_positions(db) == 1
    assert await db.fetchval("SELECT array_agg(start_index) FROM scim_page_positions") == [3]
