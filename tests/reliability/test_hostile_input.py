"""Every hostile or careless input gets a 4xx SCIM error and its log row; never a 500."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user
from tests.reliability.battery import Case, cases, check, fill, headers_for

Client = TestClient[web.Request, web.Application]

SUITE_CASES = [c for c in cases() if not c.full_size_only]


def test_the_battery_has_at_least_60_cases() -> None:
    assert len(cases()) >= 60


@pytest.fixture
async def ids(client: Client, base: str, acme: OrgWithToken) -> tuple[str, str]:
    headers = {**OKTA_HEADERS, **acme.headers}
    user = await client.post(f"{base}/Users", headers=headers, data=dumps(okta_create_user()))
    assert user.status == 201
    group = await client.post(
        f"{base}/Groups",
        headers=headers,
        data=dumps(
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team"}
        ),
    )
    assert group.status == 201
    return (await user.json(content_type=None))["id"], (await group.json(content_type=None))["id"]


async def run_battery(
    client: Client,
    base: str,
    token: str,
    db: asyncpg.Connection,
    ids: tuple[str, str],
    battery: list[Case],
) -> dict[str, list[str]]:
    # One test for a whole battery: a fixture per case would cost more than the cases.
    problems: dict[str, list[str]] = {}
    for case in battery:
        path, body = fill(case, *ids)
        before = await db.fetchval("SELECT count(*) FROM provisioning_log")
        resp = await client.request(
            case.method, base + path, headers=headers_for(case, token), data=body
        )
        try:
            answer = await resp.json(content_type=None)
        except ValueError:
            answer = await resp.text()
        found = check(case, resp.status, answer)
        rows = await db.fetch("SELECT status FROM provisioning_log ORDER BY id DESC LIMIT 2")
        if await db.fetchval("SELECT count(*) FROM provisioning_log") != before + 1:
            found.append("not exactly one log row")
        elif rows[0]["status"] != resp.status:
            found.append(f"log row status {rows[0]['status']}")
        if found:
            problems[case.name] = found
    return problems


def _report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {found}" for name, found in problems.items())


Run = Callable[[list[Case]], Awaitable[dict[str, list[str]]]]


@pytest.fixture
def run(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection, ids: tuple[str, str]
) -> Run:
    return functools.partial(run_battery, client, base, acme.token, db, ids)


async def test_hostile_input_is_a_4xx_scim_error_with_a_log_row(run: Run) -> None:
    unstorable = [c for c in SUITE_CASES if c.unstorable]
    assert len(unstorable) >= 10  # NUL and lone surrogates: their rows are stored escaped
    problems = await run(SUITE_CASES)
    assert problems == {}, _report(problems)
