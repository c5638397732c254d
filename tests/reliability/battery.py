"""The hostile-input battery: requests a careless or hostile client sends, and the 4xx each must get.

Shared by the suite (tests/reliability/test_hostile_input.py) and `make chaos`,
which runs it at full size against a live gateway. `{user}` and `{group}` in a
path stand for an existing user's and team's id.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.payloads import OKTA_HEADERS, PATCH_OP, okta_create_user

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    status: int = 400
    # A piece of the SCIM error's detail that says what is wrong and where.
    needle: str | None = None
    scim_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Only in `make chaos`: too big for the suite's time budget.
    full_size_only: bool = False

    @property
    def unstorable(self) -> bool:
        """Whether the request carries text PostgreSQL cannot store (NUL, lone surrogates).

        Its log row needs the escaping of issue 8 (the provisioning-log work).
        """
        raw = self.path.encode() + (self.body or b"")
        return bool(re.search(rb"%00|%ED%A0|\\u(?:0000|d[89a-f])", raw, re.IGNORECASE))


def _user(**changes: Any) -> dict[str, Any]:
    return {**okta_create_user(user_name="hostile@example.com"), **changes}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _user_with(raw_pair: bytes) -> bytes:
    """A valid Okta create body with one raw `"key": value` pair spliced in first."""
    return b"{" + raw_pair + b"," + _json(_user())[1:]


def _patch(*ops: dict[str, Any]) -> bytes:
    return _json({"schemas": [PATCH_OP], "Operations": list(ops)})


def _search(**fields: Any) -> bytes:
    return _json({"schemas": [SEARCH], **fields})


def _search_raw(raw_pair: bytes) -> bytes:
    return b'{"schemas":["' + SEARCH.encode() + b'"],' + raw_pair + b"}"


def _group(**changes: Any) -> dict[str, Any]:
    return {"schemas": [GROUP], "displayName": "Hostile team", "members": [], **changes}


BIG = 10**30
MiB = 1024 * 1024


def cases() -> list[Case]:
    plain = _json(_user())
    out = [
        # Numbers that overflow.
        Case("startIndex 10^30 (GET)", "GET", f"/Users?startIndex={BIG}", needle="startIndex"),
        Case("startIndex -10^30 (GET)", "GET", f"/Users?startIndex=-{BIG}", needle="startIndex"),
        Case("startIndex int64 max (GET)", "GET", "/Users?startIndex=9223372036854775807"),
        Case("count 10^30 (GET)", "GET", f"/Users?count={BIG}", needle="count"),
        Case("startIndex 5000 digits (GET)", "GET", "/Users?startIndex=" + "9" * 5000),
        Case("startIndex not a number", "GET", "/Users?startIndex=abc", needle="startIndex"),
        Case("startIndex 10^30 (.search)", "POST", "/Users/.search", _search(startIndex=BIG)),
        Case("count 10^30 (.search)", "POST", "/Users/.search", _search(count=BIG)),
        Case("startIndex 10^30 (root .search)", "POST", "/.search", _search(startIndex=BIG)),
        Case("startIndex 10^30 (Groups)", "GET", f"/Groups?startIndex={BIG}"),
        Case(
            "startIndex 1e999 (.search)",
            "POST",
            "/Users/.search",
            _search_raw(b'"startIndex":1e999'),
        ),
        Case(
            "count 10^5000 (.search)",
            "POST",
            "/Users/.search",
            _search_raw(b'"count":1' + b"0" * 5000),
        ),
        Case("startIndex true (.search)", "POST", "/Users/.search", _search(startIndex=True)),
        Case("count 1.5 (.search)", "POST", "/Users/.search", _search(count=1.5)),
        Case("sortOrder sideways", "GET", "/Users?sortOrder=sideways", needle="sortOrder"),
        Case("attributes a number (.search)", "POST", "/Users/.search", _search(attributes=5)),
        # Content encodings.
        Case(
            "gzip label on a plain body",
            "POST",
            "/Users",
            plain,
            415,
            "Content-Encoding",
            headers={"Content-Encoding": "gzip"},
        ),
        Case(
            "real gzip body",
            "POST",
            "/Users",
            gzip.compress(plain),
            415,
            "Content-Encoding",
            headers={"Content-Encoding": "gzip"},
        ),
        Case(
            "br label",
            "POST",
            "/Users",
            plain,
            415,
            "Content-Encoding",
            headers={"Content-Encoding": "br"},
        ),
        Case(
            "deflate label",
            "POST",
            "/Users",
            plain,
            415,
            "Content-Encoding",
            headers={"Content-Encoding": "deflate"},
        ),
        Case(
            "unknown encoding",
            "POST",
            "/Users",
            plain,
            415,
            "Content-Encoding",
            headers={"Content-Encoding": "x-hostile"},
        ),
        Case(
            "gzip on a PATCH",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "value": {"active": False}}),
            415,
            headers={"Content-Encoding": "gzip"},
        ),
        Case(
            "gzip on a .search",
            "POST",
            "/Users/.search",
            _search(),
            415,
            headers={"Content-Encoding": "gzip"},
        ),
        Case(
            "text/plain body", "POST", "/Users", plain, 415, headers={"Content-Type": "text/plain"}
        ),
        Case(
            "latin-1 charset",
            "POST",
            "/Users",
            plain,
            415,
            headers={"Content-Type": "application/scim+json; charset=latin-1"},
        ),
        # NUL and lone surrogates.
        Case(
            "NUL in userName",
            "POST",
            "/Users",
            _json(_user(userName="a\x00b@example.com")),
            needle="userName",
            scim_type="invalidValue",
        ),
        Case(
            "lone surrogate in userName",
            "POST",
            "/Users",
            _json(_user(userName="\ud800x")),
            needle="userName",
        ),
        Case(
            "NUL in a key",
            "POST",
            "/Users",
            _user_with(b'"nick\\u0000Name":"x"'),
            needle="key",
            scim_type="invalidSyntax",
        ),
        Case(
            "lone surrogate in a key", "POST", "/Users", _user_with(b'"\\udfffx":"x"'), needle="key"
        ),
        Case(
            "NUL in a nested key",
            "POST",
            "/Users",
            _json(_user(name={"givenName": "J", "familyName": "D", "mid\x00dle": "x"})),
            needle="name",
        ),
        Case(
            "NUL in an email",
            "POST",
            "/Users",
            _json(_user(emails=[{"value": "x\x00@example.com"}])),
            needle="emails[0].value",
        ),
        Case(
            "NUL in a PATCH value",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "path": "title", "value": "a\x00"}),
            needle="Operations[0].value",
        ),
        Case(
            "surrogate in a PATCH path",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "path": "title\ud800", "value": "a"}),
        ),
        Case(
            "NUL in a path-less PATCH key",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "value": {"ti\x00tle": "a"}}),
            needle="key",
        ),
        Case(
            "NUL in a filter", "GET", "/Users?filter=userName%20eq%20%22a%00b%22", needle="filter"
        ),
        Case("NUL in a parameter name", "GET", "/Users?a%00b=1"),
        Case(
            "NUL in a .search filter",
            "POST",
            "/Users/.search",
            _search(filter='userName eq "a\x00"'),
        ),
        Case(
            "surrogate in a .search filter",
            "POST",
            "/Users/.search",
            _search_raw(b'"filter":"userName eq \\"\\udc00\\""'),
        ),
        Case(
            "NUL in a team name",
            "POST",
            "/Groups",
            _json(_group(displayName="T\x00")),
            needle="displayName",
        ),
        Case(
            "surrogate in a member display",
            "POST",
            "/Groups",
            _json(_group(members=[{"value": "{user}", "display": "\ud800"}])),
        ),
        Case("NUL in the URL id", "GET", "/Users/ab%00cd", status=404),
        Case("surrogate bytes in the URL id", "GET", "/Users/%ED%A0%80", status=404),
        # Duplicate keys: two parsers must never disagree.
        Case(
            "duplicate userName",
            "POST",
            "/Users",
            _user_with(b'"userName":"evil@example.com"'),
            needle="'userName'",
            scim_type="invalidSyntax",
        ),
        Case(
            "duplicate key in another case",
            "POST",
            "/Users",
            _user_with(b'"USERNAME":"evil@example.com"'),
            needle="USERNAME",
            scim_type="invalidSyntax",
        ),
        Case(
            "duplicate nested key",
            "POST",
            "/Users",
            b'{"userName":"d@example.com","name":{"givenName":"a","givenName":"b","familyName":"c"}}',
            needle="givenName",
        ),
        Case(
            "duplicate op in a PATCH",
            "PATCH",
            "/Users/{user}",
            b'{"schemas":["'
            + PATCH_OP.encode()
            + b'"],"Operations":[{"op":"replace","op":"remove","path":"title","value":"x"}]}',
            needle="'op'",
        ),
        Case("duplicate schemas", "POST", "/Users", _user_with(b'"schemas":[]'), needle="schemas"),
        Case(
            "duplicate filter in .search",
            "POST",
            "/Users/.search",
            _search_raw(b'"filter":"userName pr","filter":"id pr"'),
            needle="filter",
        ),
        # Oversized strings.
        Case(
            "userName 257 characters",
            "POST",
            "/Users",
            _json(_user(userName="u" * 245 + "@example.com")),
            needle="at most 256",
            scim_type="invalidValue",
        ),
        Case(
            "externalId 257 characters",
            "POST",
            "/Users",
            _json(_user(externalId="x" * 257)),
            needle="externalId",
        ),
        Case(
            "displayName 257 characters",
            "POST",
            "/Users",
            _json(_user(displayName="d" * 257)),
            needle="displayName",
        ),
        Case(
            "email 257 characters",
            "POST",
            "/Users",
            _json(_user(emails=[{"value": "e" * 257}])),
            needle="emails",
        ),
        Case(
            "title 8193 characters",
            "POST",
            "/Users",
            _json(_user(title="t" * 8193)),
            needle="at most 8192",
        ),
        Case(
            "team name 257 characters",
            "POST",
            "/Groups",
            _json(_group(displayName="g" * 257)),
            needle="displayName",
        ),
        Case(
            "team externalId 257 characters",
            "POST",
            "/Groups",
            _json(_group(externalId="x" * 257)),
            needle="externalId",
        ),
        Case(
            "member display 257 characters",
            "POST",
            "/Groups",
            _json(_group(members=[{"value": "{user}", "display": "m" * 257}])),
            needle="display",
        ),
        Case(
            "PATCH userName 257 characters",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "path": "userName", "value": "u" * 257}),
            needle="userName",
        ),
        Case(
            "1 MiB userName",
            "POST",
            "/Users",
            _json(_user(userName="u" * MiB)),
            needle="userName",
            full_size_only=True,
        ),
        Case(
            "1 MiB externalId",
            "POST",
            "/Users",
            _json(_user(externalId="x" * MiB)),
            needle="externalId",
            full_size_only=True,
        ),
        Case(
            "1 MiB team name",
            "POST",
            "/Groups",
            _json(_group(displayName="g" * MiB)),
            needle="displayName",
            full_size_only=True,
        ),
        Case(
            "filter 4097 characters",
            "GET",
            "/Users?filter=userName%20eq%20%22" + "a" * 4090 + "%22",
            needle="4096",
            scim_type="invalidFilter",
        ),
        # Counts.
        Case(
            "40,000 unknown top-level keys",
            "POST",
            "/Users",
            _json({**_user(), **{f"k{i}": i for i in range(40_000)}}),
            needle="at most 256",
        ),
        Case(
            "257 keys in an extension",
            "POST",
            "/Users",
            _json(
                _user(
                    **{
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                            f"k{i}": 1 for i in range(257)
                        }
                    }
                )
            ),
            needle="257 keys",
        ),
        Case(
            "path-less PATCH with 20,000 keys",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "value": {f"k{i}": i for i in range(20_000)}}),
            needle="keys",
        ),
        Case(
            "1001 PATCH operations",
            "PATCH",
            "/Users/{user}",
            _patch(*[{"op": "replace", "path": "title", "value": "x"}] * 1001),
            needle="1000",
            scim_type="tooMany",
        ),
        Case(
            "PATCH naming 1,001 attributes (4 path-less values of 250 keys, one path)",
            "PATCH",
            "/Users/{user}",
            _patch(
                *[{"op": "add", "value": {f"k{i}_{j}": "v" for j in range(250)}} for i in range(4)],
                {"op": "replace", "path": "title", "value": "x"},
            ),
            needle="1001 attributes",
            scim_type="tooMany",
        ),
        Case(
            "PATCH paths over 65,536 characters in all",
            "PATCH",
            "/Users/{user}",
            _patch(*[{"op": "remove", "path": 'emails[value eq "' + "x" * 700 + '"]'}] * 100),
            needle="characters long in all",
            scim_type="tooMany",
        ),
        Case(
            "100,001 members",
            "PUT",
            "/Groups/{group}",
            _json(_group(members=[f"00000000-0000-4000-8000-{i:012d}" for i in range(100_001)])),
            needle="100000",
            scim_type="tooMany",
            full_size_only=True,
        ),
        Case(
            "body over the size cap",
            "POST",
            "/Users",
            b'{"a":"' + b"x" * (17 * MiB) + b'"}',
            413,
            full_size_only=True,
        ),
        # Malformed JSON and shapes.
        Case("NaN", "POST", "/Users", b'{"userName": NaN}', needle="NaN"),
        Case("nested 100,000 deep", "POST", "/Users", b"[" * 100_000 + b"]" * 100_000),
        Case("invalid UTF-8", "POST", "/Users", b'{"userName":"\xff"}', needle="UTF-8"),
        Case("empty body", "POST", "/Users", b"", needle="empty"),
        Case("array body", "POST", "/Users", b"[]", needle="array"),
        Case("truncated JSON", "POST", "/Users", plain[:-5]),
        Case("userName a number", "POST", "/Users", _json(_user(userName=5)), needle="userName"),
        Case(
            "active 1e999",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "path": "active", "value": 0}).replace(b"0}", b"1e999}"),
            needle="active",
        ),
        Case(
            "PATCH op move",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "move", "path": "title"}),
            needle="op",
        ),
        Case(
            "PATCH path that does not parse",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "replace", "path": "emails[[", "value": "x"}),
            scim_type="invalidPath",
        ),
        Case(
            "PATCH remove without path",
            "PATCH",
            "/Users/{user}",
            _patch({"op": "remove"}),
            scim_type="noTarget",
        ),
        Case(
            "filter that does not parse",
            "GET",
            "/Users?filter=userName%20eq",
            scim_type="invalidFilter",
        ),
        Case(
            "filter on an unknown attribute",
            "GET",
            "/Users?filter=shoeSize%20eq%201",
            scim_type="invalidFilter",
        ),
        Case(
            "member that is not a UUID",
            "POST",
            "/Groups",
            _json(_group(members=[{"value": "not-a-uuid"}])),
            needle="not-a-uuid",
        ),
        Case(
            "member of type Group",
            "POST",
            "/Groups",
            _json(_group(members=[{"value": "{user}", "type": "Group"}])),
            needle="only users",
        ),
        Case(
            "PUT with another id",
            "PUT",
            "/Users/{user}",
            _json(_user(id="00000000-0000-4000-8000-000000000000")),
            needle="id",
        ),
    ]
    return out


def headers_for(case: Case, token: str) -> dict[str, str]:
    headers = {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}
    if case.body is None:
        headers.pop("Content-Type")
    headers.update(case.headers)
    return headers


def fill(case: Case, user_id: str, group_id: str) -> tuple[str, bytes | None]:
    path = case.path.replace("{user}", user_id).replace("{group}", group_id)
    body = case.body.replace(b"{user}", user_id.encode()) if case.body is not None else None
    return path, body


def check(case: Case, status: int, body: Any) -> list[str]:
    """What is wrong with the answer to `case`, if anything."""
    problems = []
    if status != case.status:
        problems.append(f"status {status}, expected {case.status}")
    if not isinstance(body, dict) or ERROR not in body.get("schemas", []):
        problems.append("not a SCIM error body")
        return problems
    detail = str(body.get("detail", ""))
    if case.needle is not None and case.needle not in detail:
        problems.append(f"detail lacks {case.needle!r}: {detail[:200]!r}")
    if case.scim_type is not None and body.get("scimType") != case.scim_type:
        problems.append(f"scimType {body.get('scimType')!r}, expected {case.scim_type!r}")
    return problems


ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
