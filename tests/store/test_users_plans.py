"""The user lookups Okta and Entra send are index-backed, and import pages are keyset scans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.scim.filters import Params, compile_filter
from gateway.scim.listing import ListQuery, open_window
from gateway.scim.users import USER_FILTERS
from gateway.store import PAGE_QUERIES
from tests.conftest import OrgWithToken

SEED = (Path(__file__).resolve().parent.parent / "bench" / "seed.sql").read_text()


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


def walk_of(filter_text: str | None) -> bytes:
    return open_window("User", ListQuery(filter=filter_text)).walk or b""


def page_query(org: OrgWithToken, filter_text: str | None, before: int) -> tuple[str, list[Any]]:
    params = Params([org.org.id, walk_of(filter_text), before, 100])
    if filter_text:
        where = compile_filter(filter_text, USER_FILTERS, params)
        sql = (
            PAGE_QUERIES["find_users"]
            .replace("/*filter*/", f"({where})")
            .replace("/*order*/", "u.seq")
        )
    else:
        sql = PAGE_QUERIES["list_users"].replace("/*order*/", "u.seq")
    return sql, params.values


async def note_position(
    db: asyncpg.Connection,
    org: OrgWithToken,
    filter_text: str | None,
    before: int,
    after: int,
    changes: int | None = None,
) -> None:
    """As if a process had served the walk's previous page, ending at seq `after`."""
    await db.execute("DELETE FROM scim_page_positions")
    if after:
        await db.execute(
            "INSERT INTO scim_page_positions (org_id, walk, start_index, seq, changes) "
            "VALUES ($1, $2, $3, $4, $5)",
            org.org.id,
            walk_of(filter_text),
            before + 1,
            after,
            changes,
        )


async def explain(
    db: asyncpg.Connection,
    org: OrgWithToken,
    filter_text: str | None,
    after: int = 0,
    before: int = 0,
    changes: int | None = None,
) -> list[dict[str, Any]]:
    """The nodes of the executed plan that ran (EXPLAIN ANALYZE), the walk's previous
    page having ended at seq `after` (0: no position noted)."""
    await note_position(db, org, filter_text, before, after, changes)
    sql, params = page_query(org, filter_text, before)
    raw = await db.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *params)
    return [n for n in plan_nodes(json.loads(raw)[0]["Plan"]) if n["Actual Loops"]]


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
    # The users are never read whole. (The walk's noted positions, a table of a row
    # or none here, may be: for so few rows a sequential scan is the right plan.)
    scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
    assert "scim_users" not in scanned, scanned


async def order_of(
    db: asyncpg.Connection, org: OrgWithToken, user_name_prefix: str = ""
) -> list[int]:
    rows = await db.fetch(
        "SELECT seq FROM scim_users WHERE org_id = $1 AND user_name_ci LIKE $2 || '%' ORDER BY seq",
        org.org.id,
        user_name_prefix,
    )
    return [r["seq"] for r in rows]


async def test_an_import_walk_reads_only_its_page(
    db: asyncpg.Connection, big_org: OrgWithToken
) -> None:
    order = await order_of(db, big_org)
    changes = await db.fetchval(
        "SELECT sum(changes)::bigint FROM scim_resource_counts WHERE org_id = $1 AND resource = 'User'",
        big_org.org.id,
    )
    for after, before in ((0, 0), (order[28_999], 29_000)):
        nodes = await explain(db, big_org, None, after, before, changes)
        assert "scim_users_seq" in {n.get("Index Name") for n in nodes}
        # Neither a count nor OFFSET: the walk's position is proven by `changes`
        # (a Sort may start above the OFFSET branch's gate, and read nothing).
        assert max(n["Actual Rows"] for n in nodes) <= 100, nodes
        assert "scim_users" not in {
            n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"
        }
    # Without `changes` (another walk's, or none), a count proves the position.
    nodes = await explain(db, big_org, None, order[999], 1_000)
    assert max(n["Actual Rows"] for n in nodes) == 1_000, nodes


@pytest.mark.parametrize("filter_text", [None, 'userName sw "user2"'])
async def test_a_remembered_position_is_used_only_where_it_lands(
    db: asyncpg.Connection, acme: OrgWithToken, filter_text: str | None
) -> None:
    await db.execute(SEED, acme.org.id, 1, 3_000)
    # Without `changes`, the unfiltered query counts; the filtered one always does.
    order = await order_of(db, acme, "user2" if filter_text else "")
    for after, before, by_keyset in (
        (order[199], 200, True),  # the walk's position is right: keyset
        (order[199], 199, False),  # a row before it was deleted: OFFSET
        (order[199], 201, False),
        (0, 200, False),  # nothing remembered
        (0, 0, True),  # page 1
    ):
        await note_position(db, acme, filter_text, before, after)
        sql, params = page_query(acme, filter_text, before)
        rows = await db.fetch(sql, *params)
        assert [r["seq"] for r in rows] == order[before : before + 100], (after, before)
        assert rows[0]["by_keyset"] is by_keyset
