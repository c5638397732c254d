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

from dashboard.pages import render
from dashboard.scim_settings import parse_id
from gateway.appkeys import DASHBOARD_SESSION, DB_POOL, LIVE_LOG
from gateway.dbtypes import Connection
from gateway.events import EVENTS
from gateway.guidance import Guidance, guidance_for_log
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
# Okta's first sync of a small pilot, per the setup guide.
TYPICAL_FIRST_SYNC = timedelta(minutes=2)
# No request for this long while failures are pending: Okta is waiting for a retry.
QUIET = timedelta(minutes=2)


@dataclass(frozen=True)
class LogView:
    outcome: str | None
    event: str | None
    job: uuid.UUID | None
    target: uuid.UUID | None
    since_key: str
    before: log_store.Cursor | None

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
        return cls(
            outcome=outcome if outcome in OUTCOMES else None,
            event=event if event in EVENTS else None,
            job=parse_id(query["job"]) if query.get("job") else None,
            target=parse_id(query["target"]) if query.get("target") else None,
            since_key=query.get("since", "") if query.get("since", "") in SINCE else "",
            before=before,
        )

    @property
    def filter(self) -> log_store.LogFilter:
        since = datetime.now(UTC) - SINCE[self.since_key] if self.since_key else None
        return log_store.LogFilter(
            since=since,
            outcome=self.outcome,
            event=self.event,
            target_id=self.target,
            job_id=self.job,
        )

    def query(self, **change: str | None) -> str:
        """This view's URL query, with some parameters changed (None drops one)."""
        values = {
            "outcome": self.outcome,
            "event": self.event,
            "job": str(self.job) if self.job else None,
            "target": str(self.target) if self.target else None,
            "since": self.since_key or None,
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v})

    def matches(self, row: log_store.LogRow) -> bool:
        return (
            (self.outcome is None or row.outcome == self.outcome)
            and (self.event is None or row.event == self.event)
            and (self.job is None or row.job_id == self.job)
            and (self.target is None or row.target_id == self.target)
        )


def with_guidance(rows: list[log_store.LogRow]) -> list[tuple[log_store.LogRow, Guidance | None]]:
    return [(row, guidance_for_log(row)) for row in rows]


async def logs(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    view = LogView.from_query(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, next_cursor = await log_store.list_log(
            conn, session.org_id, view.filter, limit=PAGE_SIZE, before=view.before
        )
    newest = rows[0].occurred_at if rows and view.before is None else datetime.now(UTC)
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
            "live_since": newest.isoformat(),
            "live": view.before is None,
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
            "html": html,
        }
    )
    return f"id: {row.id}\nevent: row\ndata: {data}\n\n".encode()


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each new row of the org (matching the page's filters)."""
    session = request[DASHBOARD_SESSION]
    view = LogView.from_query(request)
    try:
        since = datetime.fromisoformat(request.query.get("after", ""))
    except ValueError:
        since = datetime.now(UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    with request.config_dict[LIVE_LOG].subscribe(session.org_id, since) as queue:
        while True:
            try:
                rows = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            for row in rows:
                if view.matches(row) and row.occurred_at >= since - timedelta(seconds=30):
                    await response.write(_row_event(request, row))


@dataclass(frozen=True)
class JobView:
    job: log_store.JobSummary
    state: str  # running, finished or stalled
    elapsed: timedelta
    per_minute: float
    import_progress: str | None
    failures: list[tuple[log_store.LogRow, Guidance | None]]

    def count(self, event: str, outcome: str) -> int:
        return self.job.counts.get(event, {}).get(outcome, 0)


async def _job_view(conn: Connection, org_id: uuid.UUID, job: log_store.JobSummary) -> JobView:
    now = datetime.now(UTC)
    elapsed = job.ended_at - job.started_at
    imports, _ = await log_store.list_log(
        conn, org_id, log_store.LogFilter(job_id=job.job_id, event="Import users"), limit=1
    )
    failures, _ = await log_store.list_log(
        conn, org_id, log_store.LogFilter(job_id=job.job_id, outcome="failure"), limit=5
    )
    if now - job.ended_at < QUIET:
        state = "running"
    elif job.failures:
        state = "stalled"
    else:
        state = "finished"
    minutes = max(elapsed.total_seconds() / 60, 1 / 60)
    return JobView(
        job=job,
        state=state,
        elapsed=elapsed,
        per_minute=job.requests / minutes,
        import_progress=imports[0].event_detail if imports else None,
        failures=with_guidance(failures),
    )


async def first_sync(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    async with request.config_dict[DB_POOL].acquire() as conn:
        jobs = await log_store.list_jobs(conn, session.org_id, limit=10_000)
        first = next((j for j in jobs if j.first_sync), None)
        views = []
        if first is not None:
            views.append(await _job_view(conn, session.org_id, first))
        if jobs and jobs[0] is not first:
            views.append(await _job_view(conn, session.org_id, jobs[0]))
    return render(
        request,
        "first_sync.html",
        {
            "nav": "first_sync",
            "views": views,
            "typical": TYPICAL_FIRST_SYNC,
            "live_since": datetime.now(UTC).isoformat(),
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/logs", logs, name="logs", allow_head=False)
    app.router.add_get("/logs/live", live, name="logs_live", allow_head=False)
    app.router.add_get("/first-sync", first_sync, name="first_sync", allow_head=False)
