"""The lookup's fast reading of `userName eq "x"` agrees with the general grammar."""

from __future__ import annotations

import uuid

from hypothesis import example, given
from hypothesis import strategies as st
from scim2_models.path import CompareOperator, Comparison

from gateway.scim.filters import (
    MAX_FILTER_LENGTH,
    Params,
    compile_filter,
    parse_filter,
    simple_equality,
)
from gateway.scim.users import USER_FILTERS

NAMES = st.sampled_from(["userName", "username", "USERNAME", "displayName", "externalId"])
# Every character class the value may hold: quotes, backslashes, controls, NUL,
# surrogates, non-ASCII, spaces.
VALUES = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", " ", "\t", "\ud800", "é", "ß", "İ"]),
        st.characters(),
    ),
    max_size=24,
)
SPACING = st.sampled_from([" eq ", "  eq ", " EQ ", " Eq ", "\teq "])


@given(name=NAMES, value=VALUES, spacing=SPACING, pad=st.sampled_from(["", " "]))
@example(name="userName", value="jane@example.com", spacing=" eq ", pad="")
@example(name="userName", value="", spacing=" eq ", pad="")
def test_the_fast_reading_agrees_with_the_grammar(
    name: str, value: str, spacing: str, pad: str
) -> None:
    text = f'{pad}{name}{spacing}"{value}"{pad}'
    fast = simple_equality(text)
    if fast is None:
        return
    assert fast == (name, value)
    tree = parse_filter(text)
    assert isinstance(tree, Comparison)
    assert tree.op is CompareOperator.eq
    assert tree.value == value
    if name.casefold() == "username":
        params = Params([uuid.uuid4(), None, 0, 100])
        assert compile_filter(text, USER_FILTERS, params) == "(u.user_name_ci = $5)"
        assert params.values[4] == value.casefold()


def test_okta_lookups_take_the_fast_reading() -> None:
    assert simple_equality('userName eq "jane.doe@example.com"') == (
        "userName",
        "jane.doe@example.com",
    )
    # Escapes, other spacing or operators: the grammar reads them.
    assert simple_equality(r'userName eq "a\"b"') is None
    assert simple_equality('userName  eq "a"') is None
    assert simple_equality('userName eq "a" and active eq true') is None
    # Over the length limit: refused by parse_filter, with its message.
    assert simple_equality('userName eq "' + "x" * MAX_FILTER_LENGTH + '"') is None
