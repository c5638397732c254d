"""The gateway against the stack's ceiling: ../shared/bench/proto_scim.py, same run.

Both serve from one process on one PostgreSQL, each in its own database seeded
with the same number of users; wrk drives both with the same requests, in
interleaved rounds (the machine's noise falls on both). Printed: req/s, p50 and
p99 per server, and the gateway's ratio to the prototype. Without the prototype
(or without wrk) the gateway's own figures are printed alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gateway.migrate import migrate
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.conftest import with_database
from tests.served import free_port

ROOT = Path(__file__).resolve().parents[2]
PROTOTYPE = ROOT.parent / "shared" / "bench"
WRK_SCRIPTS = Path(__file__).parent / "wrk"
SEED_SQL = (Path(__file__).parent / "seed.sql").read_text()


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Server:
    name: str
    base: str  # the URL of /Users without it
    lookup_args: tuple[str, ...]
    headers: tuple[str, ...]


def _wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback)
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f} s")


@contextmanager
def _serving(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        _wait_ready(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def wrk(
    url: str, script: str, connections: int, seconds: int, *args: str, headers: tuple[str, ...] = ()
) -> Run:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPTS / script)]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(
        [*command, url, "--", *args], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line[len("WRKJSON ") :])
    errors = sum(data[k] for k in data if k.startswith("err_"))
    return Run(
        requests_per_second=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


SPREAD_ORGS = 64


async def _gateway_database(url: str, users: int) -> tuple[str, list[str]]:
    """Migrate, make an org and its token, seed `users` users; return the token, and
    the tokens of SPREAD_ORGS more orgs (for creates spread over many orgs)."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        org = await org_store.create_org(conn, "ceiling")
        token, _ = await token_store.create_token(conn, org.id)
        step = 100_000
        for first in range(1, users + 1, step):
            await conn.execute(SEED_SQL, org.id, first, min(first + step - 1, users))
        spread = []
        for n in range(SPREAD_ORGS):
            other = await org_store.create_org(conn, f"spread-{n}")
            spread.append((await token_store.create_token(conn, other.id))[0])
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        return token, spread
    finally:
        await conn.close()


def _gateway_env(url: str, port: int, data_dir: str) -> dict[str, str]:
    # One worker, like the prototype; no admission limits in the way of a load test.
    return {
        **os.environ,
        "DATABASE_URL": url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_WORKERS": "1",
        "GATEWAY_DATA_DIR": data_dir,
        "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "SCIM_RATE_LIMIT_PER_SECOND": "1000000",
        "SCIM_RATE_LIMIT_BURST": "1000000",
        "ORG_POOL_SHARE_PERCENT": "100",
        "SCIM_MAX_QUEUED_REQUESTS": "10000",
    }


def _table(results: dict[tuple[str, str], list[Run]], have_ceiling: bool) -> None:
    print(
        f"{'workload':<26}{'server':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99/p50':>9}{'errors':>8}"
    )
    workloads = sorted(
        {w for w, _ in results}, key=list(dict.fromkeys(w for w, _ in results)).index
    )
    for workload in workloads:
        medians = {}
        for server in ("ceiling", "gateway"):
            runs = results.get((workload, server))
            if not runs:
                continue
            rps = statistics.median(r.requests_per_second for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            medians[server] = rps
            print(
                f"{workload:<26}{server:<10}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}"
                f"{p99 / p50 if p50 else 0:>9.1f}{sum(r.errors for r in runs):>8}"
            )
        if have_ceiling and "ceiling" in medians:
            print(
                f"{workload:<26}{'ratio':<10}{medians['gateway'] / medians['ceiling']:>9.2f}  (gateway / ceiling, target >= 0.5)"
            )


async def _create_databases(server_url: str, names: list[str]) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_databases(server_url: str, names: list[str]) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def bench_ceiling(server_url: str, users: int, rounds: int, seconds: int) -> None:
    if shutil.which("wrk") is None:
        print("ceiling: wrk is not installed (Debian package wrk); skipped")
        return
    have_ceiling = (PROTOTYPE / "proto_scim.py").exists()
    suffix = uuid.uuid4().hex[:8]
    names = {"gateway": f"gw_ceiling_{suffix}", "ceiling": f"proto_ceiling_{suffix}"}
    asyncio.run(_create_databases(server_url, list(names.values())))
    gateway_url = with_database(server_url, names["gateway"])
    proto_url = with_database(server_url, names["ceiling"])
    print(f"ceiling: seeding {users:,} users in each database…", flush=True)
    try:
        token, spread = asyncio.run(_gateway_database(gateway_url, users))
        tokens_file = Path(tempfile.mkdtemp(prefix="gw-ceiling-tokens-")) / "tokens"
        tokens_file.write_text("\n".join(spread) + "\n")
        if have_ceiling:
            subprocess.run(
                [
                    sys.executable,
                    str(PROTOTYPE / "schema.py"),
                    "--dsn",
                    proto_url,
                    "--users",
                    str(users),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        gateway_port, proto_port = free_port(), free_port()
        data_dir = tempfile.mkdtemp(prefix="gw-ceiling-")
        gateway = Server(
            "gateway",
            f"http://127.0.0.1:{gateway_port}/api/sch/scim/v2/Users",
            (str(users), "user%d@example.com", "1"),
            (f"Authorization: Bearer {token}",),
        )
        proto = Server(
            "ceiling",
            f"http://127.0.0.1:{proto_port}/Users",
            (str(users), "user%06d", "0"),
            (),
        )
        with (
            _serving(
                [sys.executable, "-m", "gateway", "serve", "--port", str(gateway_port)],
                _gateway_env(gateway_url, gateway_port, data_dir),
                f"http://127.0.0.1:{gateway_port}/healthz",
            ),
            _serving(
                [
                    sys.executable,
                    str(PROTOTYPE / "proto_scim.py"),
                    "--port",
                    str(proto_port),
                    "--dsn",
                    proto_url,
                    "--post-mode",
                    "cte",
                    "--log-reads",
                    "--pool",
                    "10",
                ],
                dict(os.environ),
                f"http://127.0.0.1:{proto_port}/Users",
            )
            if have_ceiling
            else _nothing(),
        ):
            servers = [proto, gateway] if have_ceiling else [gateway]
            for server in servers:  # warm both: pools, plans, caches
                wrk(
                    server.base,
                    "lookup_user.lua",
                    16,
                    2,
                    *server.lookup_args,
                    headers=server.headers,
                )
            results: dict[tuple[str, str], list[Run]] = {}
            for connections in (16, 64):
                for round_no in range(rounds):
                    order = servers if round_no % 2 == 0 else servers[::-1]
                    for server in order:
                        results.setdefault((f"POST /Users c{connections}", server.name), []).append(
                            wrk(
                                server.base,
                                "post_user.lua",
                                connections,
                                seconds,
                                f"{suffix}{connections}{round_no}",
                                headers=server.headers,
                            )
                        )
                        results.setdefault((f"GET lookup c{connections}", server.name), []).append(
                            wrk(
                                server.base,
                                "lookup_user.lua",
                                connections,
                                seconds,
                                *server.lookup_args,
                                headers=server.headers,
                            )
                        )
            # Creates in one org against creates spread over 64 orgs, both c64.
            for round_no in range(rounds):
                for spread_over, extra in (
                    ("1 org", ()),
                    (f"{SPREAD_ORGS} orgs", (str(tokens_file),)),
                ):
                    results.setdefault((f"POST c64 in {spread_over}", "gateway"), []).append(
                        wrk(
                            gateway.base,
                            "post_user.lua",
                            64,
                            seconds,
                            f"{suffix}s{round_no}{len(extra)}",
                            *extra,
                            headers=gateway.headers,
                        )
                    )
            print(
                f"\nceiling: {users:,} users, {rounds} interleaved rounds of {seconds} s, medians"
            )
            _table(results, have_ceiling)
            one = statistics.median(
                r.requests_per_second for r in results[("POST c64 in 1 org", "gateway")]
            )
            many = statistics.median(
                r.requests_per_second
                for r in results[(f"POST c64 in {SPREAD_ORGS} orgs", "gateway")]
            )
            print(
                f"creates in one org / spread over {SPREAD_ORGS} orgs: {one / many:.2f} "
                "(no queue on one row: >= 0.9)"
            )
    finally:
        asyncio.run(_drop_databases(server_url, list(names.values())))


@contextmanager
def _nothing() -> Iterator[None]:
    yield
