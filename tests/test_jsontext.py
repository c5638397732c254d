"""JSON of large values in slices: the same text as `json.dumps`, never one long C call."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


STORED_TEXTS = [
    '{"a": 12345678901234567890123}',  # orjson would read a float
    '{"a": 9223372036854775807, "b": -9223372036854775808}',
    '{"a": 1e400}',  # orjson refuses it; json reads inf
    '{"a": "\\ud800"}',  # a lone surrogate: orjson refuses it
    '{"phone": "+1 555 0100", "id": "1234567890123456789012"}',
    '{"a": [1.5, -0, 0.1, 2.5e-320, true, null], "é": "\\u00e9"}',
    "[]",
]


@pytest.mark.parametrize("text", STORED_TEXTS)
def test_loads_stored_reads_what_json_loads_reads(text: str) -> None:
    assert repr(jsontext.loads_stored(text)) == repr(json.loads(text))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_loads_stored_agrees_with_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert repr(jsontext.loads_stored(text)) == repr(json.loads(text))


def test_large_finds_a_long_list_under_a_short_one() -> None:
    page = {"Resources": [{"members": [member(1)]}, {"members": [member(i) for i in range(1001)]}]}
    assert jsontext._large(page)
    assert not jsontext._large({"Resources": [{"members": [member(1)]}] * 50})
    assert jsontext._large([{"a": [0] * 1001}])
    assert not jsontext._large([["x"]] * 1000)
