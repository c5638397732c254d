"""Dashboard fixtures: the real app on a loopback origin (plain cookies, as in local
development), admins with argon2id hashes, and a signed-in client."""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from dashboard.security import hash_password
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import admins as admin_store
from tests.conftest import OrgWithToken

PASSWORD = "correct horse battery"
Client = TestClient[web.Request, web.Application]

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token on the page"
    return match[1]


@pytest.fixture
def dashboard_settings(database_url: str) -> Settings:
    # No PUBLIC_BASE_URL: the origin is http://127.0.0.1:8080, local development.
    return Settings(database_url=database_url)


@pytest.fixture
async def dash(
    aiohttp_client: AiohttpClient, dashboard_settings: Settings, db: asyncpg.Connection
) -> Client:
    return await aiohttp_client(create_app(dashboard_settings))


async def add_admin(conn: asyncpg.Connection, org: OrgWithToken, email: str) -> None:
    await admin_store.create_admin(conn, org.org.id, email, await hash_password(PASSWORD))


async def sign_in(client: Client, email: str, password: str = PASSWORD) -> ClientResponse:
    page = await client.get("/dashboard/signin")
    token = csrf_of(await page.text())
    return await client.post(
        "/dashboard/signin",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
    )


@dataclass
class SignedIn:
    client: Client
    csrf: str


async def signed_in(client: Client, db: asyncpg.Connection, org: OrgWithToken) -> SignedIn:
    email = f"admin@{org.org.slug}.example"
    await add_admin(db, org, email)
    response = await sign_in(client, email)
    assert response.status == 303, await response.text()
    page = await client.get("/dashboard/settings/scim")
    assert page.status == 200
    return SignedIn(client, csrf_of(await page.text()))


@pytest.fixture
async def admin(dash: Client, db: asyncpg.Connection, acme: OrgWithToken) -> SignedIn:
    return await signed_in(dash, db, acme)
