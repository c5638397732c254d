"""The SCIM sub-application, mounted at `SCIM_BASE_PATH`."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.scim.auth import auth_middleware
from gateway.scim.capacity import capacity_middleware
from gateway.scim.context import connection_retry_middleware
from gateway.scim.discovery import add_discovery_routes
from gateway.scim.errors import scim_error_middleware
from gateway.scim.groups import add_group_routes
from gateway.scim.requestlog import request_log_middleware
from gateway.scim.search import search_all
from gateway.scim.users import add_user_routes

# Outermost first: the log sees the final response; errors are rendered before it
# sees them; capacity (rate, body, pool share) is checked before authentication
# takes a connection; a dead pooled connection is replaced before it becomes an
# error; authentication failures are errors like any other.
SCIM_MIDDLEWARES = (
    request_log_middleware,
    scim_error_middleware,
    capacity_middleware,
    connection_retry_middleware,
    auth_middleware,
)


def create_scim_app() -> web.Application:
    app = web.Application(middlewares=SCIM_MIDDLEWARES)
    add_discovery_routes(app)
    add_user_routes(app)
    add_group_routes(app)
    # RFC 7644 §3.4.3: a search across every resource type.
    app.router.add_post("/.search", search_all)
    return app


async def serve_unmatched(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve a request that missed every route of the whole app as a SCIM 404.

    Such requests are usually a mistyped base URL in Okta, so they get the same
    log row, base-URL help and (when the token is valid) org attribution as a
    request under the base path.
    """
    chained = handler
    for middleware in reversed(SCIM_MIDDLEWARES):
        chained = _bind(middleware, chained)
    return await chained(request)


def _bind(middleware: Middleware, handler: Handler) -> Handler:
    async def bound(request: web.Request) -> web.StreamResponse:
        return await middleware(request, handler)

    return bound
