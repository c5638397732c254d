"""Prometheus metrics: what each process counts, and the scrape that adds processes up.

One `Metrics` per application, so tests stay isolated. Under `serve --workers N`
every worker is started with `PROMETHEUS_MULTIPROC_DIR` set (see gateway/workers.py)
and prometheus-client keeps each value in a memory-mapped file per process; a
scrape served by any worker reads every worker's files. Gauges therefore declare
how processes combine (`multiprocess_mode`): requests in flight and pool
connections add up over live workers, event-loop lag is the worst live worker,
readiness the least ready one.

Labels are bounded: route templates (never paths), event names, outcomes, reason
codes and auth-failure reasons from fixed sets, and, only when `METRICS_ORG_LABEL=1`,
the org's slug for at most `METRICS_ORG_LIMIT` orgs per process (the rest are
"other"). No ids, userNames, emails or tokens.
"""

from __future__ import annotations

import contextvars
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.provlog.codes import CODES
from gateway.provlog.events import EVENTS, FAILURE, SUCCESS, WARNING
from gateway.tokens import AuthFailure

# Okta gives up on a request after 60 s: the buckets reach past it so requests that
# Okta has already abandoned still land in a bucket of their own.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0,
    90.0, 120.0,
)  # fmt: skip
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ACQUIRE_BUCKETS = (*_FAST_BUCKETS, 10.0, 30.0)

NO_ORG = ""
OTHER_ORGS = "other"
# A failure or warning whose row carries no reason code (none should).
UNCODED = "uncoded"

# SQLSTATE classes worth telling apart on a dashboard (PostgreSQL appendix A);
# every other class is "other".
_SQLSTATE_CLASSES = {
    "08": "connection_exception",
    "22": "data_exception",
    "23": "integrity_constraint_violation",
    "40": "transaction_rollback",
    "42": "syntax_error_or_access_rule_violation",
    "53": "insufficient_resources",
    "54": "program_limit_exceeded",
    "55": "object_not_in_prerequisite_state",
    "57": "operator_intervention",
    "58": "system_error",
    "XX": "internal_error",
}
QUERY_ERROR_CLASSES = (
    *_SQLSTATE_CLASSES.values(),
    "other",
    "connection_lost",
    "timeout",
    "interface_error",
)


def query_error_class(exc: BaseException) -> str:
    """A bounded name for why a statement (or getting a connection for it) failed."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return _SQLSTATE_CLASSES.get(sqlstate[:2], "other")
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return "interface_error"
    if isinstance(exc, OSError):
        return "connection_lost"
    return "other"


def build_info() -> tuple[str, str]:
    """(version, git commit) of the running code; "unknown" when it cannot be told."""
    try:
        version = metadata.version("scim-gateway")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH is fine
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            commit = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return version, commit


@dataclass
class RequestScope:
    """Log rows counted while one request is served, held until its org is known.

    Only used with the org label on: the row is counted when the request is done,
    under the org its token proved.
    """

    rows: list[tuple[str, str, str | None]] = field(default_factory=list)
    flushed: bool = False
    org: str = NO_ORG


# The request being served, so `record_log_row` (called deep in the log code with
# only event, outcome and code) can attribute its row to the request's org.
_REQUEST_SCOPE: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "metrics_request_scope", default=None
)


@dataclass(frozen=True)
class StateSnapshot:
    """Database state read at scrape time (see gateway/store/monitoring.py)."""

    up: bool
    users_active: dict[str, int] = field(default_factory=dict)
    users_deactivated: dict[str, int] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)
    memberships: int = 0
    tokens_active: dict[str, int] = field(default_factory=dict)
    token_soonest_expiry_seconds: float | None = None
    seconds_since_last_request: float | None = None
    jobs_running: int = 0
    jobs_stalled: int = 0


class _StateCollector(Collector):
    def __init__(self, state: StateSnapshot, org_label: bool) -> None:
        self.state = state
        self.org_label = org_label

    def _by_org(self, name: str, doc: str, values: dict[str, int]) -> GaugeMetricFamily:
        if self.org_label:
            family = GaugeMetricFamily(name, doc, labels=["org"])
            for org, value in sorted(values.items()):
                family.add_metric([org], value)
        else:
            family = GaugeMetricFamily(name, doc, value=sum(values.values()))
        return family

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.state
        yield GaugeMetricFamily(
            "scim_state_up",
            "1 when the database answered the scrape's state query, else 0.",
            value=1 if s.up else 0,
        )
        if not s.up:
            return
        users = GaugeMetricFamily(
            "scim_users",
            "SCIM users by state (active or deactivated).",
            labels=["state", "org"] if self.org_label else ["state"],
        )
        for state, values in (("active", s.users_active), ("deactivated", s.users_deactivated)):
            if self.org_label:
                for org, value in sorted(values.items()):
                    users.add_metric([state, org], value)
            else:
                users.add_metric([state], sum(values.values()))
        yield users
        yield self._by_org("scim_teams", "SCIM groups (SecureCodingHub teams).", s.teams)
        yield GaugeMetricFamily(
            "scim_team_memberships",
            "Team memberships, all orgs (PostgreSQL's live-row statistic: approximate, never a count).",
            value=s.memberships,
        )
        yield self._by_org(
            "scim_tokens_active", "SCIM tokens neither revoked nor expired.", s.tokens_active
        )
        if s.token_soonest_expiry_seconds is not None:
            yield GaugeMetricFamily(
                "scim_token_soonest_expiry_seconds",
                "Seconds until the soonest expiry of an active SCIM token (absent when none expires).",
                value=s.token_soonest_expiry_seconds,
            )
        if s.seconds_since_last_request is not None:
            yield GaugeMetricFamily(
                "scim_seconds_since_last_request",
                "Seconds since a SCIM token was last used (tokens record use at most once a minute).",
                value=s.seconds_since_last_request,
            )
        jobs = GaugeMetricFamily(
            "scim_sync_jobs", "Sync jobs by state (running, stalled).", labels=["state"]
        )
        jobs.add_metric(["running"], s.jobs_running)
        jobs.add_metric(["stalled"], s.jobs_stalled)
        yield jobs


class Metrics:
    """Every metric the gateway exports, and `exposition()` that renders a scrape.

    `multiprocess_dir` is prometheus-client's `PROMETHEUS_MULTIPROC_DIR`; the
    process must have been started with that variable set (prometheus-client
    chooses how to store values when it is imported).
    """

    def __init__(
        self,
        *,
        multiprocess_dir: Path | None = None,
        org_label_limit: int | None = None,
    ) -> None:
        if (
            multiprocess_dir is not None
            and prometheus_values.ValueClass is prometheus_values.MutexValue
        ):
            raise RuntimeError(
                "multiprocess metrics need PROMETHEUS_MULTIPROC_DIR in the environment "
                "before prometheus_client is imported"
            )
        self.multiprocess_dir = multiprocess_dir
        self.org_label_limit = org_label_limit
        self._org_slugs: dict[uuid.UUID, str] = {}
        # Per-process metrics register here; a multiprocess scrape reads the files instead.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        org = ["org"] if org_label_limit is not None else []

        self.requests = Counter(
            "scim_http_requests",
            "HTTP requests to every part of the gateway, by sub-app, route template, method and status.",
            ["app", "route", "method", "status", *org],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "scim_http_request_duration_seconds",
            "Time to serve a request (provisioning-log write included); Okta gives up at 60 s.",
            ["app", "route", "method", *org],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests_in_flight = Gauge(
            "scim_http_requests_in_flight",
            "Requests being served now, by sub-app.",
            ["app"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.auth_failures = Counter(
            "scim_auth_failures",
            "SCIM requests refused with 401, by reason.",
            ["reason"],
            registry=registry,
        )
        self.events = Counter(
            "scim_provisioning_events",
            "Provisioning-log rows by event (as Okta's admin names it) and outcome.",
            ["event", "outcome", *org],
            registry=registry,
        )
        self.failures = Counter(
            "scim_provisioning_failures",
            "Provisioning-log rows with outcome failure, by reason code.",
            ["code", *org],
            registry=registry,
        )
        self.warnings = Counter(
            "scim_provisioning_warnings",
            "Provisioning-log rows with outcome warning, by reason code.",
            ["code", *org],
            registry=registry,
        )
        self.list_pages = Counter(
            "scim_list_pages",
            "List pages after the first (startIndex > 1), by resource and how the page "
            "was found: keyset (after the position the walk's previous page noted) or offset.",
            ["resource", "mode"],
            registry=registry,
        )
        self.log_write_failures = Counter(
            "scim_provisioning_log_write_failures",
            "Provisioning-log rows that could not be written to the database.",
            registry=registry,
        )
        self.log_rows_spooled = Counter(
            "scim_provisioning_log_rows_spooled",
            "Provisioning-log rows written to the local spool because the database did not answer.",
            registry=registry,
        )
        self.log_rows_replayed = Counter(
            "scim_provisioning_log_rows_replayed",
            "Spooled provisioning-log rows written to the database later.",
            registry=registry,
        )
        self.log_rows_dropped = Counter(
            "scim_provisioning_log_rows_dropped",
            "Spooled provisioning-log rows dropped because the spool was full.",
            registry=registry,
        )
        self.log_write_seconds = Histogram(
            "scim_provisioning_log_write_seconds",
            "Time to write one provisioning-log row (or its change and row together).",
            buckets=_FAST_BUCKETS,
            registry=registry,
        )
        self.pool_size = Gauge(
            "scim_db_pool_connections",
            "Database pool connections open, summed over workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_in_use = Gauge(
            "scim_db_pool_connections_in_use",
            "Database pool connections lent out, summed over workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_max = Gauge(
            "scim_db_pool_max_connections",
            "Largest pool size allowed (DB_POOL_MAX_SIZE), summed over workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "scim_db_pool_waiting",
            "Tasks waiting for a pool connection, summed over workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_acquire_seconds = Histogram(
            "scim_db_pool_acquire_seconds",
            "Time spent waiting for a pool connection.",
            buckets=_ACQUIRE_BUCKETS,
            registry=registry,
        )
        self.query_errors = Counter(
            "scim_db_query_errors",
            "Failed statements and connection attempts, by SQLSTATE class (or how the connection failed).",
            ["error_class"],
            registry=registry,
        )
        self.ready = Gauge(
            "scim_ready",
            "1 when the worker's database pool answers, 0 when not; the least ready live worker.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.event_loop_lag = Gauge(
            "scim_event_loop_lag_seconds",
            "How late the event loop woke a periodic timer; the worst live worker.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.build = Gauge(
            "scim_gateway_build_info",
            "The running gateway's version and git commit (value 1).",
            ["version", "git_commit"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        version, commit = build_info()
        self.build.labels(version=version, git_commit=commit).set(1)
        self.ready.set(0)

        # Label sets that exist from the start, so dashboards show 0 and not "No data".
        for reason in AuthFailure:
            self.auth_failures.labels(reason=reason.value)
        for error_class in QUERY_ERROR_CLASSES:
            self.query_errors.labels(error_class=error_class)
        for resource in ("User", "Group"):
            for mode in ("keyset", "offset"):
                self.list_pages.labels(resource=resource, mode=mode)
        if org_label_limit is None:
            for event in EVENTS:
                for outcome in (SUCCESS, FAILURE, WARNING):
                    self.events.labels(event=event, outcome=outcome)
            for code in CODES.values():
                if code.kind == FAILURE:
                    self.failures.labels(code=code.name)
                elif code.kind == WARNING:
                    self.warnings.labels(code=code.name)

    # -- provisioning log ----------------------------------------------------------

    def record_log_row(self, event: str, outcome: str, code: str | None) -> None:
        """Count one provisioning-log row, written or spooled: call exactly once per row."""
        scope = _REQUEST_SCOPE.get()
        if self.org_label_limit is not None and scope is not None and not scope.flushed:
            scope.rows.append((event, outcome, code))
            return
        self._count_row(event, outcome, code, scope.org if scope is not None else NO_ORG)

    def _count_row(self, event: str, outcome: str, code: str | None, org: str) -> None:
        org_labels = {"org": org} if self.org_label_limit is not None else {}
        self.events.labels(event=event, outcome=outcome, **org_labels).inc()
        if outcome == FAILURE:
            self.failures.labels(code=code or UNCODED, **org_labels).inc()
        elif outcome == WARNING:
            self.warnings.labels(code=code or UNCODED, **org_labels).inc()

    # -- requests ------------------------------------------------------------------

    def open_request_scope(self) -> tuple[RequestScope, contextvars.Token[RequestScope | None]]:
        scope = RequestScope()
        return scope, _REQUEST_SCOPE.set(scope)

    def close_request_scope(
        self, scope: RequestScope, token: contextvars.Token[RequestScope | None], org: str
    ) -> None:
        _REQUEST_SCOPE.reset(token)
        scope.org = org
        scope.flushed = True
        for event, outcome, code in scope.rows:
            self._count_row(event, outcome, code, org)
        scope.rows.clear()

    def org_label(self, org_id: uuid.UUID | None) -> str | None:
        """The org label for an org id, or None when its slug must be looked up first."""
        if org_id is None:
            return NO_ORG
        slug = self._org_slugs.get(org_id)
        if slug is not None:
            return slug
        assert self.org_label_limit is not None
        if len(self._org_slugs) >= self.org_label_limit:
            return OTHER_ORGS
        return None

    def remember_org(self, org_id: uuid.UUID, slug: str | None) -> str:
        assert self.org_label_limit is not None
        if slug is None:
            return NO_ORG
        if len(self._org_slugs) >= self.org_label_limit:
            return OTHER_ORGS
        self._org_slugs[org_id] = slug
        return slug

    def observe_request(
        self, *, app: str, route: str, method: str, status: int, seconds: float, org: str
    ) -> None:
        org_labels = {"org": org} if self.org_label_limit is not None else {}
        self.requests.labels(
            app=app, route=route, method=method, status=str(status), **org_labels
        ).inc()
        self.request_seconds.labels(app=app, route=route, method=method, **org_labels).observe(
            seconds
        )

    # -- database pool (gateway.db.PoolObserver) -------------------------------------

    def acquire_started(self) -> None:
        self.pool_waiting.inc()

    def acquire_finished(self, seconds: float, error: BaseException | None) -> None:
        self.pool_waiting.dec()
        self.pool_acquire_seconds.observe(seconds)
        if error is not None:
            self.query_errors.labels(error_class=query_error_class(error)).inc()

    def query_failed(self, error: BaseException) -> None:
        self.query_errors.labels(error_class=query_error_class(error)).inc()

    # -- exposition ----------------------------------------------------------------

    def exposition(self, state: StateSnapshot | None) -> bytes:
        """The scrape: every worker's metrics (or this process's), then the database state."""
        if self.multiprocess_dir is not None:
            processes = CollectorRegistry()
            MultiProcessCollector(processes, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            text = generate_latest(processes)
        else:
            text = generate_latest(self.registry)
        if state is not None:
            state_registry = CollectorRegistry()
            state_registry.register(_StateCollector(state, self.org_label_limit is not None))
            text += generate_latest(state_registry)
        return text
