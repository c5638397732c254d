"""Discovery documents (RFC 7644 §4, RFC 7643 §5-7)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import PUBLIC_BASE_URL, OrgWithToken

Client = TestClient[web.Request, web.Application]
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


async def test_service_provider_config_has_the_rfc_fields(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    resp = await client.get(f"{base}/ServiceProviderConfig", headers=acme.headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/scim+json; charset=utf-8"
    body = await resp.json(content_type=None)
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    for feature in ("patch", "bulk", "filter", "changePassword", "sort", "etag"):
        assert isinstance(body[feature]["supported"], bool), feature
    assert isinstance(body["bulk"]["maxOperations"], int)
    assert isinstance(body["filter"]["maxResults"], int)
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert body["meta"]["location"] == f"{PUBLIC_BASE_URL}{base}/ServiceProviderConfig"


async def test_resource_types_and_schemas_are_list_responses(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    for path in ("ResourceTypes", "Schemas"):
        resp = await client.get(f"{base}/{path}", headers=acme.headers)
        assert resp.status == 200
        body = await resp.json(content_type=None)
        assert body["schemas"] == [LIST]
        assert isinstance(body["totalResults"], int)
        assert body["totalResults"] == len(body["Resources"])
        for resource in body["Resources"]:
            assert resource["id"]
            assert resource["meta"]["location"].startswith(PUBLIC_BASE_URL)
            single = await client.get(f"{base}/{path}/{resource['id']}", headers=acme.headers)
            assert single.status == 200
            assert (await single.json(content_type=None))["id"] == resource["id"]


@pytest.mark.parametrize("path", ["ResourceTypes/Nope", "Schemas/urn:nope"])
async def test_unknown_discovery_items_are_scim_404s(
    client: Client, base: str, acme: OrgWithToken, path: str
) -> None:
    resp = await client.get(f"{base}/{path}", headers=acme.headers)
    assert resp.status == 404
    body = await resp.json(content_type=None)
    assert body["status"] == "404"
    assert body["detail"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["ServiceProviderConfig", "ResourceTypes", "Schemas"])
async def test_writes_on_discovery_are_405(
    client: Client, base: str, acme: OrgWithToken, method: str, path: str
) -> None:
    resp = await client.request(method, f"{base}/{path}", headers=acme.headers, json={})
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    body = await resp.json(content_type=None)
    assert body["status"] == "405"
    assert method in body["detail"]
