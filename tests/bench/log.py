"""The provisioning log's reads at size: every query the dashboard and the CLI make, on
an org of 1 million and then 10 million rows (seeded by SQL over 30 days of daily
partitions, jobs and unresolved failures as the write keeps them), p50/p95 and the
ratio of the two sizes."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.db import create_pool
from gateway.dbtypes import Connection
from gateway.provlog.signals import org_signals
from gateway.store import orgs as org_store
from gateway.store import provisioning_log as log_store
from gateway.store import tokens as token_store
from gateway.store.provisioning_log import LogFilter

DAYS = 30

_SEED = """
INSERT INTO provisioning_log (
    org_id, occurred_at, finished_at, token_id, job_id, request_id, method, path, status,
    duration_ms, event, outcome, code, target_type, target_id, target_name, target_key)
SELECT $1::uuid, t, t + interval '4 ms', $2::uuid,
       -- a job every 2,000 requests
       ('00000000-0000-4000-8000-' || lpad(((g + $5) / 2000)::text, 12, '0'))::uuid,
       md5(g::text || $5::text), 'POST', '/api/sch/scim/v2/Users',
       CASE WHEN g % 53 = 0 THEN 400 ELSE 201 END, 4,
       CASE WHEN g % 97 = 0 THEN 'Delete user'
            ELSE (ARRAY['Create user', 'Look up user', 'Update user attributes',
                        'Import users'])[g % 4 + 1] END,
       CASE WHEN g % 53 = 0 THEN 'failure' WHEN g % 211 = 0 THEN 'warning' ELSE 'success' END,
       CASE WHEN g % 53 = 0 THEN (ARRAY['missing_attribute', 'duplicate_username',
                                        'unknown_member'])[g % 3 + 1]
            WHEN g % 211 = 0 THEN 'attributes_ignored' END,
       'User', md5((g % 100000)::text)::uuid,
       'user' || (g % 100000) || '@example.com', 'user:user' || (g % 100000) || '@example.com'
FROM generate_series(1, $3::int) AS g,
     LATERAL (SELECT $4::timestamptz - (g::float8 / $3 * $6) * interval '1 second' AS t) AS x
"""

_DERIVED = [
    """INSERT INTO unresolved_failures (org_id, log_id, occurred_at, job_id, target_key, event)
       SELECT org_id, id, occurred_at, job_id, target_key, event FROM provisioning_log
       WHERE org_id = $1 AND outcome = 'failure' AND id % 7 = 0
       ON CONFLICT DO NOTHING""",
    """INSERT INTO sync_job_summaries (org_id, job_id, token_id, started_at, provisioned_at)
       SELECT org_id, job_id, min(token_id::text)::uuid, min(occurred_at), min(occurred_at)
       FROM provisioning_log WHERE org_id = $1 GROUP BY org_id, job_id
       ON CONFLICT DO NOTHING""",
    """INSERT INTO sync_job_counts (org_id, job_id, shard, requests, successes, failures,
                                   warnings, first_at, last_at, counts)
       SELECT org_id, job_id, (id % 8)::smallint, count(*),
              count(*) FILTER (WHERE outcome = 'success'),
              count(*) FILTER (WHERE outcome = 'failure'),
              count(*) FILTER (WHERE outcome = 'warning'), min(occurred_at), max(finished_at),
              '{"Create user|success": 1}'::jsonb
       FROM provisioning_log WHERE org_id = $1 GROUP BY org_id, job_id, id % 8
       ON CONFLICT DO NOTHING""",
    # As the write keeps them: 8 shards, a key per event and outcome and per code.
    """INSERT INTO provisioning_log_hourly (org_id, hour, shard, counts)
       SELECT org_id, hour, shard, jsonb_object_agg(key, n)
       FROM (SELECT org_id, date_trunc('hour', occurred_at) AS hour, (id % 8)::smallint AS shard,
                    k.key, count(*) AS n
             FROM provisioning_log,
                  LATERAL (VALUES ('e:' || event || '|' || outcome), ('c:' || code)) AS k(key)
             WHERE org_id = $1 AND k.key IS NOT NULL
             GROUP BY 1, 2, 3, 4) AS c
       GROUP BY org_id, hour, shard
       ON CONFLICT (org_id, hour, shard) DO UPDATE SET counts = EXCLUDED.counts""",
]


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _seed(conn: Connection, org_id: uuid.UUID, token_id: uuid.UUID, rows: int,
                offset: int, end: datetime) -> None:  # fmt: skip
    """Add `rows` rows to the org, spread over the 30 days before `end`, in batches."""
    batch = 500_000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        await conn.execute(
            _SEED, org_id, token_id, n, end - timedelta(seconds=start / rows * DAYS * 86400),
            offset + start, DAYS * 86400 * n / rows,
        )  # fmt: skip
    for sql in _DERIVED:
        await conn.execute(sql, org_id)
    for table in ("provisioning_log", "unresolved_failures", "sync_job_summaries",
                  "sync_job_counts", "provisioning_log_hourly"):  # fmt: skip
        await conn.execute(f"ANALYZE {table}")


async def _measure(conn: Connection, org_id: uuid.UUID, n: int) -> dict[str, list[float]]:
    now = datetime.now(UTC)
    job = await conn.fetchval(
        "SELECT job_id FROM sync_job_summaries WHERE org_id = $1 ORDER BY started_at DESC "
        "OFFSET 10 LIMIT 1",
        org_id,
    )
    first_page, cursor = await log_store.list_log(conn, org_id, LogFilter(), limit=50)
    tail = await log_store.tail_start(conn)
    queries: dict[str, Callable[[], Awaitable[Any]]] = {
        "newest page": lambda: log_store.list_log(conn, org_id, LogFilter(), limit=50),
        "next page (cursor)": lambda: log_store.list_log(
            conn, org_id, LogFilter(), limit=50, before=cursor
        ),
        "failures": lambda: log_store.list_log(conn, org_id, LogFilter(outcome="failure")),
        "event + outcome": lambda: log_store.list_log(
            conn, org_id, LogFilter(event="Create user", outcome="failure")
        ),
        "rare event": lambda: log_store.list_log(conn, org_id, LogFilter(event="Delete user")),
        "code": lambda: log_store.list_log(conn, org_id, LogFilter(code="unknown_member")),
        "target (userName)": lambda: log_store.list_log(
            conn, org_id, LogFilter(target="user4242@example.com")
        ),
        "target prefix user4242*": lambda: log_store.list_log(
            conn, org_id, LogFilter(target="user4242*")
        ),
        "last 24 h, failures": lambda: log_store.list_log(
            conn, org_id, LogFilter(outcome="failure", since=now - timedelta(days=1))
        ),
        "job": lambda: log_store.list_log(conn, org_id, LogFilter(job_id=job)),
        "unresolved": lambda: log_store.list_log(conn, org_id, LogFilter(unresolved=True)),
        "live tail": lambda: log_store.log_tail(conn, org_id, tail),
        "user history": lambda: log_store.target_history(
            conn, org_id, target_type="User", name="user4242@example.com", target_id=None
        ),
        "jobs (20)": lambda: log_store.list_jobs(conn, org_id),
        "first sync": lambda: log_store.first_sync(conn, org_id),
        "hourly counts (7 days)": lambda: log_store.hourly_counts(
            conn, org_id, since=now - timedelta(days=7)
        ),
        "signals": lambda: org_signals(conn, org_id),
    }
    assert first_page
    out: dict[str, list[float]] = {}
    for label, call in queries.items():
        await call()
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
        out[label] = samples
    return out


async def _ensure_partitions(seeder: Connection) -> None:
    await seeder.execute(
        "SELECT ensure_provisioning_log_partitions("
        "((now() AT TIME ZONE 'UTC')::date - $1::int)::date, $1::int + 9)",
        DAYS + 1,
    )


async def seed_org_log(url: str, org_id: uuid.UUID, token_id: uuid.UUID, rows: int) -> None:
    """`rows` log rows of an org over the last 30 days, with its jobs and failures."""
    seeder = await asyncpg.connect(url)  # no statement timeout: seeding takes minutes
    try:
        await _ensure_partitions(seeder)
        started = time.perf_counter()
        if rows:
            await _seed(seeder, org_id, token_id, rows, 0, datetime.now(UTC) - timedelta(minutes=1))
        print(f"seeded {rows:,} log rows in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        await seeder.close()


async def bench_log(url: str, sizes: list[int], requests: int) -> None:
    # The gateway's own pool settings (the dashboard reads through that pool).
    pool = await create_pool(url, min_size=1, max_size=1)
    conn = await pool.acquire()
    seeder = await asyncpg.connect(url)  # no statement timeout: seeding takes minutes
    try:
        await _ensure_partitions(seeder)
        org = await org_store.create_org(seeder, f"logbench-{uuid.uuid4().hex[:6]}")
        _, token = await token_store.create_token(seeder, org.id, note="bench")
        end = datetime.now(UTC) - timedelta(minutes=1)
        seeded, results = 0, []
        print(f"\nprovisioning log reads, one org, {DAYS} days of rows (ms, p50 / p95)")
        for size in sizes:
            started = time.perf_counter()
            await _seed(seeder, org.id, token.id, size - seeded, seeded, end)
            seeded = size
            print(f"  seeded {size:,} rows in {time.perf_counter() - started:.0f} s")
            results.append(await _measure(conn, org.id, min(requests, 50)))
        header = "".join(f"{f'{s:,} rows':>22}" for s in sizes)
        print(f"  {'query':<26}{header}   p95 ratio")
        for label in results[0]:
            cells = "".join(
                f"{_p(r[label], 0.5):>10.2f} / {_p(r[label], 0.95):>7.2f}  " for r in results
            )
            ratio = statistics.quantiles(results[-1][label], n=20)[-1] / max(
                statistics.quantiles(results[0][label], n=20)[-1], 1e-9
            )
            print(f"  {label:<26}{cells} {ratio:>6.2f}x")
        worst = max(_p(results[-1][label], 0.95) for label in results[-1])
        print(f"  slowest p95 at {sizes[-1]:,} rows: {worst:.1f} ms (target ≤ 50 ms)")
    finally:
        await seeder.close()
        await pool.release(conn)
        await pool.close()
