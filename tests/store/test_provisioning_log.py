"""The provisioning log's store: pages, rows, history, the live tail, jobs, resolution,
hourly counts, retention, and the plans of the dashboard's queries.

Plans are proved with EXPLAIN on a small seed (a few thousand rows in the org read,
more in another org, analyzed); how fast they are on 10 million rows is `make bench`'s
business, not the suite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

import asyncpg
import pytest

from gateway.dbtypes import Connection
from gateway.provlog.entry import target_key
from gateway.provlog.events import Target
from gateway.sql import QUERIES
from gateway.store import provisioning_log as log_store
from gateway.store import tokens as token_store
from gateway.store.provisioning_log import (
    STALL_AFTER,
    Cursor,
    LogFilter,
    LogRow,
    Recorded,
    TailCursor,
    record_request,
)
from tests.conftest import OrgWithToken, create_database, drop_database, make_org

JANE = Target("User", "23a35c27-23d3-4c03-b4c5-6443c09e7173", "Jane@Example.com")
JOHN = Target("User", "5f0c2a8e-3d41-4c55-a0a7-0d6e1b9c4a12", "john@example.com")
ENGINEERING = Target("Group", "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "Engineering")


def log_row(
    org: OrgWithToken | None,
    *,
    event: str = "Look up user",
    outcome: str = "success",
    status: int = 200,
    occurred_at: datetime | None = None,
    target: Target | None = None,
    code: str | None = None,
    code_args: dict[str, Any] | None = None,
    token_id: uuid.UUID | None = None,
    method: str = "GET",
    duration_ms: float = 1.0,
) -> LogRow:
    """A row as LogEntry.to_row makes it (target key included)."""
    return LogRow(
        occurred_at=occurred_at or datetime.now(UTC),
        request_id=uuid.uuid4().hex,
        method=method,
        path="/x",
        query="",
        status=status,
        duration_ms=duration_ms,
        org_id=org.org.id if org else None,
        token_id=token_id or (org.token_id if org else None),
        event=event,
        outcome=outcome,
        code=code,
        code_args=code_args,
        target_type=target.type if target else None,
        target_id=uuid.UUID(target.id) if target and target.id else None,
        target_name=target.name if target else None,
        target_key=target_key(target),
    )


async def add(db: Connection, org: OrgWithToken | None, **fields: Any) -> Recorded:
    return await record_request(db, log_row(org, **fields))


async def ids_of(db: Connection, org: OrgWithToken, where: LogFilter) -> list[int]:
    rows, cursor = await log_store.list_log(db, org.org.id, where, limit=1000)
    assert cursor is None
    return [r.id or 0 for r in rows]


# --- pages ------------------------------------------------------------------------------------


async def test_pages_by_cursor_and_every_filter(
    db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=40)
    targets = [JANE, JOHN, ENGINEERING]
    for i in range(30):
        failed = i % 5 == 0
        await add(
            db,
            acme,
            occurred_at=start + timedelta(minutes=i),
            event="Create user" if i % 3 else "Look up user",
            outcome="failure" if failed else "success",
            status=400 if failed else 201,
            code=("missing_attribute" if i % 10 == 0 else "invalid_value") if failed else None,
            target=targets[i % 3],
        )
    await add(db, globex, event="Create user", target=JANE)
    await add(db, globex, event="Create user", outcome="failure", status=400, code="invalid_value")

    pages: list[list[LogRow]] = []
    cursor: Cursor | None = None
    while True:
        page, cursor = await log_store.list_log(
            db, acme.org.id, LogFilter(), limit=7, before=cursor
        )
        pages.append(page)
        if cursor is None:
            break
        cursor = Cursor.decode(cursor.encode())
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    keys = [(r.occurred_at, r.id) for p in pages for r in p]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == 30
    assert {r.org_id for p in pages for r in p} == {acme.org.id}

    async def count(where: LogFilter) -> int:
        return len(await ids_of(db, acme, where))

    assert await count(LogFilter(outcome="failure")) == 6  # i = 0, 5, … 25
    # i in 5, 10, 20, 25 are failed creates (i % 3 != 0)
    assert await count(LogFilter(event="Create user", outcome="failure")) == 4
    assert await count(LogFilter(code="missing_attribute")) == 3  # 0, 10, 20
    assert await count(LogFilter(code="invalid_value")) == 3  # 5, 15, 25
    assert await count(LogFilter(code="invalid_value", event="Create user")) == 2  # 5, 25
    # Target text: exact (any case), or a prefix with "*"; users and teams alike.
    assert await count(LogFilter(target="jane@example.com")) == 10
    assert await count(LogFilter(target="JANE@EXAMPLE.COM")) == 10
    assert await count(LogFilter(target="jane@")) == 0
    assert await count(LogFilter(target="j*")) == 20
    assert await count(LogFilter(target="Jo*")) == 10
    assert await count(LogFilter(target="engineering")) == 10
    assert await count(LogFilter(target="eng*", outcome="failure")) == 2  # 5, 20
    # Wildcards of LIKE in the text are literal.
    assert await count(LogFilter(target="j_hn*")) == 0
    assert await count(LogFilter(target="%*")) == 0
    assert await count(LogFilter(target_id=uuid.UUID(JOHN.id or ""))) == 10
    # Time range: since inclusive, until exclusive.
    assert await count(LogFilter(since=start + timedelta(minutes=25))) == 5
    assert await count(LogFilter(until=start + timedelta(minutes=5))) == 5
    assert (
        await count(
            LogFilter(since=start + timedelta(minutes=10), until=start + timedelta(minutes=20))
        )
        == 10
    )
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert await count(LogFilter(job_id=job.job_id)) == 30
    assert await count(LogFilter(job_id=uuid.uuid4())) == 0


async def test_unattributed_rows_are_listed_for_operators(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add(db, None, event="Authentication failed", outcome="failure", status=401,
              code="token_unknown")  # fmt: skip
    await add(db, acme)
    rows, cursor = await log_store.list_log(db, None, LogFilter(), limit=10)
    assert cursor is None
    assert [(r.org_id, r.code, r.unresolved) for r in rows] == [(None, "token_unknown", None)]


async def test_log_row_is_scoped_to_its_org(
    db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    await add(
        db,
        acme,
        event="Create user",
        outcome="failure",
        status=409,
        code="duplicate_username",
        code_args={"existing_id": JANE.id, "existing_user_name": "jane@example.com"},
        target=JANE,
    )
    (listed,), _ = await log_store.list_log(db, acme.org.id, LogFilter())
    assert listed.id is not None
    row = await log_store.log_row(db, acme.org.id, listed.id)
    assert row is not None
    assert row == listed
    assert row.code == "duplicate_username"
    assert row.code_args == {"existing_id": JANE.id, "existing_user_name": "jane@example.com"}
    assert (row.target_key, row.target_name) == ("user:jane@example.com", "Jane@Example.com")
    assert row.unresolved is True
    assert row.xid is not None
    assert row.job_id is not None
    assert row.finished_at is not None
    assert await log_store.log_row(db, globex.org.id, listed.id) is None
    assert await log_store.log_row(db, acme.org.id, listed.id + 1) is None


async def test_target_history_by_name_and_by_id(db: asyncpg.Connection, acme: OrgWithToken) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    # The failed create carries the userName it was about, before any id existed.
    no_id = Target("User", None, "jane@example.com")
    await add(db, acme, occurred_at=start, event="Look up user", target=no_id)
    await add(db, acme, occurred_at=start + timedelta(seconds=1), event="Create user",
              outcome="failure", status=400, code="missing_attribute", target=no_id)  # fmt: skip
    await add(db, acme, occurred_at=start + timedelta(seconds=2), event="Create user",
              status=201, target=JANE)  # fmt: skip
    # A request for the id that named no user (a 404 on a bad id) is keyed by the id.
    await add(db, acme, occurred_at=start + timedelta(seconds=3), event="Read user", status=404,
              outcome="failure", code="user_not_found", target=Target("User", JANE.id))  # fmt: skip
    await add(db, acme, occurred_at=start + timedelta(seconds=4), target=JOHN)
    await add(db, acme, occurred_at=start + timedelta(seconds=5), event="Push group",
              target=Target("Group", None, "jane@example.com"))  # fmt: skip

    rows, cursor = await log_store.target_history(
        db, acme.org.id, target_type="User", name="JANE@example.com",
        target_id=uuid.UUID(JANE.id or ""),
    )  # fmt: skip
    assert cursor is None
    assert [r.event for r in rows] == ["Read user", "Create user", "Create user", "Look up user"]
    assert [r.outcome for r in rows] == ["failure", "success", "failure", "success"]

    page, cursor = await log_store.target_history(
        db, acme.org.id, target_type="User", name="jane@example.com", target_id=None, limit=2
    )
    assert [r.event for r in page] == ["Create user", "Create user"]
    assert cursor is not None
    rest, cursor = await log_store.target_history(
        db, acme.org.id, target_type="User", name="jane@example.com", target_id=None,
        before=cursor,
    )  # fmt: skip
    assert [r.event for r in rest] == ["Look up user"]
    assert cursor is None
    teams, _ = await log_store.target_history(
        db, acme.org.id, target_type="Group", name="Jane@Example.com", target_id=None
    )
    assert [r.event for r in teams] == ["Push group"]


# --- the live tail ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url, server_settings={"lock_timeout": "10s"})
    try:
        yield conn
    finally:
        await conn.close()


async def test_tail_never_skips_a_row_whose_transaction_commits_after_a_later_id(
    db: asyncpg.Connection, database_url: str, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    # Two tokens (two jobs) and two hours: the writers share no counter row, so B never
    # waits for A; what remains is the order of ids against the order of commits.
    _, second = await token_store.create_token(db, acme.org.id, note="second")
    now = datetime.now(UTC)
    cursor = await log_store.tail_start(db)
    async with connection(database_url) as conn_a, connection(database_url) as conn_b:
        tx_a = conn_a.transaction()
        await tx_a.start()
        try:
            await add(conn_a, acme, occurred_at=now - timedelta(hours=2), target=JANE)
            async with conn_b.transaction():
                await add(conn_b, acme, occurred_at=now, token_id=second.id, target=JOHN)
            await add(db, globex, occurred_at=now, target=JOHN)
            rows, cursor = await log_store.log_tail(db, acme.org.id, cursor)
            assert [r.target_name for r in rows] == ["john@example.com"]
            id_b = rows[0].id or 0
            cursor = TailCursor.decode(cursor.encode())
            rows, cursor = await log_store.log_tail(db, acme.org.id, cursor)
            assert rows == []
        except BaseException:
            await tx_a.rollback()
            raise
        await tx_a.commit()

    rows, cursor = await log_store.log_tail(db, acme.org.id, cursor)
    assert [r.target_name for r in rows] == ["Jane@Example.com"]
    assert (rows[0].id or 0) < id_b  # A took its id first and committed last
    cursor = TailCursor.decode(cursor.encode())
    rows, cursor = await log_store.log_tail(db, acme.org.id, cursor)
    assert rows == []
    await add(db, acme, target=ENGINEERING)
    rows, cursor = await log_store.log_tail(db, acme.org.id, cursor)
    assert [r.target_name for r in rows] == ["Engineering"]
    rows, _ = await log_store.log_tail(db, acme.org.id, cursor)
    assert rows == []


async def test_tail_pages_a_burst_without_loss_or_repeats(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    cursor = await log_store.tail_start(db)
    for i in range(7):
        await add(db, acme, target=Target("User", None, f"u{i}@example.com"))
    seen: list[str | None] = []
    for _ in range(5):
        rows, cursor = await log_store.log_tail(db, acme.org.id, cursor, limit=3)
        seen += [r.target_name for r in rows]
    assert seen == [f"u{i}@example.com" for i in range(7)]


# --- resolution and jobs ----------------------------------------------------------------------


async def test_a_later_success_for_the_same_target_resolves_a_failure(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=30)
    missing = {"attribute": "name.familyName"}
    assert await add(
        db, acme, occurred_at=start, event="Create user", outcome="failure", status=400,
        code="missing_attribute", code_args=missing, target=Target("User", None, "jane@example.com"),
    ) == Recorded("failure", "missing_attribute")  # fmt: skip
    await add(db, acme, occurred_at=start + timedelta(seconds=5), event="Create user",
              outcome="failure", status=400, code="missing_attribute", target=JOHN)  # fmt: skip
    (still,) = await log_store.list_jobs(db, acme.org.id)
    assert (still.failures, still.resolved, still.unresolved) == (2, 0, 2)
    assert still.state(now=still.ended_at + STALL_AFTER) == "stalled"
    assert still.state(now=still.ended_at + STALL_AFTER / 2) == "running"
    assert len(await ids_of(db, acme, LogFilter(unresolved=True))) == 2

    # Okta's Retry Selected, after the mapping was fixed: the same userName, another case.
    assert await add(db, acme, occurred_at=start + timedelta(minutes=1), event="Create user",
                     status=201, target=JANE) == Recorded("success", None)  # fmt: skip
    unresolved, _ = await log_store.list_log(db, acme.org.id, LogFilter(unresolved=True))
    assert [(r.target_name, r.unresolved) for r in unresolved] == [("john@example.com", True)]
    failures, _ = await log_store.list_log(db, acme.org.id, LogFilter(outcome="failure"))
    assert [(r.target_name, r.unresolved) for r in failures] == [
        ("john@example.com", True),
        ("jane@example.com", False),
    ]
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert (job.requests, job.failures, job.successes, job.resolved, job.unresolved) == (
        3, 2, 1, 1, 1,
    )  # fmt: skip
    assert job.users == 2  # jane (both spellings) and john: users, not requests
    assert job.count("Create user") == 3
    assert job.count("Create user", "failure") == 2

    # A later job's success resolves it too, and is counted on the failure's job.
    await add(db, acme, occurred_at=start + timedelta(minutes=20), event="Update user attributes",
              method="PATCH", target=JOHN)  # fmt: skip
    jobs = await log_store.list_jobs(db, acme.org.id)
    assert len(jobs) == 2
    assert (jobs[1].job_id, jobs[1].resolved, jobs[1].unresolved) == (job.job_id, 2, 0)
    assert (jobs[0].resolved, jobs[0].unresolved) == (0, 0)
    assert await ids_of(db, acme, LogFilter(unresolved=True)) == []
    assert jobs[1].state(now=start + timedelta(hours=1)) == "finished"


async def test_an_earlier_success_resolves_nothing_and_lookups_resolve_only_lookups(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=30)
    await add(db, acme, occurred_at=start, event="Create user", status=201, target=JANE)
    await add(db, acme, occurred_at=start + timedelta(seconds=2), event="Update user attributes",
              outcome="failure", status=400, code="invalid_value", target=JANE)  # fmt: skip
    # A later lookup of the same user is not the retry of an update.
    await add(db, acme, occurred_at=start + timedelta(seconds=3), event="Look up user",
              target=JANE)  # fmt: skip
    rows, _ = await log_store.list_log(db, acme.org.id, LogFilter(unresolved=True))
    assert [r.event for r in rows] == ["Update user attributes"]


async def test_an_org_level_401_is_resolved_by_any_later_success(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=30)
    await add(db, acme, occurred_at=start, event="Authentication failed", outcome="failure",
              status=401, code="token_revoked")  # fmt: skip
    await add(db, acme, occurred_at=start + timedelta(seconds=1), event="Wrong base URL",
              outcome="failure", status=404, code="wrong_base_url")  # fmt: skip
    assert len(await ids_of(db, acme, LogFilter(unresolved=True))) == 2
    await add(db, acme, occurred_at=start + timedelta(minutes=1), event="Test API credentials")
    assert await ids_of(db, acme, LogFilter(unresolved=True)) == []
    failures, _ = await log_store.list_log(db, acme.org.id, LogFilter(outcome="failure"))
    assert [r.unresolved for r in failures] == [False, False]
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert (job.failures, job.resolved, job.unresolved) == (2, 2, 0)


async def test_failures_that_need_no_action_are_never_unresolved(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add(db, acme, event="Delete group", method="DELETE", outcome="failure", status=404,
              code="team_not_found", target=ENGINEERING)  # fmt: skip
    await add(db, acme, event="Create user", method="POST", outcome="failure", status=499,
              code="client_closed", target=JANE)  # fmt: skip
    assert await ids_of(db, acme, LogFilter(unresolved=True)) == []
    failures, _ = await log_store.list_log(db, acme.org.id, LogFilter(outcome="failure"))
    assert [r.unresolved for r in failures] == [False, False]
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert job.state(now=job.ended_at + STALL_AFTER) == "finished"


async def test_jobs_the_first_sync_and_their_summaries(
    db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    # The setup guide's order: Test API Credentials, then the first assignment 5 minutes later.
    await add(db, acme, occurred_at=start, event="Test API credentials")
    await add(db, acme, occurred_at=start + timedelta(minutes=1), event="Wrong base URL",
              outcome="failure", status=404, code="wrong_base_url")  # fmt: skip
    sync = start + timedelta(minutes=6, seconds=1)
    await add(db, acme, occurred_at=sync, event="Look up user", target=JANE)
    await add(db, acme, occurred_at=sync + timedelta(seconds=1), event="Create user",
              status=201, target=JANE, duration_ms=250.0)  # fmt: skip
    await add(db, acme, occurred_at=sync + timedelta(seconds=2), event="Push group", status=201,
              target=ENGINEERING, duration_ms=1500.0)  # fmt: skip
    await add(db, acme, occurred_at=sync + timedelta(seconds=30), event="Create user",
              outcome="failure", status=400, code="missing_attribute", target=JOHN)  # fmt: skip
    later = sync + timedelta(minutes=20)
    await add(db, acme, occurred_at=later, event="Create user", status=201,
              target=Target("User", None, "amy@example.com"))  # fmt: skip
    await add(db, globex, occurred_at=start, event="Create user", status=201, target=JANE)

    jobs = await log_store.list_jobs(db, acme.org.id)
    assert [j.started_at for j in jobs] == [later, sync, start]
    newest, first, test = jobs
    assert [j.first_sync for j in jobs] == [False, True, False]
    assert [j.provisioned for j in jobs] == [True, True, False]
    assert (test.requests, test.successes, test.failures, test.unresolved) == (2, 1, 1, 0)
    assert test.resolved == 1  # the wrong URL, resolved by the later successes
    assert (first.requests, first.successes, first.failures, first.warnings) == (4, 3, 1, 0)
    assert (first.users, first.teams, first.unresolved) == (2, 1, 1)
    assert first.counts == {
        "Look up user": {"success": 1},
        "Create user": {"success": 1, "failure": 1},
        "Push group": {"success": 1},
    }
    # The end is when the last request finished, not when it started.
    assert first.ended_at >= sync + timedelta(seconds=30, milliseconds=1)
    assert first.ended_at < sync + timedelta(seconds=31)
    assert first.duration_seconds == pytest.approx(30.0, abs=0.9)
    assert first.state(now=later) == "stalled"
    assert newest.state(now=later + timedelta(seconds=30)) == "running"
    assert newest.state(now=newest.ended_at + STALL_AFTER) == "finished"

    assert await log_store.job_summary(db, acme.org.id, first.job_id) == first
    assert await log_store.job_summary(db, globex.org.id, first.job_id) is None
    assert await log_store.first_sync(db, acme.org.id) == first
    assert [j.job_id for j in await log_store.list_jobs(db, acme.org.id, limit=1)] == [
        newest.job_id
    ]
    assert [j.job_id for j in await log_store.list_jobs(db, acme.org.id, since=sync)] == [
        newest.job_id,
        first.job_id,
    ]
    (other,) = await log_store.list_jobs(db, globex.org.id)
    assert other.first_sync
    assert other.requests == 1


async def test_no_first_sync_before_anything_is_provisioned(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add(db, acme, event="Test API credentials")
    assert await log_store.first_sync(db, acme.org.id) is None
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert not job.first_sync


async def test_hourly_counts(
    db: asyncpg.Connection, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    await add(db, acme, occurred_at=hour + timedelta(minutes=5), event="Create user", status=201,
              method="POST", target=JANE)  # fmt: skip
    await add(db, acme, occurred_at=hour + timedelta(minutes=6), event="Create user",
              outcome="failure", status=400, code="missing_attribute", method="POST",
              target=JOHN)  # fmt: skip
    await add(db, acme, occurred_at=hour + timedelta(minutes=70), event="Update user attributes",
              method="PUT", target=JANE)  # fmt: skip
    await add(db, globex, occurred_at=hour + timedelta(minutes=5), event="Create user")
    counts = await log_store.hourly_counts(db, acme.org.id, since=hour + timedelta(minutes=30))
    assert counts == {
        hour: {
            "e:Create user|success": 1,
            "e:Create user|failure": 1,
            "c:missing_attribute": 1,
        },
        hour + timedelta(hours=1): {"e:Update user attributes|success": 1, "m:PUT User": 1},
    }
    assert await log_store.hourly_counts(db, acme.org.id, since=hour + timedelta(hours=2)) == {}
    # Up to, not including, the hour `until` falls in when it is on the hour.
    assert list(
        await log_store.hourly_counts(
            db, acme.org.id, since=hour, until=hour + timedelta(minutes=70)
        )
    ) == [hour, hour + timedelta(hours=1)]
    assert list(
        await log_store.hourly_counts(db, acme.org.id, since=hour, until=hour + timedelta(hours=1))
    ) == [hour]
    assert await log_store.hourly_outcomes(db, acme.org.id, since=hour) == {
        hour: {"success": 1, "warning": 0, "failure": 1},
        hour + timedelta(hours=1): {"success": 1, "warning": 0, "failure": 0},
    }
    # In buckets of 6 hours from the Unix epoch: the bucket the hour falls in.
    six = hour.replace(hour=hour.hour // 6 * 6)
    buckets = await log_store.hourly_outcomes(db, acme.org.id, since=six, bucket_hours=6)
    assert sum(b["success"] for b in buckets.values()) == 2
    assert min(buckets) == six
    assert all(b.hour % 6 == 0 for b in buckets)


# --- retention --------------------------------------------------------------------------------


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


async def test_upkeep_lock_is_held_by_one_connection(
    db: asyncpg.Connection, database_url: str
) -> None:
    async with connection(database_url) as other:
        async with log_store.upkeep_lock(db) as mine:
            assert mine
            async with log_store.upkeep_lock(other) as theirs:
                assert not theirs
        async with log_store.upkeep_lock(other) as theirs:
            assert theirs


# --- plans ------------------------------------------------------------------------------------


class Captured:
    """A stand-in connection that records the statements a store function sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.calls.append((sql, args))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> None:
        self.calls.append((sql, args))

    async def fetchval(self, sql: str, *args: Any) -> None:
        self.calls.append((sql, args))


SEED_TARGET_ORG_ROWS = 4000
SEED_OTHER_ORG_ROWS = 16000


# All seed rows in one daily partition whatever the time of day: tomorrow (UTC),
# 03:20 to 20:00. A seed that crossed midnight would leave a partition so small that
# a sequential scan of it is the right plan.
SEED_END = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(20), tzinfo=UTC)


@dataclass(frozen=True)
class SeededLog:
    url: str
    org_id: uuid.UUID


async def _seed(url: str) -> uuid.UUID:
    db = await asyncpg.connect(url)
    try:
        acme = await make_org(db, "acme")
        globex = await make_org(db, "globex")
        await log_store.ensure_partitions(db)
        await db.execute(
            """
            INSERT INTO provisioning_log (
                org_id, occurred_at, finished_at, token_id, job_id, request_id, method, path,
                status, duration_ms, event, outcome, code, target_type, target_id, target_name,
                target_key)
            SELECT CASE WHEN g % 5 = 0 THEN $1::uuid ELSE $2::uuid END,
                   $4::timestamptz - g * interval '3 seconds', $4::timestamptz - g * interval '3 seconds',
                   NULL, ('00000000-0000-4000-8000-' || lpad((g / 400)::text, 12, '0'))::uuid,
                   md5(g::text), 'POST', '/Users',
                   CASE WHEN g % 53 = 0 THEN 400 ELSE 201 END, 1,
                   CASE WHEN g % 97 = 0 THEN 'Delete user'
                        ELSE (ARRAY['Create user', 'Look up user', 'Update user attributes',
                                    'Import users'])[g % 4 + 1] END,
                   CASE WHEN g % 53 = 0 THEN 'failure' ELSE 'success' END,
                   CASE WHEN g % 53 = 0
                        THEN (ARRAY['missing_attribute', 'duplicate_username',
                                    'unknown_member'])[g % 3 + 1] END,
                   'User', ('00000000-0000-4000-9000-' || lpad((g % 1000)::text, 12, '0'))::uuid,
                   'u' || (g % 1000) || '@example.com', 'user:u' || (g % 1000) || '@example.com'
            FROM generate_series(1, $3::int) AS g
            """,
            acme.org.id,
            globex.org.id,
            SEED_TARGET_ORG_ROWS + SEED_OTHER_ORG_ROWS,
            SEED_END,
        )
        await db.execute(
            """
            INSERT INTO unresolved_failures (org_id, log_id, occurred_at, job_id, target_key, event)
            SELECT org_id, id, occurred_at, job_id, target_key, event
            FROM provisioning_log WHERE outcome = 'failure'
            """
        )
        await db.execute(
            """
            INSERT INTO sync_job_summaries (org_id, job_id, started_at, provisioned_at)
            SELECT org_id, job_id, min(occurred_at), min(occurred_at) FILTER (WHERE event = 'Create user')
            FROM provisioning_log GROUP BY org_id, job_id
            """
        )
        await db.execute(
            """
            INSERT INTO sync_job_counts (org_id, job_id, shard, requests, successes, failures,
                                         first_at, last_at, counts)
            SELECT org_id, job_id, 0, count(*), count(*) FILTER (WHERE outcome = 'success'),
                   count(*) FILTER (WHERE outcome = 'failure'), min(occurred_at), max(finished_at),
                   '{}'::jsonb
            FROM provisioning_log GROUP BY org_id, job_id
            """
        )
        for table in ("provisioning_log", "unresolved_failures", "sync_job_summaries",
                      "sync_job_counts"):  # fmt: skip
            await db.execute(f"ANALYZE {table}")
        return acme.org.id
    finally:
        await db.close()


@pytest.fixture(scope="module")
def seeded_log(pg_server_url: str) -> Iterator[SeededLog]:
    """A small log that still proves the plans, seeded once for the module in a database
    of its own: 4,000 rows in one org and 16,000 in another over 16 hours of one day, with
    jobs and unresolved failures as the write keeps them, analyzed."""
    url = asyncio.run(create_database(pg_server_url))
    try:
        yield SeededLog(url, asyncio.run(_seed(url)))
    finally:
        asyncio.run(drop_database(pg_server_url, url))


@pytest.fixture
async def plan_db(seeded_log: SeededLog) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(seeded_log.url)
    yield conn
    await conn.close()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


async def _plan(db: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    text = await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return _nodes(json.loads(text)[0]["Plan"])


async def _log_partitions(db: asyncpg.Connection) -> set[str]:
    return {
        r["relname"]
        for r in await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'provisioning_log'::regclass AND c.reltuples > 0"
        )
    }


async def _parent_indexes(db: asyncpg.Connection) -> dict[str, str]:
    """Each partition's index → the index it was made from on provisioning_log."""
    return {
        r["child"]: r["parent"]
        for r in await db.fetch(
            "SELECT c.relname AS child, p.relname AS parent FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE c.relkind = 'i'"
        )
    }


async def _plan_text(db: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> str:
    return "\n".join(r[0] for r in await db.fetch("EXPLAIN " + sql, *args))


def _captured(calls: list[tuple[str, tuple[Any, ...]]], name: str) -> tuple[str, tuple[Any, ...]]:
    # The text before the store's fixed filter fragments.
    head = re.split(r"/\*\w+\*/", QUERIES[name])[0]
    (call,) = [c for c in calls if c[0].startswith(head)]
    return call


def _page_call(
    where: LogFilter, calls: list[tuple[str, tuple[Any, ...]]]
) -> tuple[str, tuple[Any, ...]]:
    """The page statement: a "name*" target's, one name's, one event's, or the log's."""
    if where.target and where.target.endswith("*"):
        return _captured(calls, "log_page_prefix")
    if where.target:
        return _captured(calls, "log_page_target")
    return _captured(calls, "log_page_event" if where.event and not where.outcome else "log_page")


async def _log_scans(
    db: asyncpg.Connection, sql: str, args: tuple[Any, ...]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The scans of filled log partitions, and the log indexes the plan reads."""
    filled = await _log_partitions(db)
    assert len(filled) >= 1
    assert "provisioning_log_default" not in filled
    parents = await _parent_indexes(db)
    nodes = await _plan(db, sql, args)
    scans = [n for n in nodes if n.get("Relation Name") in filled]
    indexes = {parents.get(n.get("Index Name") or "", "") for n in nodes} - {""}
    return scans, indexes


PAGES = [
    pytest.param(LogFilter(), "provisioning_log_org_latest", id="newest"),
    pytest.param(LogFilter(outcome="failure"), "provisioning_log_org_outcome", id="outcome"),
    pytest.param(
        LogFilter(event="Create user", outcome="failure"),
        "provisioning_log_org_event_outcome",
        id="event+outcome",
    ),
    # A rare event alone: the event+outcome index, its leading columns.
    pytest.param(LogFilter(event="Delete user"), "provisioning_log_org_event_outcome", id="event"),
    pytest.param(LogFilter(code="unknown_member"), "provisioning_log_org_code", id="code"),
    pytest.param(
        LogFilter(target="u40@example.com"), "provisioning_log_org_target_key", id="target"
    ),
    pytest.param(
        LogFilter(target="u44*"),
        "provisioning_log_org_target_key",
        id="target-prefix",
    ),
    pytest.param(
        LogFilter(job_id=uuid.UUID("00000000-0000-4000-8000-000000000010")),
        "provisioning_log_org_job",
        id="job",
    ),
    pytest.param(
        LogFilter(target_id=uuid.UUID("00000000-0000-4000-9000-000000000045")),
        "provisioning_log_org_target",
        id="target-id",
    ),
]


async def _generic_plan(
    db: asyncpg.Connection, sql: str, args: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """The plan a pooled connection may keep after a statement's fifth run: planned
    once for any values. (EXPLAIN with parameters plans with their values.)"""
    types = [t.name for t in (await db.prepare(sql)).get_parameters()]
    # The values only choose the partitions the executor skips; the server quotes them.
    literals = [
        await db.fetchval(f"SELECT quote_literal($1::{t}::text) || '::{t}'", a)
        for t, a in zip(types, args, strict=True)
    ]
    await db.execute("DEALLOCATE ALL")
    await db.execute(f"PREPARE generic_page ({', '.join(types)}) AS {sql.rstrip().rstrip(';')}")
    await db.execute("SET plan_cache_mode = force_generic_plan")
    try:
        text = await db.fetchval(
            f"EXPLAIN (FORMAT JSON) EXECUTE generic_page ({', '.join(literals)})"
        )
    finally:
        await db.execute("RESET plan_cache_mode")
    return _nodes(json.loads(text)[0]["Plan"])


# A pooled connection plans a statement with its values for its first five runs, then
# may keep a generic plan for good: both must read through the filter's index.
@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize(("where", "index"), PAGES)
async def test_log_pages_read_through_their_index(
    plan_db: asyncpg.Connection, seeded_log: SeededLog, where: LogFilter, index: str,
    generic: bool,
) -> None:  # fmt: skip
    capture = Captured()
    await log_store.list_log(cast(Connection, capture), seeded_log.org_id, where, limit=50)
    sql, args = _page_call(where, capture.calls)
    if generic:
        parents = await _parent_indexes(plan_db)
        nodes = await _generic_plan(plan_db, sql, args)
        used = {parents.get(n.get("Index Name") or "", "") for n in nodes} - {""}
        assert index in used, nodes
        return
    scans, indexes = await _log_scans(plan_db, sql, args)
    assert scans
    assert {n["Node Type"] for n in scans} <= {
        "Index Scan",
        "Index Only Scan",
        "Bitmap Heap Scan",
    }, [(n["Node Type"], n.get("Relation Name"), n.get("Filter")) for n in scans]
    assert index in indexes, await _plan_text(plan_db, sql, args)
    rows, _ = await log_store.list_log(plan_db, seeded_log.org_id, where, limit=50)
    assert rows, where
    assert {r.org_id for r in rows} == {seeded_log.org_id}


async def test_a_name_prefix_page_is_driven_by_the_target_key_index(
    plan_db: asyncpg.Connection, seeded_log: SeededLog
) -> None:
    """ "u4*" (a tenth of the org's rows): every match's position from the key index,
    never a newest-first walk of the whole log that hopes to meet them early."""
    where = LogFilter(target="u4*")
    capture = Captured()
    await log_store.list_log(cast(Connection, capture), seeded_log.org_id, where, limit=50)
    sql, args = _page_call(where, capture.calls)
    _, indexes = await _log_scans(plan_db, sql, args)
    assert "provisioning_log_org_target_key" in indexes
    assert "provisioning_log_org_latest" not in indexes, await _plan_text(plan_db, sql, args)
    rows, cursor = await log_store.list_log(plan_db, seeded_log.org_id, where, limit=50)
    assert len(rows) == 50
    assert cursor is not None
    assert all((r.target_key or "").startswith("user:u4") for r in rows)
    keys = [(r.occurred_at, r.id or 0) for r in rows]
    assert keys == sorted(keys, reverse=True)
    # The same rows the log holds, newest first.
    newest = await plan_db.fetch(
        "SELECT id FROM provisioning_log WHERE org_id = $1 AND target_key LIKE 'user:u4%' "
        "ORDER BY occurred_at DESC, id DESC LIMIT 50",
        seeded_log.org_id,
    )
    assert [r.id for r in rows] == [r["id"] for r in newest]


RANGE_START, RANGE_END = SEED_END - timedelta(hours=3), SEED_END - timedelta(hours=2)


@pytest.mark.parametrize(
    ("where", "index"),
    [
        pytest.param(
            LogFilter(since=RANGE_START, until=RANGE_END), "provisioning_log_org_latest", id="range"
        ),
        pytest.param(
            LogFilter(outcome="failure", since=RANGE_START, until=RANGE_END),
            "provisioning_log_org_outcome",
            id="range+outcome",
        ),
        pytest.param(
            LogFilter(target="u4*", since=RANGE_START, until=RANGE_END),
            "provisioning_log_org_target_key",
            id="range+prefix",
        ),
    ],
)
async def test_a_time_range_bounds_the_index_scan(
    plan_db: asyncpg.Connection, seeded_log: SeededLog, where: LogFilter, index: str
) -> None:
    """A custom range (the dashboard's from/to) is two $n bounds on occurred_at that
    the page's index reads as its range, never a filter over the rows outside it."""
    capture = Captured()
    await log_store.list_log(cast(Connection, capture), seeded_log.org_id, where, limit=50)
    sql, args = _page_call(where, capture.calls)
    assert (args[1], args[2]) == (where.since, where.until)
    scans, indexes = await _log_scans(plan_db, sql, args)
    assert index in indexes, await _plan_text(plan_db, sql, args)
    for scan in scans:
        # A bitmap heap scan's index condition is its recheck condition.
        condition = scan.get("Index Cond") or scan.get("Recheck Cond", "")
        if "occurred_at = " in condition:
            continue  # a "name*" page's rows, fetched by key once the page is known
        assert "occurred_at >=" in condition, scan
        assert "occurred_at <" in condition, scan
        assert "occurred_at" not in scan.get("Filter", ""), scan
    rows, _ = await log_store.list_log(plan_db, seeded_log.org_id, where, limit=1000)
    assert rows
    assert all(RANGE_START <= r.occurred_at < RANGE_END for r in rows)
    everything, _ = await log_store.list_log(
        plan_db, seeded_log.org_id, replace(where, since=None, until=None), limit=5000
    )
    assert len(rows) == sum(RANGE_START <= r.occurred_at < RANGE_END for r in everything)


async def test_unresolved_failures_drive_their_page(
    plan_db: asyncpg.Connection, seeded_log: SeededLog
) -> None:
    capture = Captured()
    await log_store.list_log(
        cast(Connection, capture), seeded_log.org_id, LogFilter(unresolved=True), limit=50
    )
    sql, args = _captured(capture.calls, "log_page_unresolved")
    scans, _ = await _log_scans(plan_db, sql, args)
    nodes = await _plan(plan_db, sql, args)
    relations = [n["Relation Name"] for n in nodes if "Relation Name" in n]
    # The small table is read first; the log only by primary key, one row per failure.
    assert relations[0] == "unresolved_failures", relations
    assert scans
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan"}, scans
    assert any(n["Node Type"] == "Nested Loop" for n in nodes)
    rows, _ = await log_store.list_log(
        plan_db, seeded_log.org_id, LogFilter(unresolved=True), limit=500
    )
    assert len(rows) == len([g for g in range(1, 20001) if g % 5 == 0 and g % 53 == 0])
    assert all(r.unresolved and r.outcome == "failure" for r in rows)


async def test_tail_reads_by_transaction_id(
    plan_db: asyncpg.Connection, seeded_log: SeededLog
) -> None:
    cursor = await log_store.tail_start(plan_db)
    capture = Captured()
    with contextlib.suppress(IndexError):  # the stand-in returns no horizon row
        await log_store.log_tail(cast(Connection, capture), seeded_log.org_id, cursor)
    sql, args = _captured(capture.calls, "log_tail")
    scans, indexes = await _log_scans(plan_db, sql, args)
    assert scans
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}
    assert "provisioning_log_org_xid" in indexes, indexes
    rows, _ = await log_store.log_tail(plan_db, seeded_log.org_id, cursor)
    assert rows == []


async def test_history_reads_by_target_key(
    plan_db: asyncpg.Connection, seeded_log: SeededLog
) -> None:
    capture = Captured()
    target = uuid.UUID("00000000-0000-4000-9000-000000000040")
    await log_store.target_history(
        cast(Connection, capture), seeded_log.org_id, target_type="User", name="U40@example.com",
        target_id=target,
    )  # fmt: skip
    sql, args = _captured(capture.calls, "log_target_history")
    scans, indexes = await _log_scans(plan_db, sql, args)
    assert scans
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}
    assert "provisioning_log_org_target_key" in indexes, indexes
    rows, _ = await log_store.target_history(
        plan_db, seeded_log.org_id, target_type="User", name="U40@example.com", target_id=target
    )
    assert rows
    assert {r.target_key for r in rows} == {"user:u40@example.com"}


async def test_jobs_are_read_from_their_summaries_never_from_the_log(
    plan_db: asyncpg.Connection, seeded_log: SeededLog
) -> None:
    capture = Captured()
    await log_store.list_jobs(cast(Connection, capture), seeded_log.org_id)
    await log_store.job_summary(
        cast(Connection, capture),
        seeded_log.org_id,
        uuid.UUID("00000000-0000-4000-8000-000000000010"),
    )
    head = QUERIES["list_jobs"].split("/*job*/")[0]
    assert {"list_jobs" if sql.startswith(head) else sql for sql, _ in capture.calls} == {
        "list_jobs",
        QUERIES["first_sync_job"],
    }
    for sql, args in capture.calls:
        nodes = await _plan(plan_db, sql, args)
        relations = {n["Relation Name"] for n in nodes if "Relation Name" in n}
        assert not any(r.startswith("provisioning_log") for r in relations), relations
        assert relations & {"sync_job_summaries", "sync_job_counts"}, relations
    jobs = await log_store.list_jobs(plan_db, seeded_log.org_id)
    assert len(jobs) == 20
    first = await log_store.first_sync(plan_db, seeded_log.org_id)
    assert first is not None
    assert first.first_sync
