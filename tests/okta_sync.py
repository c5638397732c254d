"""An Okta-shaped first sync with failures, over any aiohttp client (a TestClient or a
ClientSession on a running server): Test API Credentials, the group check, each
assigned user looked up and created (some without a family name, so 400), a
duplicate create (409), a deactivation, a group push with members, a wrong base
URL and mistyped tokens (401)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp.test_utils import TestClient

from tests.payloads import OKTA_HEADERS, PATCH_OP, dumps, okta_create_user

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


# A test client of the app, or a session on a running server (base_url set).
Http = TestClient[Any, Any] | aiohttp.ClientSession


@dataclass
class SyncResult:
    statuses: Counter[int] = field(default_factory=Counter)
    user_ids: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


class OktaClient:
    def __init__(self, http: Http, base: str, token: str) -> None:
        self.http, self.base = http, base
        self.headers = {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}
        self.result = SyncResult()

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        absolute: bool = False,
    ) -> tuple[int, Any]:
        resp = await self.http.request(
            method,
            path if absolute else self.base + path,
            headers=headers or self.headers,
            data=dumps(body) if body is not None else None,
        )
        text = await resp.text()
        self.result.statuses[resp.status] += 1
        return resp.status, json.loads(text) if text and text.startswith("{") else None

    async def provision(self, body: dict[str, Any]) -> tuple[int, Any]:
        """Okta's create: look the userName up, then POST."""
        lookup = quote(f'userName eq "{body["userName"]}"')
        status, found = await self.call("GET", f"/Users?filter={lookup}&startIndex=1&count=100")
        assert status == 200, found
        if found["totalResults"]:
            return 200, found["Resources"][0]
        return await self.call("POST", "/Users", body)


async def first_sync(
    http: Http,
    base: str,
    token: str,
    *,
    users: int = 40,
    without_family: frozenset[int] = frozenset({3, 17, 29}),
    connections: int = 8,
    wrong_base_path: str = "/scim/v2/Users",
) -> SyncResult:
    okta = OktaClient(http, base, token)
    assert (await okta.call("GET", "/Users?startIndex=1&count=2"))[0] == 200
    assert (await okta.call("GET", "/Groups?startIndex=1&count=100"))[0] == 200
    gate = asyncio.Semaphore(connections)
    created: dict[int, str] = {}

    async def assign(i: int) -> None:
        body = okta_create_user(
            f"learner{i:03d}@example.com",
            given=f"Learner{i}",
            family=f"Family{i}",
            external_id=f"00u{i:017d}",
        )
        if i in without_family:
            del body["name"]["familyName"]
        async with gate:
            status, user = await okta.provision(body)
        assert status == (400 if i in without_family else 201), user
        if status == 201:
            created[i] = user["id"]

    await asyncio.gather(*(assign(i) for i in range(users)))
    okta.result.user_ids = [created[i] for i in sorted(created)]
    first, second = okta.result.user_ids[:2]
    # A create that races Okta's own lookup: the userName exists, 409.
    duplicate = okta_create_user("learner000@example.com", given="Learner0", family="Family0")
    assert (await okta.call("POST", "/Users", duplicate))[0] == 409
    # Unassigning a user deactivates it.
    patch_status, _ = await okta.call(
        "PATCH",
        f"/Users/{second}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert patch_status == 200
    # Push Groups: look the group up, create it, add members.
    lookup = quote('displayName eq "Engineering"')
    assert (await okta.call("GET", f"/Groups?filter={lookup}&startIndex=1&count=100"))[0] == 200
    status, group = await okta.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "Engineering", "members": []}
    )
    assert status == 201, group
    members = [{"value": uid, "display": "x"} for uid in okta.result.user_ids[2:6]]
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": members}],
    }
    assert (await okta.call("PATCH", f"/Groups/{group['id']}", add))[0] in (200, 204)
    # An admin pasted the wrong base URL into a second app, and a truncated token.
    status, _ = await okta.call("GET", wrong_base_path, absolute=True)
    assert status == 404
    broken = {**okta.headers, "Authorization": okta.headers["Authorization"][:-3]}
    for _ in range(2):
        assert (await okta.call("GET", "/Users?startIndex=1&count=2", headers=broken))[0] == 401
    assert first
    return okta.result
