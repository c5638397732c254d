"""Token format and the checks that need no database."""

from __future__ import annotations

import pytest

from gateway.tokens import (
    PREFIX,
    TOKEN_LENGTH,
    AuthFailure,
    PresentedToken,
    check_authorization,
    check_token,
    generate_token,
    token_digest,
)


def test_tokens_are_prefixed_fixed_length_and_unique() -> None:
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith(PREFIX)
        assert len(token) == TOKEN_LENGTH
        assert token.isalnum() or token.replace("_", "").isalnum()
        assert isinstance(check_token(token), PresentedToken)


def test_every_truncation_of_a_valid_token_is_rejected() -> None:
    token = generate_token()
    for cut in range(1, len(token)):
        result = check_token(token[:cut])
        assert isinstance(result, AuthFailure), cut
        if cut >= 3:
            assert result is AuthFailure.TRUNCATED, cut


def test_every_single_character_change_is_caught_by_the_checksum() -> None:
    token = generate_token()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for i in range(len(PREFIX), len(token)):
        for replacement in (alphabet[(alphabet.index(token[i]) + 1) % 62], "O", "l"):
            if replacement == token[i]:
                continue
            mistyped = token[:i] + replacement + token[i + 1 :]
            assert check_token(mistyped) is AuthFailure.MISTYPED, (i, replacement)


def test_swapped_neighbours_are_caught() -> None:
    token = generate_token()
    for i in range(len(PREFIX), len(token) - 1):
        if token[i] == token[i + 1]:
            continue
        swapped = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
        assert check_token(swapped) is AuthFailure.MISTYPED


def test_extra_characters_are_too_long() -> None:
    assert check_token(generate_token() + "x") is AuthFailure.TOO_LONG


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, AuthFailure.MISSING),
        ("", AuthFailure.MISSING),
        ("Bearer", AuthFailure.NOT_A_SCIM_TOKEN),
        ("Basic dXNlcjpwYXNz", AuthFailure.BASIC_SCHEME),
        ("non-token", AuthFailure.NOT_A_SCIM_TOKEN),
        ("Bearer abcdef", AuthFailure.NOT_A_SCIM_TOKEN),
        ("SSWS 00abc", AuthFailure.NOT_A_SCIM_TOKEN),
        ('"quoted-but-not-ours"', AuthFailure.NOT_A_SCIM_TOKEN),
    ],
)
def test_headers_without_our_token(header: str | None, expected: AuthFailure) -> None:
    assert check_authorization(header) is expected


def test_header_forms_of_a_valid_token() -> None:
    token = generate_token()
    assert check_authorization(f"Bearer {token}") == PresentedToken(token)
    assert check_authorization(f"bearer {token}") == PresentedToken(token)
    assert check_authorization(token) == PresentedToken(token)  # Okta "HTTP Header" mode
    assert check_authorization(f"Bearer Bearer {token}") is AuthFailure.DOUBLE_PREFIX
    assert check_authorization(f"Bearer bearer {token}") is AuthFailure.DOUBLE_PREFIX
    for wrapped in (f'"{token}"', f"'{token}'", f"<{token}>", f"{token}\u200b", f"\u00a0{token}"):
        assert check_authorization(f"Bearer {wrapped}") is AuthFailure.WRAPPED, wrapped
        assert check_authorization(wrapped) is AuthFailure.WRAPPED, wrapped
    assert check_authorization(f"Bearer  {token}") is AuthFailure.WRAPPED
    assert check_authorization(f'"Bearer {token}"') is AuthFailure.WRAPPED


def test_digest_is_sha256_of_the_token() -> None:
    token = generate_token()
    assert len(token_digest(token)) == 32
    assert token_digest(token) == PresentedToken(token).digest
    assert token_digest(token) != token_digest(generate_token())
