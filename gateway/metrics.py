"""Prometheus metrics, one registry per application so tests stay isolated."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.provlog.events import EVENTS, FAILURE, SUCCESS, WARNING
from gateway.tokens import AuthFailure

# Okta gives up after 60 s; buckets reach past that so timeouts are visible.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "scim_requests",
            "SCIM requests served, by route template and HTTP status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "scim_request_duration_seconds",
            "Time to serve a SCIM request, provisioning-log write included.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "scim_auth_failures",
            "SCIM requests refused with 401, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.log_write_failures = Counter(
            "scim_provisioning_log_write_failures",
            "Provisioning-log rows that could not be written.",
            registry=self.registry,
        )
        self.events = Counter(
            "scim_provisioning_events",
            "Provisioning-log rows by event (as Okta's admin names it) and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.log_rows_by_code = Counter(
            "scim_provisioning_log_codes",
            "Failures and warnings recorded in the provisioning log, by reason code.",
            ["outcome", "code"],
            registry=self.registry,
        )
        self.log_rows_spooled = Counter(
            "scim_provisioning_log_rows_spooled",
            "Provisioning-log rows spooled to local disk while the database was away.",
            registry=self.registry,
        )
        self.log_rows_replayed = Counter(
            "scim_provisioning_log_rows_replayed",
            "Spooled provisioning-log rows written to the database later.",
            registry=self.registry,
        )
        self.log_rows_dropped = Counter(
            "scim_provisioning_log_rows_dropped",
            "Spooled provisioning-log rows lost: over the spool's size cap, or refused on replay.",
            registry=self.registry,
        )
        self.log_write_seconds = Histogram(
            "scim_provisioning_log_write_seconds",
            "Time to write a provisioning-log row outside a change's own statement.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Pre-initialise label sets so dashboards show 0, not "No data".
        for reason in AuthFailure:
            self.auth_failures.labels(reason=reason.value)
        for event in EVENTS:
            for outcome in (SUCCESS, FAILURE, WARNING):
                self.events.labels(event=event, outcome=outcome)

    def record_log_row(self, event: str, outcome: str, code: str | None) -> None:
        """Count one provisioning-log row as stored (or spooled): once per row."""
        self.events.labels(event=event, outcome=outcome).inc()
        if code is not None and outcome != SUCCESS:
            self.log_rows_by_code.labels(outcome=outcome, code=code).inc()

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.request_seconds.labels(method=method, route=route).observe(seconds)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
