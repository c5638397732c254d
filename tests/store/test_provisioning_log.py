"""The log's query API, its plans on 1,000,000 rows, and retention by partition."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.sql import QUERIES
from gateway.store import provisioning_log as log_store
from gateway.store.provisioning_log import Cursor, LogFilter, LogRow, record_request
from tests.conftest import OrgWithToken


async def add(db: asyncpg.Connection, org: OrgWithToken, **fields: Any) -> None:
    row = LogRow(
        occurred_at=fields.pop("occurred_at", datetime.now(UTC)),
        request_id=uuid.uuid4().hex,
        method="GET",
        path="/x",
        query="",
        status=fields.pop("status", 200),
        duration_ms=1.0,
        org_id=org.org.id,
        token_id=org.token_id,
        **fields,
    )
    await record_request(db, row)


async def test_filters_and_cursor_paging(
    db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    target = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(minutes=30)
    for i in range(30):
        await add(
            db,
            acme,
            occurred_at=start + timedelta(minutes=i),
            event="Create user" if i % 3 else "Look up user",
            outcome="failure" if i % 5 == 0 else "success",
            status=400 if i % 5 == 0 else 201,
            target_id=target if i % 10 == 0 else None,
        )
    await add(db, globex, event="Create user")
    pages, cursor = [], None
    while True:
        page, cursor = await log_store.list_log(
            db, acme.org.id, LogFilter(), limit=7, before=cursor
        )
        pages.append(page)
        if cursor is None:
            break
        cursor = Cursor.decode(cursor.encode())
    times = [r.occurred_at for page in pages for r in page]
    assert len(times) == 30
    assert times == sorted(times, reverse=True)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    failures, _ = await log_store.list_log(db, acme.org.id, LogFilter(outcome="failure"), limit=100)
    assert len(failures) == 6
    assert {r.status for r in failures} == {400}
    created, _ = await log_store.list_log(
        db, acme.org.id, LogFilter(event="Create user", outcome="failure"), limit=100
    )
    assert len(created) == 4  # i in 5, 10, 20, 25
    history, _ = await log_store.list_log(db, acme.org.id, LogFilter(target_id=target), limit=100)
    assert len(history) == 3
    recent, _ = await log_store.list_log(
        db, acme.org.id, LogFilter(since=start + timedelta(minutes=25)), limit=100
    )
    assert len(recent) == 5
    (job,) = await log_store.list_jobs(db, acme.org.id)
    by_job, _ = await log_store.list_log(db, acme.org.id, LogFilter(job_id=job.job_id), limit=100)
    assert len(by_job) == 30


async def test_retention_drops_whole_expired_partitions(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    old_day = datetime.now(UTC).date() - timedelta(days=120)
    await db.fetchval(QUERIES["ensure_log_partitions"], old_day, 1)
    await add(
        db,
        acme,
        occurred_at=datetime.combine(old_day, datetime.min.time(), UTC) + timedelta(hours=3),
    )
    await add(db, acme)
    assert await log_store.ensure_partitions(db) >= 0
    partitions = await db.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'provisioning_log'::regclass"
    )
    assert await log_store.drop_expired_partitions(db, retention_days=90) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'provisioning_log'::regclass"
        )
        == partitions - 1
    )
    assert await db.fetchval("SELECT count(*) FROM provisioning_log") == 1
    assert await db.fetchval("SELECT count(*) FROM provisioning_log_default") == 0
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y%m%d")
    assert await db.fetchval("SELECT to_regclass($1)", f"provisioning_log_{tomorrow}") is not None


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


@pytest.fixture
async def million(db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken) -> OrgWithToken:
    """1,000,000 log rows over the last five days, for two orgs, seeded with SQL."""
    await db.fetchval(
        QUERIES["ensure_log_partitions"], datetime.now(UTC).date() - timedelta(days=6), 7
    )
    await db.execute(
        """
        INSERT INTO provisioning_log (org_id, occurred_at, token_id, job_id, request_id, method, path,
                                      status, duration_ms, event, outcome, target_id)
        SELECT CASE WHEN g % 4 = 0 THEN $2::uuid ELSE $1::uuid END,
               now() - (g * interval '430 milliseconds'),
               NULL, ('00000000-0000-4000-8000-' || lpad((g / 5000)::text, 12, '0'))::uuid,
               md5(g::text), 'POST', '/Users',
               CASE WHEN g % 50 = 0 THEN 400 ELSE 201 END, 1,
               (ARRAY['Create user', 'Look up user', 'Update user attributes', 'Import users'])[g % 4 + 1],
               CASE WHEN g % 50 = 0 THEN 'failure' ELSE 'success' END,
               ('00000000-0000-4000-9000-' || lpad((g % 20000)::text, 12, '0'))::uuid
        FROM generate_series(1, 1000000) AS g
        """,
        acme.org.id,
        globex.org.id,
    )
    await db.execute("ANALYZE provisioning_log")
    return acme


FILTERS = [
    (LogFilter(), "_org_id_occurred_at_id_idx"),
    (LogFilter(outcome="failure"), "_org_id_outcome_occurred_at_id_idx"),
    (LogFilter(event="Look up user"), "_org_id_event_occurred_at_id_idx"),
    (
        LogFilter(target_id=uuid.UUID("00000000-0000-4000-9000-000000000042")),
        "_org_id_target_id_occurred_at_id_idx",
    ),
    (
        LogFilter(job_id=uuid.UUID("00000000-0000-4000-8000-000000000042")),
        "_org_id_job_id_occurred_at_id_idx",
    ),
]


async def test_dashboard_queries_use_indexes_on_a_million_rows(
    db: asyncpg.Connection, million: OrgWithToken
) -> None:
    filled = {
        r["relname"]
        for r in await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'provisioning_log'::regclass AND c.reltuples > 0"
        )
    }
    assert len(filled) >= 5
    assert "provisioning_log_default" not in filled
    for where, index in FILTERS:
        leading = (
            "target"
            if where.target_id
            else "job"
            if where.job_id
            else "event"
            if where.event
            else "outcome"
            if where.outcome
            else None
        )
        sql = QUERIES["log_page"].replace("/*leading*/", log_store._LEADING[leading])
        value: Any = where.target_id or where.job_id or where.event or where.outcome
        params = [
            million.org.id,
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(9999, 1, 1, tzinfo=UTC),
            0,
            51,
            value,
            None,
            None,
        ]
        if leading in ("outcome", "event"):
            params[5] = str(value)
        plan = json.loads(await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *params))[0]["Plan"]
        # Partitions holding rows are read through the index; empty ones cost nothing either way.
        scans = [
            n for n in _nodes(plan) if "Scan" in n["Node Type"] and n.get("Relation Name") in filled
        ]
        assert scans, (where, plan)
        assert all(
            n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for n in scans
        ), (
            where,
            [(n["Node Type"], n.get("Relation Name")) for n in scans],
        )
        names = [n.get("Index Name") or "" for n in _nodes(plan)]
        assert any(name.endswith(index) for name in names), (where, names)
        rows, _ = await log_store.list_log(db, million.org.id, where, limit=50)
        assert rows, where
