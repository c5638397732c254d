"""What the provisioning log keeps of a body."""

from __future__ import annotations

from gateway.provlog.redaction import REDACTED, redacted_body
from gateway.tokens import generate_token


def test_passwords_and_tokens_are_removed_at_any_depth() -> None:
    token = generate_token()
    body = {"password": "p1", "x": [{"PASSWORD": "p2"}, f"Bearer {token}"], "userName": "u"}
    text = redacted_body(body, 10_000, parsed=True)
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
        text = redacted_body({"pad": "x" * 240, "t": token}, limit, parsed=True)
        assert text is not None
        assert token[10:20] not in text


def test_empty_bodies_are_none() -> None:
    assert redacted_body(b"", 100) is None
    assert redacted_body(None, 100) is None
