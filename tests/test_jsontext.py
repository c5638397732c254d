"""JSON of large values in slices: the same text as `json.dumps`, never one long C call."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gateway import jsontext


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def member(i: int) -> dict[str, Any]:
    user_id = str(uuid.UUID(int=i))
    return {"value": user_id, "display": f"ü{i}", "$ref": f"/Users/{user_id}", "type": "User"}


TEAM = {"schemas": ["g"], "id": "t", "members": [member(i) for i in range(25_000)], "meta": {}}


@pytest.mark.parametrize(
    "value",
    [
        TEAM,
        {"Resources": [{"members": [member(1)]}, TEAM, {}], "totalResults": 3},
        [],
        {},
        [[]],
        [{}],
        {"a": [], "b": {"c": []}},
        list(range(2500)),
        [list(range(1001)), "x"],
        ["é\u2028\x00", None, True, 1.5],
    ],
)
def test_the_text_is_what_json_dumps_writes(value: Any) -> None:
    assert jsontext.dumps(value) == reference(value)
    assert jsontext.dumps_bytes(value) == reference(value).encode()


def test_a_large_team_is_encoded_a_slice_of_members_at_a_time() -> None:
    # Each part is one call into the C encoder, which holds the GIL (and so the
    # event loop) until it returns: none may cover more than SLICE members.
    parts = jsontext.encoded_parts({"Resources": [TEAM, TEAM]})
    per_member = len(reference(member(0))) + 1
    assert len(parts) >= 2 * 25_000 // jsontext.SLICE
    assert max(len(p) for p in parts) <= jsontext.SLICE * per_member * 1.1


def test_id_lists_and_key_objects() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(3)]
    assert json.loads(jsontext.string_array(ids)) == ids
    assert jsontext.string_array([]) == "[]"
    assert json.loads(jsontext.key_object(ids)) == dict.fromkeys(ids, 0)
    assert jsontext.key_object([]) == "{}"


def test_loads_reads_large_and_small_texts() -> None:
    large = reference(TEAM)
    assert jsontext.loads(large) == TEAM
    assert jsontext.loads('{"a":[1]}') == {"a": [1]}
