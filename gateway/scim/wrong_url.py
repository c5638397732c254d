"""Say what is wrong with a URL that missed every SCIM route, and what to paste instead."""

from __future__ import annotations

import re

from gateway.settings import Settings

RESOURCE_SEGMENTS = ("Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas")
_RESOURCE = re.compile(r"/(" + "|".join(RESOURCE_SEGMENTS) + r")(?=/|$)", re.IGNORECASE)


def diagnose_wrong_url(path: str, settings: Settings) -> str:
    base = settings.scim_base_path
    advice = (
        f"The SCIM connector base URL to paste into Okta is {settings.scim_base_url} "
        "(no trailing slash); Okta adds /Users and /Groups itself."
    )
    problem = _problem(path, base)
    return f"No SCIM endpoint at {path}: {problem}. {advice}"


def _problem(path: str, base: str) -> str:
    if path.startswith(base + "/") or path == base:
        rest = path[len(base) :]
        if rest in ("", "/"):
            return "this is the base URL itself, not an endpoint"
        if rest.startswith("//"):
            return "the base URL configured in Okta ends with a slash, so requests arrive with '//'"
        if _RESOURCE.search(rest[1:]) and _repeats_base(rest, base):
            return "the path repeats the base path, so the base URL in Okta probably already ends in it"
        if rest.endswith("/"):
            return "the path ends with a slash"
        first = rest.split("/")[1]
        for name in RESOURCE_SEGMENTS:
            if first.lower() == name.lower() and first != name:
                return f"resource names are case-sensitive: use /{name}, not /{first}"
        return f"there is no SCIM resource named {first!r} (endpoints: /{', /'.join(RESOURCE_SEGMENTS)})"
    match = _RESOURCE.search(path)
    if match is None:
        return f"the path is not under the SCIM base path {base}"
    prefix = path[: match.start()]
    if prefix.rstrip("/") == base:
        return "the path has a doubled slash before the resource name"
    base_parts = base.strip("/").split("/")
    prefix_parts = [p for p in prefix.strip("/").split("/") if p]
    if prefix_parts and base_parts[-1] not in prefix_parts and prefix_parts == base_parts[:-1]:
        return f"the version segment /{base_parts[-1]} is missing from the base URL"
    if prefix_parts and base.endswith("/" + "/".join(prefix_parts)):
        return f"the base URL is missing the leading {base[: -len('/'.join(prefix_parts)) - 1]}"
    return f"requests went to {prefix or '/'} instead of the SCIM base path {base}"


def _repeats_base(rest: str, base: str) -> bool:
    tail = "/" + base.strip("/").split("/")[-1] + "/"
    return (rest + "/").startswith(tail) or base in rest or rest.startswith("/scim/")
