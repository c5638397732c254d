"""The user lookups Okta and Entra send are index-backed, and import pages are keyset scans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.scim.filters import Params, compile_filter
from gateway.scim.users import USER_FILTERS
from gateway.sql import QUERIES
from tests.conftest import OrgWithToken

SEED = (Path(__file__).resolve().parent.parent / "bench" / "seed.sql").read_text()


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def explain(
    db: asyncpg.Connection, org: OrgWithToken, filter_text: str | None, after: int = 0
) -> list[dict[str, Any]]:
    params = Params([org.org.id, after, 0, 100])
    if filter_text:
        where = compile_filter(filter_text, USER_FILTERS, params)
        sql = (
            QUERIES["find_users"].replace("/*filter*/", f"({where})").replace("/*order*/", "u.seq")
        )
    else:
        sql = QUERIES["list_users"].replace("/*order*/", "u.seq")
    raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *params.values)
    return plan_nodes(json.loads(raw)[0]["Plan"])


@pytest.fixture
async def big_org(db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken) -> OrgWithToken:
    await db.execute(SEED, acme.org.id, 1, 30_000)
    await db.execute(SEED, globex.org.id, 30_001, 40_000)
    await db.execute("ANALYZE scim_users")
    return acme


@pytest.mark.parametrize(
    ("filter_text", "index"),
    [
        ('userName eq "USER20000@example.com"', "scim_users_user_name_key"),
        ('externalId eq "00u123"', "scim_users_external_id_key"),
        ('emails.value eq "user77@example.com"', "scim_users_emails"),
        ('emails eq "user77@example.com"', "scim_users_emails"),
        ('id eq "6d3c6a6e-0000-4000-8000-000000000000"', "scim_users_pkey"),
    ],
)
async def test_lookups_use_their_index(
    db: asyncpg.Connection, big_org: OrgWithToken, filter_text: str, index: str
) -> None:
    nodes = await explain(db, big_org, filter_text)
    assert index in {n.get("Index Name") for n in nodes}, nodes
    assert "Seq Scan" not in {n["Node Type"] for n in nodes}


async def test_import_pages_walk_the_seq_index(
    db: asyncpg.Connection, big_org: OrgWithToken
) -> None:
    for after in (0, 29_000):
        nodes = await explain(db, big_org, None, after=after)
        assert "scim_users_seq" in {n.get("Index Name") for n in nodes}
        assert "Seq Scan" not in {n["Node Type"] for n in nodes}
        assert "Sort" not in {n["Node Type"] for n in nodes}
