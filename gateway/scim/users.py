"""/Users (RFC 7644 §3), shaped by what Okta (OIN and AIW apps) and Entra send."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from scim2_models.path import CompareOperator

from gateway.appkeys import LOG_ENTRY, SETTINGS
from gateway.dbtypes import Connection
from gateway.provlog.events import Target
from gateway.scim.body import off_loop, off_loop_if, read_json_object
from gateway.scim.context import ChangeRow, ReadRows, logged_change, request_conn, request_org
from gateway.scim.errors import SCIM_MEDIA_TYPE, ScimError, scim_response
from gateway.scim.filters import (
    Column,
    FilterTarget,
    Membership,
    Params,
    simple_equality,
)
from gateway.scim.listing import (
    ListQuery,
    base_url,
    build_query,
    count_page,
    iso,
    list_response,
    open_window,
    page_params,
    projection,
    search_query,
)
from gateway.scim.patch import Patcher, off_loop_patch, parse_operations
from gateway.scim.resource import USER_TYPE, Normalizer, fold, project
from gateway.scim.schema import ENTERPRISE_USER_SCHEMA, USER, USER_SCHEMA
from gateway.scim.versioning import check_if_match, etag, not_modified
from gateway.store import users as store
from gateway.store.users import UserRecord, UserWrite


def _email_index(attrs_ci: dict[str, Any]) -> list[str]:
    return sorted(
        {e["value"] for e in attrs_ci.get("emails", []) if isinstance(e.get("value"), str)}
    )


def _email_lookup(op: CompareOperator | None, value: Any, params: Params) -> str | None:
    """emails.value eq "x" (or emails eq "x") → the GIN index on folded email values."""
    if op is CompareOperator.eq and isinstance(value, str):
        return f"(u.emails_ci @> ARRAY[{params.add(value.casefold())}]::text[])"
    return None


_IN_GROUP = (
    "EXISTS (SELECT 1 FROM scim_group_members m "
    "JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id "
    "WHERE m.org_id = u.org_id AND m.user_id = u.id AND {cond})"
)


USER_FILTERS = FilterTarget(
    resource=USER_TYPE,
    json_root="u.attrs_ci",
    columns={
        "id": Column("u.id", "uuid"),
        "externalId": Column("u.external_id", "text"),
        "userName": Column("u.user_name_ci", "text"),
        "active": Column("u.active", "bool"),
        "meta.created": Column("u.created_at", "timestamptz"),
        "meta.lastModified": Column("u.updated_at", "timestamptz"),
        "meta.resourceType": Column("'User'::text", "text"),
        "meta.version": Column("('W/\"' || u.version || '\"')", "text"),
    },
    specials={
        # emails.value eq "x" → the GIN index on folded email values.
        "emails.value": _email_lookup,
        "emails": _email_lookup,
    },
    memberships={
        "groups": Membership(_IN_GROUP, "m.group_id", "g.display_name_ci", type_value="direct")
    },
)


def to_write(attrs: dict[str, Any]) -> UserWrite:
    attrs_ci = fold(attrs, USER_TYPE)
    return UserWrite(attrs=attrs, attrs_ci=attrs_ci, emails_ci=_email_index(attrs_ci))


def user_target(user_id: uuid.UUID, attrs: dict[str, Any]) -> Target:
    return Target("User", str(user_id), attrs.get("userName"), attrs.get("displayName"))


def render_user(record: UserRecord, base_url: str) -> dict[str, Any]:
    attrs = record.attrs
    doc: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
        if ENTERPRISE_USER_SCHEMA in attrs
        else [USER_SCHEMA],
        "id": str(record.id),
    }
    if "externalId" in attrs:
        doc["externalId"] = attrs["externalId"]
    for attr in USER.attributes:
        if attr.name in attrs and attr.name != "groups":
            doc[attr.name] = attrs[attr.name]
    if record.groups:
        doc["groups"] = [
            {
                "value": g["value"],
                "display": g["display"],
                "$ref": f"{base_url}/Groups/{g['value']}",
                "type": "direct",
            }
            for g in record.groups
        ]
    if ENTERPRISE_USER_SCHEMA in attrs:
        doc[ENTERPRISE_USER_SCHEMA] = attrs[ENTERPRISE_USER_SCHEMA]
    doc["meta"] = {
        "resourceType": "User",
        "created": iso(record.created_at),
        "lastModified": iso(record.updated_at),
        "location": f"{base_url}/Users/{record.id}",
        "version": etag(record.version),
    }
    return doc


def _user_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _not_found(raw) from None


def _not_found(raw: str) -> ScimError:
    return ScimError(
        404,
        f"User {raw} not found in this org. If Okta still links to it, unassign and reassign "
        "the user in Okta so it is created again.",
        code="user_not_found",
        args={"id": raw},
    )


def _user_response(
    request: web.Request, record: UserRecord, *, status: int = 200, query: ListQuery | None = None
) -> web.Response:
    base = base_url(request)
    body = render_user(record, base)
    query = query or projection(request)
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    return scim_response(
        project(body, USER_TYPE, query.attributes, query.excluded), status=status, headers=headers
    )


async def _conflict(request: web.Request, user_name: str) -> ScimError:
    existing = await store.find_user_by_user_name(
        await request_conn(request), request_org(request), user_name.casefold()
    )
    which = f" (id {existing[0]}, userName {existing[1]!r})" if existing else ""
    args: dict[str, Any] = {"user_name": user_name}
    if existing is not None:
        # The row is about the account that exists, which Okta should link.
        request[LOG_ENTRY].target = Target("User", str(existing[0]), existing[1])
        args |= {
            "existing_id": str(existing[0]),
            "existing_user_name": existing[1],
            "same_case": existing[1] == user_name,
        }
    return ScimError(
        409,
        f"userName {user_name!r} is already taken in this org by another user{which}; "
        "userName is unique case-insensitively. Link that user in Okta, or change the "
        "username format under Sign On → Application username format.",
        scim_type="uniqueness",
        code="duplicate_username",
        args=args,
    )


async def _external_id_conflict(request: web.Request, external_id: str) -> ScimError:
    existing = await store.find_user_by_external_id(
        await request_conn(request), request_org(request), external_id
    )
    which = f" (id {existing[0]}, userName {existing[1]!r})" if existing else ""
    args: dict[str, Any] = {"external_id": external_id}
    if existing is not None:
        request[LOG_ENTRY].target = Target("User", str(existing[0]), existing[1])
        args |= {"existing_id": str(existing[0]), "existing_user_name": existing[1]}
    return ScimError(
        409,
        f"externalId {external_id!r} is already used in this org by another user{which}; "
        "externalId is unique per org. In Okta, link the existing user (or unassign the "
        "duplicate) instead of creating a second one.",
        scim_type="uniqueness",
        code="duplicate_external_id",
        args=args,
    )


async def list_users(request: web.Request) -> web.Response:
    query = build_query(request.query)
    user_name_ci = _okta_lookup(request, query)
    if user_name_ci is not None:
        return await _look_up(request, user_name_ci)
    return await _find(request, query)


# The filter compiler's whole WHERE for `userName eq "…"`: the unique index's lookup.
_USER_NAME_EQUALS = "(u.user_name_ci = $5)"


def _okta_lookup(request: web.Request, query: ListQuery) -> str | None:
    """The folded userName if this is Okta's lookup before a create (a userName eq
    filter, the first page, every attribute), which has a one-statement path."""
    if not query.filter or query.start_index != 1 or query.count < 1:
        return None
    if query.attributes or query.excluded or query.sort_by:
        return None
    equality = simple_equality(query.filter)
    if equality is not None:
        name, value = equality
        return value.casefold() if name.casefold() == "username" else None
    params, where, _ = page_params(
        query, USER_FILTERS, [request_org(request), None, 0, query.count], "u.seq"
    )
    if where != _USER_NAME_EQUALS:
        return None
    value = params.values[4]
    return value if isinstance(value, str) else None


async def _look_up(request: web.Request, user_name_ci: str) -> web.Response:
    """The lookup and its log row in one statement; the response is rendered by it."""
    rows = ReadRows(request)
    nobody = scim_response(list_response([], 0, 1))
    assert isinstance(nobody.body, bytes)
    row_if_missing = rows.row(200, nobody.body, total=0)
    row_if_found = rows.row(200, None, total=1)
    settings = request.config_dict[SETTINGS]
    found = await store.look_up_user_name(
        await request_conn(request),
        request_org(request),
        user_name_ci,
        base_url=base_url(request),
        row_if_missing=row_if_missing,
        row_if_found=row_if_found,
        body_limit=settings.log_body_limit,
    )
    rows.written(found.recorded)
    if found.body is None:
        request[LOG_ENTRY].facts["total"] = 0
        return nobody
    return web.Response(body=found.body.encode(), content_type=SCIM_MEDIA_TYPE, charset="utf-8")


async def search_users(request: web.Request) -> web.Response:
    return await _find(request, search_query(await read_json_object(request)))


async def _find(request: web.Request, query: ListQuery) -> web.Response:
    total, resources = await find_resources(request, query)
    return scim_response(list_response(resources, total, query.start_index))


async def find_resources(
    request: web.Request, query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The total matching and one page of rendered Users."""
    org_id = request_org(request)
    window = open_window("User", query)
    params, where, order = page_params(
        query, USER_FILTERS, [org_id, window.walk, window.before, query.count], "u.seq"
    )
    page = await store.find_users(
        await request_conn(request), where=where, order=order, params=params.values
    )
    request[LOG_ENTRY].facts["total"] = page.total
    # A lookup that found one resource names it, when the page holds it (count=0
    # or a startIndex past it is a 200 with the total only, RFC 7644 §3.4.2.4).
    if query.filter and page.total == 1 and page.users:
        request[LOG_ENTRY].target = user_target(page.users[0].id, page.users[0].attrs)
    count_page(request, "User", query, page.by_keyset)
    base = base_url(request)
    return page.total, [
        project(render_user(u, base), USER_TYPE, query.attributes, query.excluded)
        for u in page.users
    ]


async def create_user(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    normalizer = Normalizer(USER_TYPE, request[LOG_ENTRY])
    # A new user is active unless the body says otherwise (Okta always says).
    user = await off_loop(request, lambda: to_write({"active": True, **normalizer.document(body)}))
    now = datetime.now(UTC)
    record = UserRecord(
        id=uuid.uuid4(), seq=0, attrs=user.attrs, version=1, created_at=now, updated_at=now
    )
    request[LOG_ENTRY].target = user_target(record.id, user.attrs)
    response = _user_response(request, record, status=201)
    async with logged_change(request) as change:
        try:
            await store.insert_user(
                await request_conn(request),
                request_org(request),
                record.id,
                user,
                now,
                change.row(response),
            )
        except store.UserNameTaken:
            raise await _conflict(request, user.attrs["userName"]) from None
        except store.ExternalIdTaken:
            raise await _external_id_conflict(request, user.attrs["externalId"]) from None
    return response


async def get_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    record = await store.get_user(await request_conn(request), request_org(request), user_id)
    if record is None:
        raise _not_found(str(user_id))
    request[LOG_ENTRY].target = user_target(record.id, record.attrs)
    if not_modified(request, record.version):
        return web.Response(status=304, headers={"ETag": etag(record.version)})
    return _user_response(request, record)


async def replace_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    body = await read_json_object(request)
    sent_id = body.get("id")
    if sent_id is not None and str(sent_id) != str(user_id):
        raise ScimError(
            400,
            f"The body's id {sent_id!r} differs from the URL's {user_id}; PUT cannot change a user's id.",
            scim_type="mutability",
        )
    normalizer = Normalizer(USER_TYPE, request[LOG_ENTRY])
    attrs = await off_loop(request, lambda: normalizer.document(body))

    def merge(current: UserRecord) -> dict[str, Any]:
        # An omitted `active` keeps the current state instead of silently (re)activating.
        if "active" not in attrs and "active" in current.attrs:
            return {**attrs, "active": current.attrs["active"]}
        return attrs

    return await _write(request, user_id, merge)


async def patch_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    operations = parse_operations(await read_json_object(request))
    normalizer = Normalizer(USER_TYPE, request[LOG_ENTRY])
    patcher = Patcher(USER_TYPE, normalizer, str(user_id))
    return await _write(
        request,
        user_id,
        lambda current: patcher.apply(current.attrs, operations),
        heavy=off_loop_patch(request, operations),
    )


async def _write(
    request: web.Request,
    user_id: uuid.UUID,
    change: Callable[[UserRecord], dict[str, Any]],
    *,
    heavy: bool = False,
) -> web.Response:
    """Read, change (on a worker thread when `heavy`), write back if nobody wrote in between.

    The first try is optimistic (two statements, no transaction). If another
    request changed the user in between, the retry locks the row, so a burst of
    concurrent PATCHes all land instead of starving each other.
    """
    conn = await request_conn(request)
    async with logged_change(request) as log:
        written = await _try_write(request, conn, user_id, change, log, lock=False, heavy=heavy)
        if written is None:
            async with conn.transaction():
                written = await _try_write(
                    request, conn, user_id, change, log, lock=True, heavy=heavy
                )
    if written is None:  # pragma: no cover - the row lock rules this out
        raise ScimError(409, "The user was changed concurrently; retry this request.")
    return written


async def _try_write(
    request: web.Request,
    conn: Connection,
    user_id: uuid.UUID,
    change: Callable[[UserRecord], dict[str, Any]],
    log: ChangeRow,
    *,
    lock: bool,
    heavy: bool,
) -> web.Response | None:
    org_id = request_org(request)
    current = await store.get_user(conn, org_id, user_id, for_update=lock)
    if current is None:
        raise _not_found(str(user_id))
    entry = request[LOG_ENTRY]
    entry.target = user_target(user_id, current.attrs)
    check_if_match(request, current.version)
    user = await off_loop_if(heavy, lambda: to_write(change(current)))
    entry.target = user_target(user_id, user.attrs)
    was, now_active = current.attrs.get("active"), user.attrs.get("active")
    if was is not False and now_active is False:
        entry.facts["active_change"] = "deactivated"
    elif was is False and now_active is True:
        entry.facts["active_change"] = "reactivated"
    if user.attrs == current.attrs:
        entry.note("unchanged", "no change: the request matched the stored user")
        return _user_response(request, current)
    now = datetime.now(UTC)
    record = UserRecord(
        id=user_id,
        seq=current.seq,
        attrs=user.attrs,
        version=current.version + 1,
        created_at=current.created_at,
        updated_at=now,
        groups=current.groups,
    )
    response = _user_response(request, record)
    try:
        written = await store.update_user(
            conn,
            org_id,
            user_id,
            user,
            now=now,
            expected_version=current.version,
            log=log.row(response),
        )
    except store.UserNameTaken:
        raise await _conflict(request, user.attrs["userName"]) from None
    except store.ExternalIdTaken:
        raise await _external_id_conflict(request, user.attrs["externalId"]) from None
    if not written:
        return None
    return response


async def delete_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    conn = await request_conn(request)
    org_id = request_org(request)
    expected = None
    if request.headers.get("If-Match") is not None:
        current = await store.get_user(conn, org_id, user_id)
        if current is None:
            raise _not_found(str(user_id))
        check_if_match(request, current.version)
        expected = current.version
    response = web.Response(status=204)
    async with logged_change(request) as change:
        if not await store.delete_user(
            conn, org_id, user_id, expected_version=expected, log=change.row(response)
        ):
            if expected is not None:
                raise ScimError(
                    412, "The user changed while it was being deleted; GET it again and retry."
                )
            raise _not_found(str(user_id))
    return response


def add_user_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/Users", list_users, allow_head=False)
    router.add_post("/Users", create_user)
    router.add_post("/Users/.search", search_users)
    router.add_get("/Users/{id}", get_user, allow_head=False)
    router.add_put("/Users/{id}", replace_user)
    router.add_patch("/Users/{id}", patch_user)
    router.add_delete("/Users/{id}", delete_user)
