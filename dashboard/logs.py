"""Logs (like Okta's provisioning logs, live) and First sync, read through the log's store
functions. Live rows come from the process's one poller (`dashboard.live`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from dashboard.chart import build_chart, chart_window
from dashboard.pages import iso, render
from dashboard.scim_settings import parse_id
from gateway.appkeys import DASHBOARD_SESSION, DB_READ_POOL, LIVE_LOG
from gateway.dbtypes import Connection
from gateway.provlog.events import EVENTS
from gateway.provlog.guidance import Guidance, guidance_for_log
from gateway.store import provisioning_log as log_store

PAGE_SIZE = 50
OUTCOMES = ("success", "failure", "warning")
SINCE = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
KEEPALIVE_SECONDS = 15
JOB_ROWS_BEFORE_START = timedelta(days=1)
# Okta's first sync of a small pilot, per the setup guide.
TYPICAL_FIRST_SYNC = timedelta(minutes=2)


def _instant(text: str, name: str) -> datetime | None:
    """A range bound from the URL: an ISO 8601 instant (no offset means UTC)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip()[:40])
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise web.HTTPBadRequest(
            text=f"The time range's '{name}' is not a date and time; pick it again."
        ) from None


@dataclass(frozen=True)
class LogView:
    outcome: str | None
    event: str | None
    job: uuid.UUID | None
    target: uuid.UUID | None
    # A userName or team name (case-insensitive), "name*" for names starting so.
    target_text: str
    unresolved: bool
    since_key: str
    # A custom range, UTC instants (the browser converts from the viewer's timezone):
    # from inclusive, to exclusive. With a preset too, both hold.
    range_from: datetime | None
    range_to: datetime | None
    before: log_store.Cursor | None
    # When the view was asked for: presets ("last 1h") count back from it.
    now: datetime

    @classmethod
    def from_query(cls, request: web.Request) -> LogView:
        query = request.query
        outcome = query.get("outcome") or None
        event = query.get("event") or None
        before = None
        if query.get("before"):
            try:
                before = log_store.Cursor.decode(query["before"])
            except ValueError:
                raise web.HTTPBadRequest(
                    text="That page link is broken; start again from the first page."
                ) from None
        range_from = _instant(query.get("from", ""), "from")
        range_to = _instant(query.get("to", ""), "to")
        if range_from and range_to and range_from >= range_to:
            raise web.HTTPBadRequest(
                text="The time range ends before it starts: pick a 'To' after 'From'."
            )
        return cls(
            outcome=outcome if outcome in OUTCOMES else None,
            event=event if event in EVENTS else None,
            job=parse_id(query["job"]) if query.get("job") else None,
            target=parse_id(query["target"]) if query.get("target") else None,
            target_text=query.get("q", "").strip()[:200],
            unresolved=query.get("unresolved") == "1",
            since_key=query.get("since", "") if query.get("since", "") in SINCE else "",
            range_from=range_from,
            range_to=range_to,
            before=before,
            now=datetime.now(UTC),
        )

    @property
    def since(self) -> datetime | None:
        """The range's start: the later of the preset's and the custom one."""
        starts = [self.now - SINCE[self.since_key]] if self.since_key else []
        starts += [self.range_from] if self.range_from else []
        return max(starts, default=None)

    @property
    def filter(self) -> log_store.LogFilter:
        return log_store.LogFilter(
            since=self.since,
            until=self.range_to,
            outcome=self.outcome,
            event=self.event,
            target_id=self.target,
            job_id=self.job,
            target=self.target_text or None,
            unresolved=self.unresolved,
        )

    def query(self, **change: str | None) -> str:
        """This view's URL query, with some parameters changed (None drops one)."""
        values = self._query_values()
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v})

    def query_value(self, name: str) -> str:
        return self._query_values()[name] or ""

    def _query_values(self) -> dict[str, str | None]:
        return {
            "outcome": self.outcome,
            "event": self.event,
            "job": str(self.job) if self.job else None,
            "target": str(self.target) if self.target else None,
            "q": self.target_text or None,
            "unresolved": "1" if self.unresolved else None,
            "since": self.since_key or None,
            "from": iso(self.range_from) if self.range_from else None,
            "to": iso(self.range_to) if self.range_to else None,
        }

    @property
    def filtered(self) -> bool:
        return bool(
            self.outcome
            or self.event
            or self.job
            or self.target
            or self.target_text
            or self.unresolved
            or self.since_key
            or self.range_from
            or self.range_to
        )

    @property
    def live(self) -> bool:
        """Whether new rows can still belong on this page (the newest, range still open)."""
        return self.before is None and (self.range_to is None or self.range_to > self.now)

    def matches(self, row: log_store.LogRow) -> bool:
        """The page's filters, applied to a live row (the same rules as `list_log`)."""
        return (
            (self.outcome is None or row.outcome == self.outcome)
            and (self.event is None or row.event == self.event)
            and (self.job is None or row.job_id == self.job)
            and (self.target is None or row.target_id == self.target)
            and (not self.unresolved or row.outcome == "failure")
            and (self.since is None or row.occurred_at >= self.since)
            and (self.range_to is None or row.occurred_at < self.range_to)
            and (not self.target_text or self._target_matches(row))
        )

    def _target_matches(self, row: log_store.LogRow) -> bool:
        keys, pattern = log_store.target_keys(self.target_text)
        key = row.target_key or ""
        if pattern is not None:
            stem = self.target_text.strip().casefold()[:-1]
            return key.partition(":")[2].startswith(stem)
        return key in keys or str(row.target_id) == self.target_text.strip()


def with_guidance(rows: list[log_store.LogRow]) -> list[tuple[log_store.LogRow, Guidance | None]]:
    return [(row, guidance_for_log(row)) for row in rows]


async def logs(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    view = LogView.from_query(request)
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        # Taken before the page's rows, so the live stream starts where they end.
        tail = await log_store.tail_start(conn)
        rows, next_cursor = await log_store.list_log(
            conn, session.org_id, view.filter, limit=PAGE_SIZE, before=view.before
        )
        window = chart_window(view.now, view.since, view.range_to)
        hourly = (
            await log_store.hourly_outcomes(
                conn,
                session.org_id,
                since=window.first,
                until=window.end,
                bucket_hours=window.bucket_hours,
            )
            if window
            else {}
        )
    return render(
        request,
        "logs.html",
        {
            "nav": "logs",
            "view": view,
            "rows": with_guidance(rows),
            "next_cursor": next_cursor.encode() if next_cursor else None,
            "events": EVENTS,
            "outcomes": OUTCOMES,
            "since_choices": SINCE,
            "live_tail": tail.encode(),
            "live": view.live,
            "chart": build_chart(hourly, window) if window else None,
        },
    )


def _row_event(request: web.Request, row: log_store.LogRow) -> bytes:
    env = aiohttp_jinja2.get_env(request.app)
    html = env.get_template("log_row.html").render(row=row, guidance=guidance_for_log(row))
    data = json.dumps(
        {
            "id": row.id,
            "job": str(row.job_id) if row.job_id else None,
            "event": row.event,
            "outcome": row.outcome,
            "at": row.occurred_at.isoformat(),
            "target_key": row.target_key,
            "html": html,
        }
    )
    return f"id: {row.id}\nevent: row\ndata: {data}\n\n".encode()


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each new row of the org (matching the page's filters)."""
    session = request[DASHBOARD_SESSION]
    view = LogView.from_query(request)
    pool = request.config_dict[DB_READ_POOL]
    try:
        cursor = log_store.TailCursor.decode(request.query.get("tail", ""))
    except ValueError:
        async with pool.acquire() as conn:
            cursor = await log_store.tail_start(conn)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    with request.config_dict[LIVE_LOG].subscribe(session.org_id, cursor) as (queue, catch_up):
        if catch_up:
            # Once per opened page: the rows since its render that others already got.
            async with pool.acquire() as conn:
                rows, _ = await log_store.log_tail(conn, session.org_id, cursor)
            queue.put_nowait(rows)
        while True:
            try:
                rows = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            for row in rows:
                if view.matches(row):
                    await response.write(_row_event(request, row))


@dataclass(frozen=True)
class JobView:
    job: log_store.JobSummary
    state: str  # running, finished or stalled
    per_minute: float
    import_progress: str | None
    failures: list[tuple[log_store.LogRow, Guidance | None]]


async def _job_view(conn: Connection, org_id: uuid.UUID, job: log_store.JobSummary) -> JobView:
    # The job's rows lie before its last request's end, and after its start less a day
    # (a row that started before the one that opened the job, or was spooled while the
    # database was away, wrote later): bounded so, the reads plan only a few daily
    # partitions of the log, not all of them.
    since, until = job.started_at - JOB_ROWS_BEFORE_START, job.ended_at + timedelta(seconds=1)
    imports, _ = await log_store.list_log(
        conn,
        org_id,
        log_store.LogFilter(job_id=job.job_id, event="Import users", since=since, until=until),
        limit=1,
    )
    failures, _ = await log_store.list_log(
        conn,
        org_id,
        log_store.LogFilter(
            job_id=job.job_id, outcome="failure", unresolved=True, since=since, until=until
        ),
        limit=5,
    )
    minutes = max(job.duration_seconds / 60, 1 / 60)
    return JobView(
        job=job,
        state=job.state(),
        per_minute=job.requests / minutes,
        import_progress=imports[0].event_detail if imports else None,
        failures=with_guidance(failures),
    )


async def first_sync(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        tail = await log_store.tail_start(conn)
        first = await log_store.first_sync(conn, session.org_id)
        latest = await log_store.list_jobs(conn, session.org_id, limit=1)
        views = []
        if first is not None:
            views.append(await _job_view(conn, session.org_id, first))
        if latest and (first is None or latest[0].job_id != first.job_id):
            views.append(await _job_view(conn, session.org_id, latest[0]))
    return render(
        request,
        "first_sync.html",
        {
            "nav": "first_sync",
            "views": views,
            "typical": TYPICAL_FIRST_SYNC,
            "live_tail": tail.encode(),
        },
    )


async def log_entry(request: web.Request) -> web.StreamResponse:
    """One row, on a page of its own (a link an admin can share)."""
    session = request[DASHBOARD_SESSION]
    row_id = int(request.match_info["row_id"])
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        row = await log_store.log_row(conn, session.org_id, row_id)
    if row is None:
        raise web.HTTPNotFound(text="There is no such log row in your org.")
    return render(
        request, "log_entry.html", {"nav": "logs", "row": row, "guidance": guidance_for_log(row)}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/logs", logs, name="logs", allow_head=False)
    app.router.add_get("/logs/live", live, name="logs_live", allow_head=False)
    app.router.add_get("/logs/{row_id:[0-9]{1,18}}", log_entry, name="log_entry", allow_head=False)
    app.router.add_get("/first-sync", first_sync, name="first_sync", allow_head=False)
