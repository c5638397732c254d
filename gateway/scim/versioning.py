"""ETags (RFC 7644 §3.14): `meta.version` is a weak ETag that changes on every change."""

from __future__ import annotations

from aiohttp import web

from gateway.scim.errors import ScimError


def etag(version: int) -> str:
    return f'W/"{version}"'


def _tags(header: str) -> set[str]:
    tags = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.add(tag.strip().strip('"'))
    return tags


def check_if_match(request: web.Request, version: int) -> None:
    """412 unless `If-Match` (when sent) names the current version."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = _tags(header)
    if "*" in tags or str(version) in tags:
        return
    raise ScimError(
        412,
        f"The resource changed since it was read: it is now at version {etag(version)}, "
        f"the request's If-Match was {header}. GET it again and retry.",
    )


def not_modified(request: web.Request, version: int) -> bool:
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = _tags(header)
    return "*" in tags or str(version) in tags
