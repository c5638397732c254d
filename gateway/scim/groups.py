"""/Groups (SecureCodingHub teams), for Okta Push Groups (OIN PATCH, AIW PUT) and Entra.

Membership lives one row per member. A PATCH is turned into a membership delta
(ids to add, to remove, or a set to replace with) and applied by set-based SQL
under the group's row lock, so changing one member of a 100,000-member team never
reads the other 99,999, and concurrent PATCHes apply in some serial order.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from scim2_models import InvalidPathException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Path,
    ValuePath,
)

from gateway.appkeys import LOG_ENTRY
from gateway.dbtypes import Connection
from gateway.provlog.events import Target
from gateway.scim.body import off_loop, off_loop_if, read_json_object
from gateway.scim.context import logged_change, request_conn, request_org
from gateway.scim.errors import ScimError, scim_response
from gateway.scim.filters import (
    Column,
    FilterTarget,
    Membership,
)
from gateway.scim.limits import MAX_INDEXED_STRING, MAX_MEMBERS
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
from gateway.scim.patch import (
    Operation,
    Patcher,
    invalid_path,
    off_loop_patch,
    parse_operations,
)
from gateway.scim.resource import GROUP_TYPE, Normalizer, check_text, fold, project
from gateway.scim.schema import GROUP_SCHEMA
from gateway.scim.versioning import check_if_match, etag, not_modified
from gateway.store import groups as store
from gateway.store.groups import GroupRecord, GroupWrite, Member, MemberParams

# Rendering a team of more members than this (documents, then JSON) would hold
# the event loop for milliseconds: it is done on a worker thread.
RENDER_OFF_LOOP_MEMBERS = 2000

# Okta's removal of one member: recognised without the path parser (a thousand of
# them in one PATCH would otherwise cost a parse each).
_REMOVE_ONE_MEMBER = re.compile(r'members\[value eq "([^"\\]*)"\]', re.IGNORECASE)

_HAS_MEMBER = (
    "EXISTS (SELECT 1 FROM scim_group_members m "
    "WHERE m.org_id = g.org_id AND m.group_id = g.id AND {cond})"
)


GROUP_FILTERS = FilterTarget(
    resource=GROUP_TYPE,
    json_root="g.attrs_ci",
    columns={
        "id": Column("g.id", "uuid"),
        "externalId": Column("g.external_id", "text"),
        "displayName": Column("g.display_name_ci", "text"),
        "meta.created": Column("g.created_at", "timestamptz"),
        "meta.lastModified": Column("g.updated_at", "timestamptz"),
        "meta.resourceType": Column("'Group'::text", "text"),
        "meta.version": Column("('W/\"' || g.version || '\"')", "text"),
    },
    memberships={
        "members": Membership(_HAS_MEMBER, "m.user_id", "m.display_ci", type_value="User")
    },
)


def group_target(group_id: uuid.UUID, attrs: dict[str, Any]) -> Target:
    return Target("Group", str(group_id), attrs.get("displayName"))


def render_group(record: GroupRecord, base_url: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(record.id)}
    if "externalId" in record.attrs:
        doc["externalId"] = record.attrs["externalId"]
    doc["displayName"] = record.attrs["displayName"]
    if record.members is not None:
        doc["members"] = [
            {**m, "$ref": f"{base_url}/Users/{m['value']}", "type": "User"} for m in record.members
        ]
    doc["meta"] = {
        "resourceType": "Group",
        "created": iso(record.created_at),
        "lastModified": iso(record.updated_at),
        "location": f"{base_url}/Groups/{record.id}",
        "version": etag(record.version),
    }
    return doc


def _group_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _not_found(raw) from None


def _not_found(raw: str) -> ScimError:
    return ScimError(
        404,
        f"Group {raw} not found in this org. In Okta, unlink the pushed group (Push Groups → "
        "Unlink, 'Leave the group') and push it again.",
        code="team_not_found",
        args={"id": raw},
    )


def _wants_members(query: ListQuery) -> bool:
    """Whether members must be read: excludedAttributes=members skips them entirely."""
    names = {n.lower() for n in query.excluded}
    if "members" in names or f"{GROUP_SCHEMA}:members".lower() in names:
        return False
    if query.attributes:
        return any(n.lower().split(".")[0].endswith("members") for n in query.attributes)
    return True


def _to_write(attrs: dict[str, Any]) -> GroupWrite:
    return GroupWrite(attrs=attrs, attrs_ci=fold(attrs, GROUP_TYPE))


# A member's attributes, in the case Okta and Entra send them.
_MEMBER_KEYS = frozenset({"value", "display", "type", "$ref"})


def parse_members(value: Any, where: str) -> list[Member]:
    """Members from a members value: a list of {"value": id, "display": …} (Okta, Entra)."""
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_MEMBERS:
        raise too_many_members(len(items))
    members: dict[uuid.UUID, Member] = {}
    for item in items:
        raw = item.get("value") if isinstance(item, dict) else item
        if not isinstance(item, dict):
            fields: dict[str, Any] = {}
        elif _MEMBER_KEYS.issuperset(item):
            fields = item  # as Okta and Entra send them: nothing to lower
        else:
            fields = {k.lower(): v for k, v in item.items()}
        member_type = fields.get("type")
        if isinstance(member_type, str) and member_type.lower() != "user":
            raise ScimError(
                400,
                f"{where}: only users can be team members, not {member_type!r}.",
                scim_type="invalidValue",
            )
        if not isinstance(raw, str):
            raise ScimError(
                400,
                f'{where}: each member needs "value": the id of a user of this org.',
                scim_type="invalidValue",
            )
        try:
            user_id = uuid.UUID(raw)
        except ValueError:
            raise ScimError(
                400,
                f"{where}: member value {raw!r} is not a user of this org. Push the user to the "
                "app (assign it in Okta) before pushing the group.",
                scim_type="invalidValue",
            ) from None
        display = fields.get("display")
        if isinstance(display, str):
            check_text(display, f"{where}.display", MAX_INDEXED_STRING)
        members[user_id] = Member(user_id, display if isinstance(display, str) else None)
    return list(members.values())


def too_many_members(count: int) -> ScimError:
    return ScimError(
        400,
        f"The request names {count} members; at most {MAX_MEMBERS} are accepted per request. "
        "Send the rest in further PATCH requests.",
        scim_type="tooMany",
    )


def member_ids(value: Any, where: str) -> list[uuid.UUID]:
    return [m.user_id for m in parse_members(value, where)]


@dataclass
class MemberDelta:
    """The net effect on membership of a sequence of operations, in order."""

    replace: dict[uuid.UUID, Member] | None = None
    add: dict[uuid.UUID, Member] = field(default_factory=dict)
    remove: set[uuid.UUID] = field(default_factory=set)
    touched: bool = False
    # Members named by all operations so far, against MAX_MEMBERS.
    named: int = 0

    def _name(self, count: int) -> None:
        self.touched = True
        self.named += count
        if self.named > MAX_MEMBERS:
            raise too_many_members(self.named)

    def added(self, members: list[Member]) -> None:
        self._name(len(members))
        target = self.replace if self.replace is not None else self.add
        for m in members:
            target[m.user_id] = m
            self.remove.discard(m.user_id)

    def removed(self, ids: list[uuid.UUID]) -> None:
        self._name(len(ids))
        for user_id in ids:
            if self.replace is not None:
                self.replace.pop(user_id, None)
            else:
                self.add.pop(user_id, None)
                self.remove.add(user_id)

    def replaced(self, members: list[Member]) -> None:
        self._name(len(members))
        self.replace = {m.user_id: m for m in members}
        self.add, self.remove = {}, set()

    @property
    def to_add(self) -> list[Member]:
        return list((self.replace if self.replace is not None else self.add).values())

    def params(self) -> MemberParams:
        """The delta as the statement's parameters (CPU work: off the loop when large)."""
        return store.member_params(
            remove=self.remove, add=self.to_add, replace=self.replace is not None
        )


def _value_eq_ids(node: FilterNode, where: str) -> list[uuid.UUID]:
    """The ids in `members[value eq "a" or value eq "b"]`, Okta's removal filter."""
    if (
        isinstance(node, Comparison)
        and node.op is CompareOperator.eq
        and node.attr_path.attr.lower() == "value"
    ):
        return member_ids([{"value": node.value}], where)
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.or_:
        return [i for term in node.terms for i in _value_eq_ids(term, where)]
    raise invalid_path(f'{where}: select members by value, e.g. members[value eq "<user id>"].')


def split_operations(operations: list[Operation]) -> tuple[list[Operation], MemberDelta]:
    """Separate membership operations (applied as SQL) from attribute ones (applied by Patcher)."""
    delta = MemberDelta()
    rest: list[Operation] = []
    for op in operations:
        where = f"Operations[{op.index}]"
        if op.path is None:
            if not isinstance(op.value, dict):
                rest.append(op)
                continue
            members_key = next((k for k in op.value if k.lower() == "members"), None)
            if members_key is not None:
                members = parse_members(op.value[members_key], f"{where}.value.members")
                delta.added(members) if op.op == "add" else delta.replaced(members)
                others = {k: v for k, v in op.value.items() if k != members_key}
                if others:
                    rest.append(Operation(op.index, op.op, None, others))
            else:
                rest.append(op)
            continue
        if op.op == "remove" and (one := _REMOVE_ONE_MEMBER.fullmatch(op.path)):
            delta.removed(member_ids([{"value": one[1]}], where))
            continue
        try:
            parsed = Path(op.path).ast
        except InvalidPathException:
            rest.append(op)  # the Patcher reports the syntax error
            continue
        attr = parsed.attr_path if isinstance(parsed, ValuePath) else parsed
        if (
            not isinstance(attr, AttrPath)
            or attr.attr.lower() != "members"
            or attr.uri not in (None, GROUP_SCHEMA)
        ):
            rest.append(op)
            continue
        if isinstance(parsed, ValuePath):
            if op.op != "remove" or parsed.sub_attr is not None:
                raise invalid_path(
                    f"{where}: use add or replace on 'members', and remove on members[value eq …]."
                )
            delta.removed(_value_eq_ids(parsed.val_filter, where))
        elif attr.sub_attr is not None:
            raise invalid_path(
                f"{where}: {op.path!r}: change members with add, replace or remove on 'members'."
            )
        elif op.op == "add":
            delta.added(parse_members(op.value, f"{where}.value"))
        elif op.op == "replace":
            delta.replaced(
                parse_members(op.value if op.value is not None else [], f"{where}.value")
            )
        elif op.value is not None:  # Entra: remove by value list
            delta.removed(member_ids(op.value, f"{where}.value"))
        else:
            delta.replaced([])
    return rest, delta


async def _unknown_members(request: web.Request, sent: MemberParams) -> ScimError:
    found = await store.unknown_member_ids(
        await request_conn(request), request_org(request), sent, shown=20
    )
    count = found.unknown_count
    shown = ", ".join(found.unknown[:10]) + (f" and {count - 10} more" if count > 10 else "")
    # Nothing of a refused request is applied: name the members that were valid too.
    return ScimError(
        400,
        f"members: {shown} {'is not a user' if count == 1 else 'are not users'} of this org. Push "
        "the users to the app (assign them in Okta) before pushing the group, then Push Groups → "
        "Retry All Groups.",
        scim_type="invalidValue",
        code="unknown_member",
        args={
            "values": found.unknown,
            "not_applied": found.not_applied,
            "not_applied_count": found.not_applied_count,
        },
    )


async def _conflict(request: web.Request, name: str) -> ScimError:
    existing = await store.find_group_by_display_name(
        await request_conn(request), request_org(request), name.casefold()
    )
    which = f" (id {existing[0]})" if existing else ""
    args: dict[str, Any] = {"name": name}
    if existing is not None:
        request[LOG_ENTRY].target = Target("Group", str(existing[0]), existing[1])
        args |= {"existing_id": str(existing[0]), "existing_name": existing[1]}
    return ScimError(
        409,
        f"A team named {name!r} already exists in this org{which}; team names are unique "
        "case-insensitively. In Okta, link the existing group (Push Groups → Link Group) "
        "instead of creating one.",
        scim_type="uniqueness",
        code="duplicate_team",
        args=args,
    )


async def list_groups(request: web.Request) -> web.Response:
    return await _find(request, build_query(request.query))


async def search_groups(request: web.Request) -> web.Response:
    return await _find(request, search_query(await read_json_object(request)))


async def _find(request: web.Request, query: ListQuery) -> web.Response:
    total, resources = await find_resources(request, query)
    members = sum(len(r.get("members", ())) for r in resources)
    return await off_loop_if(
        members > RENDER_OFF_LOOP_MEMBERS,
        lambda: scim_response(list_response(resources, total, query.start_index)),
    )


async def find_resources(
    request: web.Request, query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The total matching and one page of rendered Groups."""
    org_id = request_org(request)
    window = open_window("Group", query)
    params, where, order = page_params(
        query,
        GROUP_FILTERS,
        [org_id, window.walk, window.before, query.count, _wants_members(query)],
        "g.seq",
    )
    page = await store.find_groups(
        await request_conn(request), where=where, order=order, params=params.values
    )
    request[LOG_ENTRY].facts["total"] = page.total
    # A lookup that found one resource names it, when the page holds it (count=0
    # or a startIndex past it is a 200 with the total only, RFC 7644 §3.4.2.4).
    if query.filter and page.total == 1 and page.groups:
        request[LOG_ENTRY].target = group_target(page.groups[0].id, page.groups[0].attrs)
    count_page(request, "Group", query, page.by_keyset)
    base = base_url(request)
    members = sum(len(g.members or ()) for g in page.groups)
    return page.total, await off_loop_if(
        members > RENDER_OFF_LOOP_MEMBERS,
        lambda: [
            project(render_group(g, base), GROUP_TYPE, query.attributes, query.excluded)
            for g in page.groups
        ],
    )


async def _group_response(
    request: web.Request, record: GroupRecord, *, status: int = 200
) -> web.Response:
    query = projection(request)
    base = base_url(request)
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base}/Groups/{record.id}"

    def render() -> web.Response:
        body = project(render_group(record, base), GROUP_TYPE, query.attributes, query.excluded)
        return scim_response(body, status=status, headers=headers)

    return await off_loop_if(len(record.members or ()) > RENDER_OFF_LOOP_MEMBERS, render)


def _parse_group(
    request: web.Request, body: dict[str, Any]
) -> tuple[dict[str, Any], MemberDelta, MemberParams]:
    """A POST or PUT body: its attributes, and its members as the team's whole membership."""
    members_key = next((k for k in body if k.lower() == "members"), None)
    members = parse_members(body[members_key] or [], "members") if members_key is not None else []
    rest = {k: v for k, v in body.items() if k != members_key}
    attrs = Normalizer(GROUP_TYPE, request[LOG_ENTRY]).document(rest)
    delta = MemberDelta()
    # PUT replaces the membership; a body without "members" empties the team (RFC 7644 §3.5.1).
    delta.replaced(members)
    return attrs, delta, delta.params()


async def create_group(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    attrs, delta, members = await off_loop(request, lambda: _parse_group(request, body))
    group = _to_write(attrs)
    conn = await request_conn(request)
    org_id = request_org(request)
    group_id = uuid.uuid4()
    request[LOG_ENTRY].target = group_target(group_id, attrs)
    now = datetime.now(UTC)
    try:
        async with logged_change(request) as change:
            if not delta.replace:
                record = GroupRecord(group_id, 0, attrs, 1, now, now, [])
                response = await _group_response(request, record, status=201)
                await store.insert_group(
                    conn, org_id, group_id, group, None, now, change.row(response)
                )
                return response
            # Older Okta builds send members inline: read them back for their display names.
            async with conn.transaction():
                await store.insert_group(conn, org_id, group_id, group, members, now, None)
                stored = await store.get_group(conn, org_id, group_id, with_members=True)
                assert stored is not None
                response = await _group_response(request, stored, status=201)
                await change.record(conn, response)
            return response
    except store.DisplayNameTaken:
        raise await _conflict(request, attrs["displayName"]) from None
    except store.UnknownMembers:
        raise await _unknown_members(request, members) from None


async def get_group(request: web.Request) -> web.Response:
    group_id = _group_id(request)
    record = await store.get_group(
        await request_conn(request),
        request_org(request),
        group_id,
        with_members=_wants_members(projection(request)),
    )
    if record is None:
        raise _not_found(str(group_id))
    request[LOG_ENTRY].target = group_target(record.id, record.attrs)
    if not_modified(request, record.version):
        return web.Response(status=304, headers={"ETag": etag(record.version)})
    return await _group_response(request, record)


async def replace_group(request: web.Request) -> web.Response:
    group_id = _group_id(request)
    body = await read_json_object(request)
    sent_id = body.get("id")
    if sent_id is not None and str(sent_id) != str(group_id):
        raise ScimError(
            400,
            f"The body's id {sent_id!r} differs from the URL's {group_id}; PUT cannot change a group's id.",
            scim_type="mutability",
        )
    attrs, delta, members = await off_loop(request, lambda: _parse_group(request, body))
    return await _change(
        request, group_id, lambda _current: attrs, delta, members, respond_with_body=True
    )


async def patch_group(request: web.Request) -> web.Response:
    group_id = _group_id(request)
    operations = parse_operations(await read_json_object(request))
    heavy = off_loop_patch(request, operations)
    attribute_ops, delta, members = await off_loop_if(
        heavy, lambda: _with_params(split_operations(operations))
    )
    patcher = Patcher(GROUP_TYPE, Normalizer(GROUP_TYPE, request[LOG_ENTRY]), str(group_id))
    wants_body = any(k.lower() in ("attributes", "excludedattributes") for k in request.query)

    def change(current: GroupRecord) -> dict[str, Any]:
        return patcher.apply(current.attrs, attribute_ops) if attribute_ops else current.attrs

    return await _change(
        request, group_id, change, delta, members, respond_with_body=wants_body, heavy=heavy
    )


def _with_params(
    split: tuple[list[Operation], MemberDelta],
) -> tuple[list[Operation], MemberDelta, MemberParams]:
    return (*split, split[1].params())


async def _change(
    request: web.Request,
    group_id: uuid.UUID,
    change: Callable[[GroupRecord], dict[str, Any]],
    delta: MemberDelta,
    members: MemberParams,
    *,
    respond_with_body: bool,
    heavy: bool = False,
) -> web.Response:
    """Lock the group, apply the change and the membership delta (`members`: the
    delta as parameters), log, commit."""
    conn = await request_conn(request)
    org_id = request_org(request)
    entry = request[LOG_ENTRY]
    attrs: dict[str, Any] = {}
    try:
        async with logged_change(request) as log, conn.transaction():
            current = await store.lock_group(conn, org_id, group_id)
            if current is None:
                raise _not_found(str(group_id))
            entry.target = group_target(group_id, current.attrs)
            check_if_match(request, current.version)
            attrs = await off_loop_if(heavy, lambda: change(current))
            entry.target = group_target(group_id, attrs)
            if attrs.get("displayName") != current.attrs.get("displayName"):
                entry.facts["renamed_from"] = current.attrs.get("displayName")
            if attrs == current.attrs and not delta.touched:
                entry.note("unchanged_team", "no change: the request matched the stored team")
                response = await _read_back(request, conn, current, respond_with_body)
                await log.record(conn, response)
                return response
            if delta.remove:
                missing = await store.absent_members(conn, org_id, group_id, members, shown=10)
                if missing:
                    entry.note(
                        "member_not_present", f"remove matched no member: {', '.join(missing)}"
                    )
            updated = GroupRecord(
                group_id,
                current.seq,
                attrs,
                current.version + 1,
                current.created_at,
                datetime.now(UTC),
                None,
            )
            # A 204 is known before the change, so its log row goes in the same
            # statement; a body has to be read back first.
            response = web.Response(status=204, headers={"ETag": etag(updated.version)})
            result = await store.change_group(
                conn,
                org_id,
                group_id,
                _to_write(attrs),
                version=updated.version,
                members=members,
                now=updated.updated_at,
                log=None if respond_with_body else log.row(response),
            )
            assert result is not None  # the row lock keeps the group
            if respond_with_body:
                # A PUT says who it added and removed (Okta's AIW apps replace the list).
                entry.facts["members_added"] = result.added
                entry.facts["members_removed"] = result.removed
                response = await _read_back(request, conn, updated, True)
                await log.record(conn, response)
        return response
    except store.DisplayNameTaken:
        raise await _conflict(request, attrs["displayName"]) from None
    except store.UnknownMembers:
        raise await _unknown_members(request, members) from None


async def _read_back(
    request: web.Request, conn: Connection, record: GroupRecord, with_body: bool
) -> web.Response:
    if not with_body:
        return web.Response(status=204, headers={"ETag": etag(record.version)})
    stored = await store.get_group(
        conn, request_org(request), record.id, with_members=_wants_members(projection(request))
    )
    assert stored is not None
    return await _group_response(
        request,
        GroupRecord(
            stored.id,
            stored.seq,
            record.attrs,
            record.version,
            stored.created_at,
            record.updated_at,
            stored.members,
        ),
    )


async def delete_group(request: web.Request) -> web.Response:
    group_id = _group_id(request)
    conn = await request_conn(request)
    org_id = request_org(request)
    expected = None
    if request.headers.get("If-Match") is not None:
        current = await store.get_group(conn, org_id, group_id, with_members=False)
        if current is None:
            raise _not_found(str(group_id))
        check_if_match(request, current.version)
        expected = current.version
    response = web.Response(status=204)
    async with logged_change(request) as change:
        if not await store.delete_group(
            conn, org_id, group_id, expected_version=expected, log=change.row(response)
        ):
            if expected is not None:
                raise ScimError(
                    412, "The team changed while it was being deleted; GET it again and retry."
                )
            raise _not_found(str(group_id))
    return response


def add_group_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/Groups", list_groups, allow_head=False)
    router.add_post("/Groups", create_group)
    router.add_post("/Groups/.search", search_groups)
    router.add_get("/Groups/{id}", get_group, allow_head=False)
    router.add_put("/Groups/{id}", replace_group)
    router.add_patch("/Groups/{id}", patch_group)
    router.add_delete("/Groups/{id}", delete_group)
