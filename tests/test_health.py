"""Health, readiness and metrics endpoints."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken

Client = TestClient[web.Request, web.Application]


async def test_healthz_and_readyz(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"


async def test_metrics_count_requests_and_auth_failures_without_secrets(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    await client.get(f"{base}/ServiceProviderConfig", headers=acme.headers)
    await client.get(
        f"{base}/ServiceProviderConfig", headers={"Authorization": f"Bearer {acme.token[:-3]}"}
    )
    text = await (await client.get("/metrics")).text()
    assert (
        'scim_requests_total{method="GET",route="/api/sch/scim/v2/ServiceProviderConfig",status="200"} 1.0'
        in text
    )
    assert 'scim_auth_failures_total{reason="truncated"} 1.0' in text
    assert 'scim_auth_failures_total{reason="revoked"} 0.0' in text
    assert 'scim_provisioning_events_total{event="Discovery",outcome="success"} 1.0' in text
    assert (
        'scim_provisioning_events_total{event="Authentication failed",outcome="failure"} 1.0'
        in text
    )
    assert 'scim_provisioning_events_total{event="Create user",outcome="failure"} 0.0' in text
    assert acme.token[8:20] not in text
