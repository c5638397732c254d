"""The Grafana dashboard against a real Prometheus scraping `serve --workers 2`.

One run: the gateway as two worker processes, Prometheus on loopback scraping its
metrics listener every second, an Okta-shaped first sync with failures spread over
both workers; then every panel query of the dashboard returns data, the scrape is
clean for `promtool check metrics`, the counts (summed over both processes) equal
the provisioning log's, and a killed worker is replaced without losing counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client.mmap_dict import MmapedDict

from gateway.settings import DEFAULT_SCIM_BASE_PATH
from gateway.workers import MULTIPROC_DIR_NAME
from tests.conftest import database_with_org, drop_database
from tests.metrics_text import Scrape
from tests.okta_sync import first_sync
from tests.served import free_port
from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "grafana" / "dashboards" / "scim-gateway.json"
RULES = ROOT / "grafana" / "prometheus" / "scim-gateway.rules.yml"
# What Grafana puts in place of its variables, for running the queries ourselves.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m", "$org": ".*"}


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return dashboard


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL with Grafana's variables filled in) of every panel."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], target["refId"], expr))
    return found


# -- the JSON itself ---------------------------------------------------------------


def test_dashboard_structure_imports_cleanly() -> None:
    dashboard = load_dashboard()
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "scim-gateway"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["org"]["includeAll"]
    assert variables["org"]["allValue"] == ".*"
    assert variables["org"]["datasource"]["uid"] == "${datasource}"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["w"] >= 1, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()


def test_dashboard_has_every_panel_the_issue_asks_for() -> None:
    titles = " | ".join(p["title"] for p in load_dashboard()["panels"]).lower()
    for wanted in (
        "by event and outcome",
        "by reason code",
        "error ratio",
        "okta's 60 s budget",
        "authentication failures by reason",
        "first sync",
        "409 / 429 / 5xx",
        "users and teams",
        "spooled",
        "pool saturation",
        "event-loop lag",
    ):
        assert wanted in titles, wanted


def test_grafana_provisioning_points_at_the_dashboard_folder() -> None:
    provider = (ROOT / "grafana" / "dashboards" / "scim-gateway.yaml").read_text("utf-8")
    assert "path: /etc/grafana/provisioning/dashboards" in provider
    datasource = (ROOT / "grafana" / "datasources" / "prometheus.yaml").read_text("utf-8")
    assert "type: prometheus" in datasource
    assert "url: ${PROMETHEUS_URL}" in datasource


# -- against a real Prometheus ---------------------------------------------------------


@dataclass
class Gateway:
    process: asyncio.subprocess.Process
    port: int
    metrics_port: int
    data_dir: Path
    log: Path
    database_url: str
    token: str

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def multiproc_dir(self) -> Path:
        return self.data_dir / MULTIPROC_DIR_NAME

    def worker_pids(self) -> set[int]:
        return {
            int(m[1])
            for p in self.multiproc_dir.glob("counter_*.db")
            if (m := re.match(r"counter_(\d+)\.db", p.name))
        }

    def serving_pids(self) -> set[int]:
        """Workers whose own metrics file counts a SCIM request."""
        serving = set()
        for path in self.multiproc_dir.glob("counter_*.db"):
            values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
            for key, value, _, _ in values:
                if '"scim_http_requests_total"' in key and '"app": "scim"' in key and value:
                    serving.add(int(path.stem.removeprefix("counter_")))
                    break
        return serving


async def wait_for(what: str, check: Any, within: float = 40.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
        except (aiohttp.ClientError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


@pytest.fixture
async def gateway(pg_server_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    url, _, token = await database_with_org(pg_server_url)
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gw = Gateway(process, port, metrics_port, tmp_path / "var", log, url, token)
    try:
        yield gw
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 45)
            except TimeoutError:
                process.kill()
                await process.wait()
        await drop_database(pg_server_url, url)


@pytest.fixture
def prometheus(tmp_path: Path, gateway: Gateway) -> Iterator[str]:
    binary = require("prometheus", "prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    # JSON is YAML: no YAML library needed to write Prometheus' configuration.
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "scim-gateway",
                        "static_configs": [{"targets": [f"127.0.0.1:{gateway.metrics_port}"]}],
                    }
                ],
            }
        )
    )
    with (tmp_path / "prometheus.log").open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def query(session: aiohttp.ClientSession, prometheus: str, expr: str) -> list[Any]:
    async with session.get(f"{prometheus}/api/v1/query", params={"query": expr}) as resp:
        body = await resp.json()
    assert body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


async def scrape(session: aiohttp.ClientSession, gateway: Gateway) -> str:
    async with session.get(f"http://127.0.0.1:{gateway.metrics_port}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def log_counts(url: str) -> dict[tuple[str, str], float]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT event, outcome, count(*) AS n FROM provisioning_log GROUP BY event, outcome"
        )
    finally:
        await conn.close()
    return {(r["event"], r["outcome"]): float(r["n"]) for r in rows}


async def test_every_panel_query_returns_data_from_two_workers(
    gateway: Gateway, prometheus: str
) -> None:
    promtool = require("promtool", "prometheus")
    async with aiohttp.ClientSession() as session:

        async def both_workers_up() -> bool:
            async with session.get(f"{gateway.origin}/healthz") as resp:
                return resp.status == 200 and len(gateway.worker_pids()) == 2

        await wait_for("two workers", both_workers_up)

        async def prometheus_scrapes() -> bool:
            return bool(await query(session, prometheus, 'up{job="scim-gateway"} == 1'))

        await wait_for("Prometheus to scrape the gateway", prometheus_scrapes)

        async with aiohttp.ClientSession(
            base_url=gateway.origin, connector=aiohttp.TCPConnector(limit=8, force_close=True)
        ) as okta:
            result = await first_sync(
                okta, DEFAULT_SCIM_BASE_PATH, gateway.token, users=40, connections=8
            )
        assert gateway.serving_pids() == gateway.worker_pids()

        # Counts summed over both processes equal the log's own.
        logged = await log_counts(gateway.database_url)
        metrics = Scrape(await scrape(session, gateway))
        assert metrics.by("scim_provisioning_events_total", "event", "outcome") == logged
        scim_requests = metrics.value("scim_http_requests_total") - metrics.value(
            "scim_http_requests_total", route="/healthz"
        )
        assert scim_requests == result.requests

        async def prometheus_has_everything() -> bool:
            found = await query(session, prometheus, "sum(scim_provisioning_events_total)")
            return bool(found) and float(found[0]["value"][1]) == sum(logged.values())

        await wait_for("Prometheus to see every log row", prometheus_has_everything)
        await asyncio.sleep(2.5)  # a few more scrapes, so every rate() has two samples

        empty = []
        for title, ref_id, expr in panel_queries(load_dashboard()):
            if not await query(session, prometheus, expr):
                empty.append(f"{title} [{ref_id}]: {expr}")
        assert not empty, "panel queries without data:\n" + "\n".join(empty)

        async with session.get(f"{prometheus}/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) == 9
        assert {rule["health"] for rule in rules} == {"ok"}

        text = await scrape(session, gateway)
        check = await asyncio.create_subprocess_exec(
            promtool,
            "check",
            "metrics",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await check.communicate(text.encode())
        assert check.returncode == 0, output
        assert not output.strip(), output

        # A worker dies: it is replaced, its live gauges go, its counts stay.
        dead = min(gateway.worker_pids())
        os.kill(dead, signal.SIGKILL)

        async def replaced() -> bool:
            pids = gateway.worker_pids()
            return len(pids) == 3 and not list(gateway.multiproc_dir.glob(f"gauge_live*_{dead}.db"))

        await wait_for("the dead worker to be replaced", replaced)
        after = Scrape(await scrape(session, gateway))
        assert after.by("scim_provisioning_events_total", "event", "outcome") == logged

        async def all_ready() -> bool:
            # A starting worker reports not ready until its pool answers.
            return Scrape(await scrape(session, gateway)).value("scim_ready") == 1

        await wait_for("the new worker to be ready", all_ready)

    # Graceful shutdown of every worker; the multiprocess directory goes with them.
    gateway.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(gateway.process.wait(), 45) == 0
    assert not gateway.multiproc_dir.exists()
