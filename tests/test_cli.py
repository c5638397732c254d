"""The command line, run as a user runs it: in a subprocess, against a real database."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from gateway.tokens import PREFIX, TOKEN_LENGTH
from tests.served import free_port

ROOT = Path(__file__).resolve().parent.parent


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}: {result.stderr}")
    return result


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(extra)
    return env


@pytest.fixture
def cli_env(database_url: str, db: asyncpg.Connection) -> dict[str, str]:
    return clean_env(DATABASE_URL=database_url)


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)  # noqa: S310 (a loopback URL built by the test)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"serve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("serve did not come up in 60 s")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_every_command_has_help() -> None:
    env = clean_env()
    for args in (
        [],
        ["serve"],
        ["migrate"],
        ["orgs"],
        ["orgs", "create"],
        ["orgs", "list"],
        ["tokens"],
        ["tokens", "create"],
        ["tokens", "list"],
        ["tokens", "revoke"],
        ["admins"],
        ["admins", "create"],
    ):
        result = run(env, *args, "--help")
        assert result.stdout.startswith("usage: scim-gateway"), args


def test_orgs_and_token_lifecycle(cli_env: dict[str, str]) -> None:
    assert "created org acme" in run(cli_env, "orgs", "create", "acme", "--name", "Acme Inc").stdout
    assert run(cli_env, "orgs", "create", "acme", check=False).returncode == 1
    assert "must be" in run(cli_env, "orgs", "create", "Not A Slug", check=False).stderr
    created = run(
        cli_env, "tokens", "create", "--org", "acme", "--note", "okta prod", "--expires-days", "90"
    )
    token = created.stdout.strip()
    assert created.stdout == token + "\n"  # only the token on stdout
    assert token.startswith(PREFIX)
    assert len(token) == TOKEN_LENGTH
    assert "shown only once" in created.stderr
    listing = run(cli_env, "tokens", "list", "--org", "acme").stdout
    assert token not in listing
    assert f"{PREFIX}…{token[-4:]}" in listing
    assert "okta prod" in listing
    token_id = re.search(r"^([0-9a-f-]{36})", listing.splitlines()[1])
    assert token_id is not None
    orgs = run(cli_env, "orgs", "list").stdout
    assert re.search(r"acme\s+Acme Inc\s+\S+\s+\S+ \S+\s+1$", orgs, re.MULTILINE), orgs
    revoked = run(cli_env, "tokens", "revoke", token_id[1])
    assert "revoked token" in revoked.stdout
    # Named by its id and last 4 characters only: the token itself is never printed.
    assert f"{PREFIX}…{token[-4:]}" in revoked.stdout
    assert token not in revoked.stdout + revoked.stderr
    assert run(cli_env, "orgs", "list").stdout.splitlines()[1].split()[-1] == "0"
    assert run(cli_env, "tokens", "revoke", "not-an-id", check=False).returncode == 1
    missing = run(cli_env, "tokens", "create", "--org", "nobody", check=False)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "orgs create nobody" in missing.stderr


def test_tokens_expire_after_a_year_unless_told_and_an_org_holds_two(
    cli_env: dict[str, str],
) -> None:
    run(cli_env, "orgs", "create", "acme")
    too_long = run(
        cli_env, "tokens", "create", "--org", "acme", "--expires-days", "731", check=False
    )
    assert too_long.returncode == 1
    assert "--no-expiry" in too_long.stderr
    yearly = run(cli_env, "tokens", "create", "--org", "acme")
    assert "expires" in yearly.stderr
    forever = run(cli_env, "tokens", "create", "--org", "acme", "--no-expiry")
    assert "never expires" in forever.stderr
    rows = [
        re.split(r"\s{2,}", line)
        for line in run(cli_env, "tokens", "list", "--org", "acme").stdout.splitlines()[1:]
    ]
    created, expires = (datetime.fromisoformat(rows[0][i].replace("Z", "+00:00")) for i in (2, 4))
    assert (expires - created).days == 365
    assert rows[1][4] == "-"
    third = run(cli_env, "tokens", "create", "--org", "acme", "--expires-days", "30", check=False)
    assert third.returncode == 1
    assert third.stdout == ""
    assert "already has 2 active tokens" in third.stderr
    assert "tokens revoke" in third.stderr
    token_id = re.search(
        r"^([0-9a-f-]{36})", run(cli_env, "tokens", "list", "--org", "acme").stdout.splitlines()[1]
    )
    assert token_id is not None
    run(cli_env, "tokens", "revoke", token_id[1])
    assert (
        run(cli_env, "tokens", "create", "--org", "acme", "--expires-days", "730").returncode == 0
    )


def test_serve_refuses_an_unmigrated_database(fresh_database_url: str) -> None:
    result = run(
        clean_env(DATABASE_URL=fresh_database_url), "serve", "--port", str(free_port()), check=False
    )
    assert result.returncode == 1
    assert "gateway migrate" in result.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="gateway-cli-"))
    tmp.chmod(0o755)  # as root, the embedded server runs as a user of its own
    yield tmp / "var"
    shutil.rmtree(tmp, ignore_errors=True)


def test_readme_walkthrough_on_the_embedded_database(data_dir: Path) -> None:
    """It runs the README's steps with DATABASE_URL unset; the data survives a restart."""
    env = clean_env(GATEWAY_DATA_DIR=str(data_dir))
    run(env, "migrate")
    run(env, "orgs", "create", "acme")
    token = run(env, "tokens", "create", "--org", "acme").stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/sch/scim/v2"
    for attempt in range(2):  # the second start proves the data survived the first stop
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until_up(port, proc)
            status, body = http_get(f"{base}/ServiceProviderConfig", token)
            assert status == 200, body
            assert b"ServiceProviderConfig" in body
            assert http_get(f"{base}/ServiceProviderConfig")[0] == 401
            assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        finally:
            err = stop(proc)
        assert f"SCIM base URL (paste into Okta): {base}" in err, attempt
        assert token not in err
    assert (data_dir / "pgdata" / "PG_VERSION").exists()


def test_logs_and_jobs(cli_env: dict[str, str], database_url: str) -> None:
    import asyncio
    import json as jsonlib

    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app
    from gateway.settings import Settings
    from tests.payloads import dumps, okta_create_user

    run(cli_env, "orgs", "create", "acme")
    token = run(cli_env, "tokens", "create", "--org", "acme").stdout.strip()

    async def okta() -> None:
        app = create_app(Settings(database_url=database_url, public_base_url="https://x.example"))
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
            await client.get("/api/sch/scim/v2/Users?startIndex=1&count=2", headers=headers)
            body = okta_create_user("no.family@example.com")
            del body["name"]["familyName"]
            await client.post("/api/sch/scim/v2/Users", headers=headers, data=dumps(body))
            await client.post(
                "/api/sch/scim/v2/Users", headers=headers, data=dumps(okta_create_user())
            )

    asyncio.run(okta())
    lines = run(cli_env, "logs", "--org", "acme", "--json").stdout.splitlines()
    records = [jsonlib.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["Create user", "Create user", "Test API credentials"]
    assert set(records[0]) == {
        "time",
        "event",
        "event_detail",
        "outcome",
        "code",
        "code_args",
        "unresolved",
        "status",
        "method",
        "path",
        "target",
        "reason",
        "guidance",
        "request_id",
        "job",
    }
    failure = records[1]
    assert (failure["code"], failure["code_args"]) == (
        "missing_attribute",
        {"attribute": "name.familyName"},
    )
    assert failure["unresolved"] is True
    assert (failure["outcome"], failure["status"]) == ("failure", 400)
    assert failure["reason"].startswith(
        "Bad Request. Errors reported by remote server: Attribute 'name.familyName'"
    )
    assert failure["target"]["name"] == "no.family@example.com"
    assert failure["guidance"]["key"] == "missing_attribute"
    assert len({r["job"] for r in records}) == 1
    only_failures = run(
        cli_env, "logs", "--org", "acme", "--since", "1h", "--outcome", "failure"
    ).stdout
    assert "Create user" in only_failures
    assert "Test API credentials" not in only_failures
    assert "fix first" in only_failures
    assert "name.familyName" in only_failures
    by_event = run(
        cli_env, "logs", "--org", "acme", "--event", "test api credentials", "--json"
    ).stdout
    assert len(by_event.splitlines()) == 1
    assert (
        run(cli_env, "logs", "--org", "acme", "--since", "yesterday", check=False).returncode == 1
    )
    assert run(cli_env, "logs", "--org", "acme", "--event", "Nope", check=False).returncode == 1
    jobs = [
        jsonlib.loads(line)
        for line in run(cli_env, "jobs", "--org", "acme", "--json").stdout.splitlines()
    ]
    assert len(jobs) == 1
    assert jobs[0]["first_sync"] is True
    assert (jobs[0]["requests"], jobs[0]["success"], jobs[0]["failure"]) == (3, 2, 1)
    assert jobs[0]["events"]["Create user"] == {"failure": 1, "success": 1}
    assert jobs[0]["state"] == "running"
    assert (jobs[0]["users"], jobs[0]["resolved"], jobs[0]["unresolved"]) == (2, 0, 1)
    table = run(cli_env, "jobs", "--org", "acme").stdout
    assert "first sync" in table
    assert "running" in table
    by_code = run(cli_env, "logs", "--org", "acme", "--code", "missing_attribute", "--json").stdout
    assert [jsonlib.loads(line)["target"]["name"] for line in by_code.splitlines()] == [
        "no.family@example.com"
    ]
    unresolved = run(cli_env, "logs", "--org", "acme", "--unresolved", "--json").stdout
    assert len(unresolved.splitlines()) == 1
    by_target = run(
        cli_env, "logs", "--org", "acme", "--target", "NO.FAMILY@example.com", "--json"
    ).stdout
    assert len(by_target.splitlines()) == 1
    assert run(cli_env, "logs", "--org", "acme", "--code", "nope", check=False).returncode == 1
    assert run(cli_env, "logs", "--unattributed", "--json").returncode == 0
