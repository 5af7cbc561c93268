"""RFC 8941 structured fields: round trips (property-based), agreement with an independent
parser (http_sf), canonical serialization, and refusal of invalid input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import http_sf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehub_core.signing.structured_fields import (
    InnerList,
    Item,
    SFError,
    Token,
    parse_dictionary,
    parse_item,
    parse_list,
    serialize_dictionary,
    serialize_item,
    serialize_list,
)

keys = st.from_regex(r"[a-z*][a-z0-9_.*-]{0,8}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]{0,10}", fullmatch=True).map(Token)
strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
integers = st.integers(-999_999_999_999_999, 999_999_999_999_999)
decimals = st.builds(
    lambda whole, frac: Decimal(whole) + Decimal(frac) / 1000,
    st.integers(-(10**12) + 1, 10**12 - 1),
    st.integers(0, 999),
).filter(lambda d: abs(d) < Decimal(10) ** 12)
bare_items = st.one_of(integers, decimals, strings, tokens, st.binary(max_size=24), st.booleans())
params = st.dictionaries(keys, bare_items, max_size=3)
items = st.builds(Item, bare_items, params)
inner_lists = st.builds(InnerList, st.lists(items, max_size=4), params)
members = st.one_of(items, inner_lists)
dictionaries = st.dictionaries(keys, members, max_size=5)
lists = st.lists(members, max_size=5)


def typed(value: Any) -> Any:
    """A comparison form that keeps True apart from 1 and Token('a') apart from 'a'."""
    if isinstance(value, dict):
        return [(k, typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, Item):
        return ("item", typed(value.value), typed(value.params))
    if isinstance(value, InnerList):
        return ("inner", typed(value.items), typed(value.params))
    return (type(value).__name__, value)


def to_http_sf(value: Any) -> Any:
    """Our structures in http_sf's (value, params) tuple form."""
    if isinstance(value, Item):
        return (to_http_sf(value.value), {k: to_http_sf(v) for k, v in value.params.items()})
    if isinstance(value, InnerList):
        return (
            [to_http_sf(i) for i in value.items],
            {k: to_http_sf(v) for k, v in value.params.items()},
        )
    if isinstance(value, Token):
        return http_sf.Token(value.value)
    return value


@given(dictionaries)
def test_dictionary_round_trips(value):
    text = serialize_dictionary(value)
    assert typed(parse_dictionary(text)) == typed(value)
    assert serialize_dictionary(parse_dictionary(text)) == text


@given(lists)
def test_list_round_trips(value):
    text = serialize_list(value)
    assert typed(parse_list(text)) == typed(value)


@given(items)
def test_item_round_trips(value):
    assert typed(parse_item(serialize_item(value))) == typed(value)


@given(st.dictionaries(keys, members, min_size=1, max_size=5))
def test_independent_parser_reads_our_dictionaries_identically(value):
    theirs = http_sf.parse(serialize_dictionary(value).encode(), tltype="dictionary")
    assert theirs == {k: to_http_sf(v) for k, v in value.items()}
    assert http_sf.ser(theirs) == serialize_dictionary(value)


@given(st.dictionaries(keys, members, min_size=1, max_size=5))
def test_we_read_the_independent_serializers_output_identically(value):
    text = http_sf.ser({k: to_http_sf(v) for k, v in value.items()})
    assert typed(parse_dictionary(text)) == typed(value)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            'sig1=("@method" "@path");created=1;keyid="k"',
            'sig1=("@method" "@path");created=1;keyid="k"',
        ),
        ("a=1 ,  b=?1;x,c", "a=1, b;x, c"),
        ("a=(  1   2 )", "a=(1 2)"),
        ("a=:aGk:", "a=:aGk=:"),  # missing padding is accepted, then emitted
        ("a=1.50", "a=1.5"),
        ('a="q\\"uote\\\\"', 'a="q\\"uote\\\\"'),
    ],
)
def test_dictionaries_reserialize_canonically(text, canonical):
    assert serialize_dictionary(parse_dictionary(text)) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "a=1,",  # trailing comma
        "A=1",  # upper-case key
        'a="unterminated',
        'a="bad\\escape"',
        "a=1234567890123456",  # 16-digit integer
        "a=1.2345",  # 4 fractional digits
        "a=1.",  # decimal ends with a dot
        "a=:not base64!:",
        "a=:YQ==YQ==:",  # padding in the middle
        "a=(1 2",  # unterminated inner list
        "a=?2",
        "a=1 b=2",  # missing comma
        "a=é",
    ],
)
def test_invalid_dictionaries_are_refused(text):
    with pytest.raises(SFError):
        parse_dictionary(text)


@pytest.mark.parametrize(
    "value",
    [
        Item("non-ascii é"),
        Item(10**15),
        Item(Decimal("1e12")),
        Item(1, {"Bad": 1}),
        Item(1.5),  # type: ignore[arg-type]
    ],
)
def test_unserializable_values_are_refused(value):
    with pytest.raises(SFError):
        serialize_item(value)
