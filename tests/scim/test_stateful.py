"""Generated SCIM traffic against a model of the org (Hypothesis RuleBasedStateMachine).

Rules create, replace and patch users (Okta and Entra forms, value-filter and URN
paths), deactivate, delete users and teams, add and remove members, and list with
filters, sorting and paging (count=0 and startIndex past the end included), on
/Users, /Groups, their .search and the root /.search. The app is built by the real
factory on a real PostgreSQL and served from a thread of its own, so the
synchronous state machine can call it.

After every step:
- every answer equals what the model predicts (status, resource, page);
- every 4xx/5xx is a SCIM error body, and none is a 5xx;
- a page is the slice [startIndex - 1, startIndex - 1 + count) of the current full
  ordering (creation order, or sortBy with missing values last and creation order
  breaking ties);
- /Users and /Groups list exactly the model's users and teams;
- every request has exactly one provisioning-log row (by its X-Request-Id).

The model's rules are README's "SCIM behaviour worth knowing", written down
independently of the gateway:
- userName, team displayName and every caseExact=false string compare after
  str.casefold(), ordering by code point; a second user or team whose name folds
  to the same is 409 uniqueness; externalId, id and members.type are case-exact;
- a missing attribute makes eq/co/sw/… false and ne true; `pr` wants a value that
  is not "";
- a comparison on a multi-valued attribute holds when one value satisfies it, a
  value filter when one value satisfies all of it;
- PUT replaces every writable attribute and keeps `active` when it is omitted;
  group PATCH answers 204; deleting a user removes it from its teams.

`make test` runs a seeded, bounded run; `make fuzz` (--hypothesis-profile=fuzz)
runs many more, longer, random examples.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.conftest import PUBLIC_BASE_URL, GatewayTestServer, create_database, drop_database
from tests.payloads import ENTERPRISE, ERROR, LIST, OKTA_HEADERS, PATCH_OP, USER

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BASE = "/api/sch/scim/v2"

# The bounded run of `make test`; `make fuzz` takes its sizes from the profile.
EXAMPLES = 8
STEPS = 30

T = TypeVar("T")

# Names that collide once folded (straße/STRASSE, ǅ/ǆ), so uniqueness is exercised.
LOCALS = ("ann", "Ann", "ANN", "straße", "STRASSE", "bob", "Zoë", "ZOË", "ǅemal", "ǆemal", "eve")
GIVEN = ("Ann", "Bob", "Zoë", "Σοφία", "Jean-Luc")
FAMILY = ("Doe", "DOE", "Müller", "Straße", "O'Brien", "50%_off")
TITLES = (None, "Engineer", "ENGINEER", "Straße", "strasse", "")
DEPARTMENTS = (None, "R&D", "r&d", "Sales_EMEA")
TEAM_NAMES = ("Platform", "PLATFORM", "Straße", "strasse", "QA", "Sales_EMEA", "ops")


def fold(value: str) -> str:
    return value.casefold()


def variants(value: str) -> st.SearchStrategy[str]:
    """The value as a client may spell it in a filter: any case."""
    return st.sampled_from((value, value.upper(), value.lower(), value.swapcase()))


# ---------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------


@dataclass
class ModelUser:
    id: str
    seq: int
    user_name: str
    given: str
    family: str
    title: str | None
    department: str | None
    active: bool
    email: str
    external_id: str
    display_name: str  # Okta sends "given family"; a PATCH of the name leaves it


@dataclass
class ModelTeam:
    id: str
    seq: int
    display_name: str
    members: dict[str, str | None] = field(default_factory=dict)  # user id -> display sent


@dataclass
class Filter:
    """A filter as sent, and what it means per the README's rules."""

    text: str
    holds: Callable[[Any], bool]


def sort_key(value: str | None) -> tuple[int, str]:
    # Missing values sort last in either direction (NULLS LAST).
    return (1, "") if value is None else (0, fold(value))


def ordered(items: list[T], key: Callable[[T], str | None] | None, descending: bool) -> list[T]:
    """Creation order, or sorted by `key` (folded, code points; missing last; ties by creation)."""
    if key is None:
        return list(items)
    present = [i for i in items if key(i) is not None]
    # A stable sort, also with reverse=True: ties keep their creation order.
    present.sort(key=lambda i: sort_key(key(i)), reverse=descending)
    return present + [i for i in items if key(i) is None]


# ---------------------------------------------------------------------------
# The server, in a thread of its own.
# ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    request_id: str | None


class Gateway:
    """The real app on a real PostgreSQL, driven synchronously from the state machine."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: TestClient[web.Request, web.Application] | None = None
        self.db: asyncpg.Connection | None = None
        self.requests = 0
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self) -> None:
        settings = Settings(database_url=self.database_url, public_base_url=PUBLIC_BASE_URL)
        self.client = TestClient(GatewayTestServer(create_app(settings)))
        await self.client.start_server()
        self.db = await asyncpg.connect(self.database_url)

    async def _stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.db is not None:
            await self.db.close()

    def close(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    async def _new_org(self) -> str:
        assert self.db is not None
        org = await org_store.create_org(self.db, f"org-{uuid.uuid4().hex[:12]}")
        token, _ = await token_store.create_token(self.db, org.id, note="stateful")
        return token

    def new_org(self) -> str:
        """A fresh org (its token) per example: orgs never see each other."""
        return self.run(self._new_org())

    async def _call(
        self, token: str, method: str, path: str, body: Any, params: dict[str, str] | None
    ) -> Answer:
        assert self.client is not None
        resp = await self.client.request(
            method,
            BASE + path,
            headers={**OKTA_HEADERS, "Authorization": f"Bearer {token}"},
            json=body,
            params=params,
        )
        text = await resp.text()
        parsed = await resp.json(content_type=None) if text else None
        return Answer(resp.status, parsed, resp.headers.get("X-Request-Id"))

    def call(
        self,
        token: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        self.requests += 1
        return self.run(self._call(token, method, path, body, params))

    async def _log_rows(self, request_ids: list[str]) -> dict[str, int]:
        assert self.db is not None
        rows = await self.db.fetch(
            "SELECT request_id, count(*) AS n FROM provisioning_log "
            "WHERE request_id = ANY($1::text[]) GROUP BY request_id",
            request_ids,
        )
        return {r["request_id"]: r["n"] for r in rows}

    def log_rows(self, request_ids: list[str]) -> dict[str, int]:
        return self.run(self._log_rows(request_ids))


# ---------------------------------------------------------------------------
# The state machine.
# ---------------------------------------------------------------------------


class OrgMachine(RuleBasedStateMachine):
    gateway: Gateway  # set on the subclass the test builds

    def __init__(self) -> None:
        super().__init__()
        self.token = self.gateway.new_org()
        self.users: dict[str, ModelUser] = {}
        self.teams: dict[str, ModelTeam] = {}
        self.seq = 0
        self.unlogged: list[str] = []

    # -- plumbing ---------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Answer:
        answer = self.gateway.call(self.token, method, path, body, params)
        where = f"{method} {path} {params or ''} {body or ''}"
        assert answer.status < 500, f"{where}: {answer.status} {answer.body}"
        if answer.status >= 400:
            assert isinstance(answer.body, dict), where
            assert answer.body.get("schemas") == [ERROR], (where, answer.body)
            assert answer.body.get("status") == str(answer.status), (where, answer.body)
            assert isinstance(answer.body.get("detail"), str), (where, answer.body)
        assert answer.request_id, where
        self.unlogged.append(answer.request_id)
        return answer

    def expect(self, answer: Answer, status: int, scim_type: str | None = None) -> None:
        assert answer.status == status, (status, answer.status, answer.body)
        if scim_type is not None:
            assert answer.body.get("scimType") == scim_type, answer.body

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def user_name_taken(self, name: str, but: str | None = None) -> bool:
        return any(fold(u.user_name) == fold(name) for u in self.users.values() if u.id != but)

    def team_name_taken(self, name: str, but: str | None = None) -> bool:
        return any(fold(t.display_name) == fold(name) for t in self.teams.values() if t.id != but)

    def teams_of(self, user_id: str) -> list[ModelTeam]:
        return [t for t in self.ordered_teams() if user_id in t.members]

    def ordered_users(self) -> list[ModelUser]:
        return sorted(self.users.values(), key=lambda u: u.seq)

    def user_ids(self) -> list[str]:
        """In creation order: never in the order of their random ids, which a replay
        of the same example would not reproduce."""
        return [u.id for u in self.ordered_users()]

    def ordered_teams(self) -> list[ModelTeam]:
        return sorted(self.teams.values(), key=lambda t: t.seq)

    def check_user(self, doc: dict[str, Any], user: ModelUser) -> None:
        assert doc["id"] == user.id
        got = {
            "userName": doc.get("userName"),
            "name": doc.get("name"),
            "displayName": doc.get("displayName"),
            "title": doc.get("title"),
            "department": doc.get(ENTERPRISE, {}).get("department"),
            "active": doc.get("active"),
            "emails": [e.get("value") for e in doc.get("emails", [])],
            "externalId": doc.get("externalId"),
            "groups": [(g["value"], g["display"]) for g in doc.get("groups", [])],
        }
        want = {
            "userName": user.user_name,
            "name": {"givenName": user.given, "familyName": user.family},
            "displayName": user.display_name,
            "title": user.title,
            "department": user.department,
            "active": user.active,
            "emails": [user.email],
            "externalId": user.external_id,
            "groups": [(t.id, t.display_name) for t in self.teams_of(user.id)],
        }
        assert got == want, (got, want)

    def check_team(self, doc: dict[str, Any], team: ModelTeam) -> None:
        assert doc["id"] == team.id
        assert doc["displayName"] == team.display_name
        members = {m["value"]: m.get("display") for m in doc.get("members", [])}
        assert members == team.members, (members, team.members)
        assert all(m["type"] == "User" for m in doc.get("members", []))

    def pick(self, data: st.DataObject, ids: list[str], label: str) -> str:
        return data.draw(st.sampled_from(ids), label=label)

    # -- users ------------------------------------------------------------------

    def user_body(self, user: ModelUser, *, entra: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [USER],
            "userName": user.user_name,
            "name": {"givenName": user.given, "familyName": user.family},
            "emails": [{"primary": True, "value": user.email, "type": "work"}],
            "displayName": user.display_name,
            "externalId": user.external_id,
        }
        if entra:  # Entra: strings for booleans, no password, no groups
            body["active"] = "True" if user.active else "False"
        else:
            body.update(locale="en-US", groups=[], password="1mz050nq", active=user.active)
        if user.title is not None:
            body["title"] = user.title
        if user.department is not None:
            body["schemas"] = [USER, ENTERPRISE]
            body[ENTERPRISE] = {"department": user.department}
        return body

    @rule(
        local=st.sampled_from(LOCALS),
        given=st.sampled_from(GIVEN),
        family=st.sampled_from(FAMILY),
        title=st.sampled_from(TITLES),
        department=st.sampled_from(DEPARTMENTS),
        active=st.booleans(),
        entra=st.booleans(),
    )
    def create_user(
        self,
        local: str,
        given: str,
        family: str,
        title: str | None,
        department: str | None,
        active: bool,
        entra: bool,
    ) -> None:
        user = ModelUser(
            id="",
            seq=0,
            user_name=f"{local}@example.com",
            given=given,
            family=family,
            title=title,
            department=department,
            active=active,
            email=f"{local}@example.com",
            external_id=f"00u{uuid.uuid4().hex[:8]}",
            display_name=f"{given} {family}",
        )
        answer = self.call("POST", "/Users", self.user_body(user, entra=entra))
        if self.user_name_taken(user.user_name):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 201)
        user = replace(user, id=answer.body["id"], seq=self.next_seq())
        self.users[user.id] = user
        self.check_user(answer.body, user)

    @rule(family=st.sampled_from(FAMILY))
    def create_user_without_a_given_name(self, family: str) -> None:
        body = {
            "schemas": [USER],
            "userName": "nameless@example.com",
            "name": {"familyName": family},
        }
        self.expect(self.call("POST", "/Users", body), 400, "invalidValue")

    @precondition(lambda self: self.users)
    @rule(
        data=st.data(),
        local=st.sampled_from(LOCALS),
        title=st.sampled_from(TITLES),
        family=st.sampled_from(FAMILY),
        omit_active=st.booleans(),
        entra=st.booleans(),
    )
    def replace_user(
        self,
        data: st.DataObject,
        local: str,
        title: str | None,
        family: str,
        omit_active: bool,
        entra: bool,
    ) -> None:
        """Okta AIW: GET the user, then PUT it whole (sometimes renamed)."""
        current = self.users[self.pick(data, list(self.users), "user")]
        got = self.call("GET", f"/Users/{current.id}")
        self.expect(got, 200)
        self.check_user(got.body, current)
        rename = data.draw(st.booleans(), label="rename")
        changed = replace(
            current,
            user_name=f"{local}@example.com" if rename else current.user_name,
            title=title,
            family=family,
            display_name=f"{current.given} {family}",
            active=data.draw(st.booleans(), label="active"),
        )
        body = self.user_body(changed, entra=entra)
        if omit_active:  # PUT without active keeps the current state
            del body["active"]
            changed = replace(changed, active=current.active)
        answer = self.call("PUT", f"/Users/{current.id}", body)
        if self.user_name_taken(changed.user_name, but=current.id):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 200)
        self.users[current.id] = changed
        self.check_user(answer.body, changed)

    @precondition(lambda self: self.users)
    @rule(data=st.data(), form=st.integers(0, 8))
    def patch_user(self, data: st.DataObject, form: int) -> None:
        current = self.users[self.pick(data, list(self.users), "user")]
        changed = current
        if form == 0:  # Okta deactivate / reactivate
            active = data.draw(st.booleans(), label="active")
            ops: list[dict[str, Any]] = [{"op": "replace", "value": {"active": active}}]
            changed = replace(current, active=active)
        elif form == 1:  # Entra
            active = data.draw(st.booleans(), label="active")
            ops = [{"op": "Replace", "path": "active", "value": str(active)}]
            changed = replace(current, active=active)
        elif form == 2:
            given = data.draw(st.sampled_from(GIVEN), label="given")
            ops = [{"op": "replace", "path": "name.givenName", "value": given}]
            changed = replace(current, given=given)
        elif form == 3:  # a value-filter path
            local = data.draw(st.sampled_from(LOCALS), label="email")
            ops = [
                {"op": "replace", "path": 'emails[type eq "work"].value', "value": f"{local}@x.org"}
            ]
            changed = replace(current, email=f"{local}@x.org")
        elif form == 4:  # a URN path
            department = data.draw(st.sampled_from(DEPARTMENTS[1:]), label="department")
            ops = [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": department}]
            changed = replace(current, department=department)
        elif form == 5:
            ops = [{"op": "remove", "path": "title"}]
            changed = replace(current, title=None)
        elif form == 6:  # Entra: capitalised op, no path
            title = data.draw(st.sampled_from(TITLES[1:]), label="title")
            ops = [{"op": "Add", "value": {"title": title}}]
            changed = replace(current, title=title)
        elif form == 7:
            local = data.draw(st.sampled_from(LOCALS), label="userName")
            ops = [{"op": "replace", "path": "userName", "value": f"{local}@example.com"}]
            changed = replace(current, user_name=f"{local}@example.com")
        else:  # atomic: a bad operation leaves the user unchanged
            ops = [
                {"op": "replace", "path": "title", "value": "Changed"},
                {"op": "replace", "path": "nope", "value": 1},
            ]
            answer = self.call(
                "PATCH", f"/Users/{current.id}", {"schemas": [PATCH_OP], "Operations": ops}
            )
            self.expect(answer, 400, "invalidPath")
            return
        answer = self.call(
            "PATCH", f"/Users/{current.id}", {"schemas": [PATCH_OP], "Operations": ops}
        )
        if self.user_name_taken(changed.user_name, but=current.id):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 200)
        self.users[current.id] = changed
        self.check_user(answer.body, changed)

    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        ids = [*self.users, str(uuid.uuid4())]
        user_id = self.pick(data, ids, "user")
        answer = self.call("DELETE", f"/Users/{user_id}")
        if user_id not in self.users:
            self.expect(answer, 404)
            return
        self.expect(answer, 204)
        del self.users[user_id]
        for team in self.teams.values():
            team.members.pop(user_id, None)
        self.expect(self.call("GET", f"/Users/{user_id}"), 404)

    # -- teams ------------------------------------------------------------------

    def member_entries(self, ids: list[str], *, okta: bool) -> tuple[list[Any], dict[str, Any]]:
        """Members as sent (Okta sends the username as display, Entra no display)."""
        sent = [
            {"value": i, "display": self.users[i].user_name} if okta else {"value": i} for i in ids
        ]
        return sent, {i: self.users[i].user_name if okta else None for i in ids}

    @rule(data=st.data(), name=st.sampled_from(TEAM_NAMES), okta=st.booleans())
    def create_team(self, data: st.DataObject, name: str, okta: bool) -> None:
        ids = (
            data.draw(st.lists(st.sampled_from(self.user_ids()), unique=True), label="members")
            if self.users
            else []
        )
        sent, members = self.member_entries(ids, okta=okta)
        answer = self.call(
            "POST", "/Groups", {"schemas": [GROUP], "displayName": name, "members": sent}
        )
        if self.team_name_taken(name):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 201)
        team = ModelTeam(answer.body["id"], self.next_seq(), name, members)
        self.teams[team.id] = team
        self.check_team(answer.body, team)

    @precondition(lambda self: self.teams)
    @rule(data=st.data(), form=st.integers(0, 4))
    def patch_team(self, data: st.DataObject, form: int) -> None:
        team = self.teams[self.pick(data, list(self.teams), "team")]
        members = dict(team.members)
        name = team.display_name
        if form in (0, 1) and self.users:  # add (Okta with display, Entra without)
            ids = data.draw(
                st.lists(st.sampled_from(self.user_ids()), min_size=1, max_size=3, unique=True),
                label="add",
            )
            sent, added = self.member_entries(ids, okta=form == 0)
            op = "add" if form == 0 else "Add"
            ops: list[dict[str, Any]] = [{"op": op, "path": "members", "value": sent}]
            members.update(added)
        elif form == 2 and members:  # Okta removes by a value filter
            gone = self.pick(data, [i for i in self.user_ids() if i in members], "remove")
            ops = [{"op": "remove", "path": f'members[value eq "{gone}"]'}]
            del members[gone]
        elif form == 3 and members:  # Entra removes with a value list
            gone = self.pick(data, [i for i in self.user_ids() if i in members], "remove")
            ops = [{"op": "Remove", "path": "members", "value": [{"value": gone}]}]
            del members[gone]
        else:  # Okta's rename (also the spurious one after every membership change)
            name = data.draw(st.sampled_from((team.display_name, *TEAM_NAMES)), label="name")
            ops = [{"op": "replace", "value": {"id": team.id, "displayName": name}}]
        answer = self.call(
            "PATCH", f"/Groups/{team.id}", {"schemas": [PATCH_OP], "Operations": ops}
        )
        if self.team_name_taken(name, but=team.id):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 204)
        team.members, team.display_name = members, name

    @precondition(lambda self: self.teams)
    @rule(data=st.data(), name=st.sampled_from(TEAM_NAMES))
    def replace_team(self, data: st.DataObject, name: str) -> None:
        """Okta AIW: PUT the team with its whole membership."""
        team = self.teams[self.pick(data, list(self.teams), "team")]
        ids = (
            data.draw(st.lists(st.sampled_from(self.user_ids()), unique=True), label="members")
            if self.users
            else []
        )
        sent, members = self.member_entries(ids, okta=True)
        body = {"schemas": [GROUP], "id": team.id, "displayName": name, "members": sent}
        answer = self.call("PUT", f"/Groups/{team.id}", body)
        if self.team_name_taken(name, but=team.id):
            self.expect(answer, 409, "uniqueness")
            return
        self.expect(answer, 200)
        team.members, team.display_name = members, name
        self.check_team(answer.body, team)

    @precondition(lambda self: self.teams)
    @rule(data=st.data())
    def add_a_stranger(self, data: st.DataObject) -> None:
        """A member who is not a user of the org is 400 and changes nothing."""
        team = self.teams[self.pick(data, list(self.teams), "team")]
        ops = [{"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}]
        answer = self.call(
            "PATCH", f"/Groups/{team.id}", {"schemas": [PATCH_OP], "Operations": ops}
        )
        self.expect(answer, 400, "invalidValue")

    @rule(data=st.data())
    def delete_team(self, data: st.DataObject) -> None:
        team_id = self.pick(data, [*self.teams, str(uuid.uuid4())], "team")
        answer = self.call("DELETE", f"/Groups/{team_id}")
        if team_id not in self.teams:
            self.expect(answer, 404)
            return
        self.expect(answer, 204)
        del self.teams[team_id]

    # -- filters ----------------------------------------------------------------

    def user_filters(self, data: st.DataObject) -> Filter:
        users = list(self.users.values())
        some = data.draw(st.sampled_from(users), label="like") if users else None
        name = some.user_name if some else "nobody@example.com"
        team = data.draw(st.sampled_from([*self.teams.values(), None]), label="team")
        team_id = team.id if team else str(uuid.uuid4())
        team_name = team.display_name if team else "no team"
        title = data.draw(st.sampled_from([t for t in TITLES if t is not None]), label="title")
        spelled = data.draw(variants(name), label="name")
        prefix = spelled[: data.draw(st.integers(0, 6), label="prefix")]
        choices = [
            Filter(f'userName eq "{spelled}"', lambda u: fold(u.user_name) == fold(spelled)),
            Filter(f'userName sw "{prefix}"', lambda u: fold(u.user_name).startswith(fold(prefix))),
            Filter(
                f'title eq "{title}"',
                lambda u: u.title is not None and fold(u.title) == fold(title),
            ),
            # A missing title is not equal to anything, so `ne` holds for it.
            Filter(
                f'title ne "{title}"', lambda u: u.title is None or fold(u.title) != fold(title)
            ),
            Filter("title pr", lambda u: u.title not in (None, "")),
            Filter("not (title pr)", lambda u: u.title in (None, "")),
            Filter("active eq true", lambda u: u.active),
            Filter("active eq false", lambda u: not u.active),
            Filter(
                f'emails[type eq "WORK" and value co "{prefix}"]',
                lambda u: fold(prefix) in fold(u.email),
            ),
            Filter(
                f'{ENTERPRISE}:department eq "r&D"',
                lambda u: u.department is not None and fold(u.department) == "r&d",
            ),
            Filter(
                f'groups[value eq "{team_id}"]', lambda u: team is not None and u.id in team.members
            ),
            Filter(
                f'groups.value eq "{team_id}"', lambda u: team is not None and u.id in team.members
            ),
            Filter(
                f'groups.display eq "{team_name.swapcase()}"',
                lambda u: any(fold(t.display_name) == fold(team_name) for t in self.teams_of(u.id)),
            ),
            Filter("groups pr", lambda u: bool(self.teams_of(u.id))),
        ]
        first = data.draw(st.sampled_from(choices), label="filter")
        how = data.draw(st.sampled_from(("", "and", "or")), label="combine")
        if not how:
            return first
        second = data.draw(st.sampled_from(choices), label="second filter")
        if how == "and":
            return Filter(
                f"({first.text}) and ({second.text})", lambda u: first.holds(u) and second.holds(u)
            )
        return Filter(f"{first.text} or {second.text}", lambda u: first.holds(u) or second.holds(u))

    def team_filters(self, data: st.DataObject) -> Filter:
        teams = list(self.teams.values())
        some = data.draw(st.sampled_from(teams), label="like") if teams else None
        name = data.draw(variants(some.display_name if some else "none"), label="name")
        prefix = name[: data.draw(st.integers(0, 3), label="prefix")]
        user = data.draw(st.sampled_from([*self.users.values(), None]), label="member")
        user_id = user.id if user else str(uuid.uuid4())
        choices = [
            Filter(f'displayName eq "{name}"', lambda t: fold(t.display_name) == fold(name)),
            Filter(
                f'displayName sw "{prefix}"',
                lambda t: fold(t.display_name).startswith(fold(prefix)),
            ),
            Filter(f'members[value eq "{user_id}"]', lambda t: user_id in t.members),
            Filter(f'members.value eq "{user_id}"', lambda t: user_id in t.members),
            Filter('members[type eq "User"]', lambda t: bool(t.members)),
            Filter('members[type eq "user"]', lambda t: False),  # members.type is caseExact
            Filter("members pr", lambda t: bool(t.members)),
            Filter("not (members pr)", lambda t: not t.members),
            Filter(
                f'members[display sw "{prefix}"]',
                lambda t: any(
                    d is not None and fold(d).startswith(fold(prefix)) for d in t.members.values()
                ),
            ),
        ]
        return data.draw(st.sampled_from(choices), label="filter")

    # -- lists ------------------------------------------------------------------

    def page_params(self, data: st.DataObject, size: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if data.draw(st.booleans(), label="startIndex?"):
            params["startIndex"] = data.draw(st.integers(0, size + 3), label="startIndex")
        if data.draw(st.booleans(), label="count?"):
            params["count"] = data.draw(st.integers(0, size + 2), label="count")
        return params

    def fetch(self, path: str, params: dict[str, Any], via_post: bool) -> Answer:
        if via_post:
            return self.call("POST", f"{path}/.search", {"schemas": [SEARCH], **params})
        return self.call("GET", path, params={k: str(v) for k, v in params.items()})

    def check_page(self, answer: Answer, params: dict[str, Any], full: list[str]) -> None:
        self.expect(answer, 200)
        body = answer.body
        start = max(int(params.get("startIndex", 1)), 1)
        count = int(params.get("count", 100))
        want = full[start - 1 : start - 1 + count]
        got = [r["id"] for r in body.get("Resources", [])]
        assert body["schemas"] == [LIST]
        assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (
            len(full),
            start,
            len(got),
        ), (params, body)
        assert got == want, (params, got, want)

    @rule(data=st.data(), via_post=st.booleans())
    def list_users(self, data: st.DataObject, via_post: bool) -> None:
        params = self.page_params(data, len(self.users))
        chosen: Filter | None = None
        if data.draw(st.booleans(), label="filter?"):
            chosen = self.user_filters(data)
            params["filter"] = chosen.text
        key: Callable[[ModelUser], str | None] | None = None
        sort_by = data.draw(
            st.sampled_from((None, "userName", "title", "name.familyName")), label="sortBy"
        )
        descending = False
        if sort_by is not None:
            params["sortBy"] = sort_by
            descending = data.draw(st.booleans(), label="descending")
            params["sortOrder"] = "descending" if descending else "ascending"
            key = {
                "userName": lambda u: u.user_name,
                "title": lambda u: u.title,
                "name.familyName": lambda u: u.family,
            }[sort_by]
        matching = [u for u in self.ordered_users() if chosen is None or chosen.holds(u)]
        full = [u.id for u in ordered(matching, key, descending)]
        self.check_page(self.fetch("/Users", params, via_post), params, full)

    @rule(data=st.data(), via_post=st.booleans())
    def list_teams(self, data: st.DataObject, via_post: bool) -> None:
        params = self.page_params(data, len(self.teams))
        chosen: Filter | None = None
        if data.draw(st.booleans(), label="filter?"):
            chosen = self.team_filters(data)
            params["filter"] = chosen.text
        descending = False
        key: Callable[[ModelTeam], str | None] | None = None
        if data.draw(st.booleans(), label="sort?"):
            descending = data.draw(st.booleans(), label="descending")
            params.update(
                sortBy="displayName", sortOrder="descending" if descending else "ascending"
            )
            key = lambda t: t.display_name  # noqa: E731
        matching = [t for t in self.ordered_teams() if chosen is None or chosen.holds(t)]
        full = [t.id for t in ordered(matching, key, descending)]
        self.check_page(self.fetch("/Groups", params, via_post), params, full)

    @rule(data=st.data())
    def search_everything(self, data: st.DataObject) -> None:
        """Root /.search: Users, then Groups, paged across the concatenation."""
        params = self.page_params(data, len(self.users) + len(self.teams))
        users, teams = self.ordered_users(), self.ordered_teams()
        if data.draw(st.booleans(), label="filter?"):
            # displayName is an attribute of both; a team may share a user's prefix.
            prefix = data.draw(st.sampled_from(("", "a", "S", "z", "p", "PLAT")), label="prefix")
            params["filter"] = f'displayName sw "{prefix}"'
            users = [u for u in users if fold(u.display_name).startswith(fold(prefix))]
            teams = [t for t in teams if fold(t.display_name).startswith(fold(prefix))]
        answer = self.call("POST", "/.search", {"schemas": [SEARCH], **params})
        self.check_page(answer, params, [u.id for u in users] + [t.id for t in teams])

    @rule(
        text=st.sampled_from(
            ('userName eq "unterminated', "nickName2 eq 1", 'members[nope eq "x"]', "title gt")
        ),
        path=st.sampled_from(("/Users", "/Groups")),
    )
    def bad_filter(self, text: str, path: str) -> None:
        self.expect(self.call("GET", path, params={"filter": text}), 400, "invalidFilter")

    # -- after every step -------------------------------------------------------

    @invariant()
    def the_server_holds_the_model(self) -> None:
        answer = self.call("POST", "/.search", {"schemas": [SEARCH], "count": 1000})
        self.expect(answer, 200)
        docs = answer.body.get("Resources", [])
        users, teams = self.ordered_users(), self.ordered_teams()
        assert [d["id"] for d in docs] == [u.id for u in users] + [t.id for t in teams]
        for doc, user in zip(docs, users, strict=False):
            self.check_user(doc, user)
        for doc, team in zip(docs[len(users) :], teams, strict=True):
            self.check_team(doc, team)

    @invariant()
    def every_request_has_one_log_row(self) -> None:
        pending, self.unlogged = self.unlogged, []
        if pending:
            rows = self.gateway.log_rows(pending)
            assert {i: rows.get(i, 0) for i in pending} == dict.fromkeys(pending, 1)


def stateful_settings() -> settings:
    """Bounded and seeded for `make test`; the fuzz profile's sizes under `make fuzz`."""
    current = settings()
    fuzz = settings.get_profile("fuzz")
    if (current.max_examples, current.stateful_step_count) == (
        fuzz.max_examples,
        fuzz.stateful_step_count,
    ):
        return settings(current, deadline=None, suppress_health_check=list(HealthCheck))
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def test_generated_traffic_matches_the_model(pg_server_url: str) -> None:
    database_url = asyncio.run(create_database(pg_server_url))
    gateway = Gateway(database_url)
    try:
        machine = type("BoundOrgMachine", (OrgMachine,), {"gateway": gateway})
        run_state_machine_as_test(machine, settings=stateful_settings())
    finally:
        gateway.close()
        asyncio.run(drop_database(pg_server_url, database_url))
    print(f"stateful: {gateway.requests} requests")
