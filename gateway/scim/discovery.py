"""Discovery (RFC 7644 §4): what this server supports, described truthfully.

Everything here is built from `SERVICE_PROVIDER`, `RESOURCE_TYPES` and the schema
definitions that also drive validation; a feature is advertised in the same commit
that implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.appkeys import SETTINGS
from gateway.scim.errors import ScimError, scim_response
from gateway.scim.listing import MAX_RESULTS
from gateway.scim.resource import GROUP_TYPE, USER_TYPE, ResourceType
from gateway.scim.schema import Schema

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


@dataclass(frozen=True)
class ServiceProvider:
    patch: bool
    filter: bool
    max_results: int
    sort: bool
    etag: bool


SERVICE_PROVIDER = ServiceProvider(
    patch=True, filter=True, max_results=MAX_RESULTS, sort=True, etag=True
)
RESOURCE_TYPES: tuple[ResourceType, ...] = (USER_TYPE, GROUP_TYPE)


def _all_schemas() -> list[Schema]:
    seen: dict[str, Schema] = {}
    for resource in RESOURCE_TYPES:
        for schema in (resource.core, *resource.extensions):
            seen.setdefault(schema.id, schema)
    return list(seen.values())


def _base(request: web.Request) -> str:
    return request.config_dict[SETTINGS].scim_base_url


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def service_provider_config(base_url: str) -> dict[str, Any]:
    sp = SERVICE_PROVIDER
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": sp.patch},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": sp.filter, "maxResults": sp.max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": sp.sort},
        "etag": {"supported": sp.etag},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": (
                    "A SCIM token from Settings → SCIM, sent as 'Authorization: Bearer <token>' "
                    "or as the raw token (Okta's HTTP Header mode)."
                ),
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_type(spec: ResourceType, base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": spec.name,
        "name": spec.name,
        "endpoint": spec.endpoint,
        "description": spec.description,
        "schema": spec.core.id,
    }
    if spec.extensions:
        body["schemaExtensions"] = [
            {"schema": ext.id, "required": False} for ext in spec.extensions
        ]
    body["meta"] = {
        "resourceType": "ResourceType",
        "location": f"{base_url}/ResourceTypes/{spec.name}",
    }
    return body


def schema_document(schema: Schema, base_url: str) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA_SCHEMA],
        **schema.to_document(),
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{schema.id}"},
    }


async def get_service_provider_config(request: web.Request) -> web.Response:
    return scim_response(service_provider_config(_base(request)))


async def list_resource_types(request: web.Request) -> web.Response:
    base = _base(request)
    return scim_response(_list([resource_type(spec, base) for spec in RESOURCE_TYPES]))


async def get_resource_type(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    for spec in RESOURCE_TYPES:
        if spec.name == name:
            return scim_response(resource_type(spec, _base(request)))
    known = ", ".join(spec.name for spec in RESOURCE_TYPES) or "none yet"
    raise ScimError(404, f"No resource type named {name!r}; this server serves: {known}.")


async def list_schemas(request: web.Request) -> web.Response:
    base = _base(request)
    return scim_response(_list([schema_document(s, base) for s in _all_schemas()]))


async def get_schema(request: web.Request) -> web.Response:
    urn = request.match_info["urn"]
    for schema in _all_schemas():
        if schema.id == urn:
            return scim_response(schema_document(schema, _base(request)))
    raise ScimError(404, f"No schema {urn!r} is served here; GET /Schemas lists them all.")


def add_discovery_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/ServiceProviderConfig", get_service_provider_config, allow_head=False)
    router.add_get("/ResourceTypes", list_resource_types, allow_head=False)
    router.add_get("/ResourceTypes/{name}", get_resource_type, allow_head=False)
    router.add_get("/Schemas", list_schemas, allow_head=False)
    router.add_get("/Schemas/{urn}", get_schema, allow_head=False)
