"""`admins create|list|disable`, run as a user runs them: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest
from argon2 import PasswordHasher

from tests.conftest import OrgWithToken
from tests.test_cli import ROOT, clean_env, run


def create_admin(
    env: dict[str, str], email: str, password: str = "a long enough password"
) -> subprocess.CompletedProcess[str]:
    """`admins create --org acme`, the password on stdin as a script would pipe it."""
    return run_with_stdin(
        env, password + "\n", "admins", "create", "--org", "acme", "--email", email
    )


def run_with_stdin(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(database_url: str, db: asyncpg.Connection) -> dict[str, str]:
    return clean_env(DATABASE_URL=database_url)


async def test_admins_create_list_disable(
    env: dict[str, str], db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    created = create_admin(env, "Ada@Acme.example")
    assert created.returncode == 0, created.stderr
    assert "created admin Ada@Acme.example of acme" in created.stdout
    stored = await db.fetchval("SELECT password_hash FROM dashboard_admins")
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, "a long enough password")

    again = create_admin(env, "ada@acme.example")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = create_admin(env, "b@acme.example", "short")
    assert short.returncode == 1
    assert "at least 12" in short.stderr

    listed = run(env, "admins", "list").stdout
    assert "acme" in listed
    assert "Ada@Acme.example" in listed
    disabled = run(env, "admins", "disable", "ADA@acme.example")
    assert "disabled admin Ada@Acme.example" in disabled.stdout
    assert await db.fetchval("SELECT disabled_at IS NOT NULL FROM dashboard_admins")
