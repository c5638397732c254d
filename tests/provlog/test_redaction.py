"""What the provisioning log keeps of a body."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.provlog.redaction import (
    _PAIR,
    REDACTED,
    _scrub_pair,
    redact_text,
    redacted_body,
    scrub_json_text,
)
from gateway.tokens import generate_token


def test_passwords_and_tokens_are_removed_at_any_depth() -> None:
    token = generate_token()
    body = {"password": "p1", "x": [{"PASSWORD": "p2"}, f"Bearer {token}"], "userName": "u"}
    text = redacted_body(None, 10_000, parsed=body)
    assert text is not None
    assert "p1" not in text
    assert "p2" not in text
    assert token not in text
    assert text.count(REDACTED) == 3
    assert '"userName":"u"' in text


def test_malformed_json_is_scrubbed_as_text() -> None:
    token = generate_token()
    text = redacted_body(f'{{"password" : "a \\" b", "t": "{token}", '.encode(), 10_000)
    assert text is not None
    assert 'a \\" b' not in text
    assert token not in text


def test_a_cut_never_leaves_half_a_token() -> None:
    token = generate_token()
    for limit in range(256, 320):
        text = redacted_body(None, limit, parsed={"pad": "x" * 240, "t": token})
        assert text is not None
        assert token[10:20] not in text


def test_empty_bodies_are_none() -> None:
    assert redacted_body(b"", 100) is None
    assert redacted_body(None, 100) is None


class _NeverSerialised:
    """A value json cannot encode: in a body, proof that its part was never serialised."""


def test_only_the_kept_part_of_a_large_body_is_serialised() -> None:
    # A 100,000-member team PUT: everything after the first few hundred members
    # is beyond the limit, so it must be neither redacted nor encoded (the cost
    # of a log row does not grow with the body).
    members: list[object] = [{"value": f"{i:08d}", "display": "x"} for i in range(300)]
    members += [_NeverSerialised()] * 100_000
    text = redacted_body(b"x" * 9_000_000, 1000, parsed={"members": members})
    assert text is not None
    assert text.startswith('{"members":[{"value":"00000000","display":"x"},')
    assert text.endswith("…[cut, 9000000 bytes in all]")
    assert len(text) == 1000 + len("…[cut, 9000000 bytes in all]")


def test_a_long_string_is_cut_before_it_is_scrubbed() -> None:
    token = generate_token()
    text = redacted_body(None, 300, parsed={"note": "y" * 290 + token + "z" * 10_000_000})
    assert text is not None
    assert token[8:20] not in text
    assert text.startswith('{"note":"yyy')
    assert text.endswith("…[cut]")
    assert len(text) <= 300 + len("…[cut]")


def test_a_large_raw_body_is_scrubbed_as_text_only_where_kept() -> None:
    token = generate_token()
    # Larger than what is parsed again: a body the parser refused (duplicate keys).
    raw = (
        '{"pass\\u0077ord": "hunter2", "PASSWORD": 12345, "t": "'
        + token
        + '", "pad": "'
        + "x" * 1_000_000
        + '", "pad": 1}'
    ).encode()
    text = redacted_body(raw, 500)
    assert text is not None
    assert "hunter2" not in text
    assert "12345" not in text
    assert token not in text
    assert text.count(REDACTED) == 3
    assert text.endswith(f"…[cut, {len(raw)} bytes in all]")


def test_small_bodies_are_kept_whole_and_compact() -> None:
    body = {"schemas": ["s"], "members": [{"value": "a"}], "password": "p"}
    assert redacted_body(None, 1000, parsed=body) == (
        '{"schemas":["s"],"members":[{"value":"a"}],"password":"[redacted]"}'
    )
    assert redacted_body(b'{"a" : [1, 2.5, null, true]}', 1000) == '{"a":[1,2.5,null,true]}'


SECRET_SPELLINGS = [
    "password",
    "PassWord",
    "to\u212aen",
    "secret",
    "Authorization",
    "pass\\u0077ord",
    "pass\\U0077ord",
    'W/\\"1\\"',
]


@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(SECRET_SPELLINGS), st.text(max_size=12)),
            st.one_of(st.text(max_size=12), st.integers(), st.none()),
        ),
        max_size=6,
    )
)
def test_text_scrub_skips_no_secret_key(pairs: list[tuple[str, object]]) -> None:
    """Looking for a secret key's name first finds every pair the pair-by-pair scrub would."""
    text = "{" + ",".join(f'"{k}":{json.dumps(v)}' for k, v in pairs) + "}"
    assert scrub_json_text(text) == redact_text(_PAIR.sub(_scrub_pair, text))
