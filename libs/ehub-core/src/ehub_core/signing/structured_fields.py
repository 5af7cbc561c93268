"""Structured Field Values for HTTP (RFC 8941): the parts RFC 9421 and RFC 9530 need.

Supports Items (Integer, Decimal, String, Token, Byte Sequence, Boolean) with Parameters,
Inner Lists, Lists and Dictionaries; parsing follows the algorithms of RFC 8941 §4.2 step by
step, serialization those of §4.1, so output is canonical (RFC 9421 depends on that: the
``@signature-params`` line is a re-serialization). Not supported: the RFC 9651 additions
(Date, Display String).

Python mapping: ``int`` Integer, ``Decimal`` Decimal, ``str`` String, :class:`Token` Token,
``bytes`` Byte Sequence, ``bool`` Boolean. Parameters are an insertion-ordered ``dict``.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = [
    "BareItem",
    "Dictionary",
    "InnerList",
    "Item",
    "Member",
    "Params",
    "SFError",
    "Token",
    "parse_dictionary",
    "parse_item",
    "parse_list",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_inner_list",
    "serialize_item",
    "serialize_list",
    "serialize_params",
]


class SFError(ValueError):
    """Input is not a valid structured field (or a value cannot be serialized as one)."""


@dataclass(frozen=True)
class Token:
    """An RFC 8941 Token (unquoted), kept distinct from a String."""

    value: str

    def __post_init__(self) -> None:
        if not _TOKEN_RE.fullmatch(self.value):
            raise SFError(f"invalid token {self.value!r}")

    def __str__(self) -> str:
        return self.value


BareItem = int | Decimal | str | Token | bytes | bool
Params = dict[str, BareItem]


@dataclass
class Item:
    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass
class InnerList:
    items: list[Item]
    params: Params = field(default_factory=dict)


Member = Item | InnerList
Dictionary = dict[str, Member]

_KEY_RE = re.compile(r"[a-z*][a-z0-9_.*-]*")
_TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
_TOKEN_RE = re.compile(r"[A-Za-z*][" + re.escape(_TCHAR) + r":/]*")
_MAX_INT = 999_999_999_999_999
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")
# A String: DQUOTE, then printable ASCII except DQUOTE and backslash, or an escaped DQUOTE or
# backslash, then DQUOTE (RFC 8941 §4.2.5). One regex instead of a per-character loop.
_STRING_RE = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_UNESCAPE_RE = re.compile(r"\\(.)")
_NUMBER_RE = re.compile(r"(-?([0-9]+)(?:\.([0-9]*))?)")

# ----------------------------------------------------------------------------------------
# Serialization (RFC 8941 §4.1)


def serialize_bare_item(value: BareItem) -> str:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise SFError(f"integer {value} out of range")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, str):
        if not _PRINTABLE_RE.fullmatch(value):
            raise SFError("strings may contain only printable ASCII")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    raise SFError(f"cannot serialize {type(value).__name__} as a structured field item")


def _serialize_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise SFError("decimal must be finite")
    rounded = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    if abs(rounded) >= Decimal(10) ** 12:
        raise SFError(f"decimal {value} has more than 12 integer digits")
    text = f"{rounded:f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0") or "0"
    if whole == "-0" and frac == "0":
        whole = "0"
    return f"{whole}.{frac}"


def _check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key):
        raise SFError(f"invalid key {key!r}")
    return key


def serialize_params(params: Params) -> str:
    out = []
    for key, value in params.items():
        out.append(";" + _check_key(key))
        if value is not True:
            out.append("=" + serialize_bare_item(value))
    return "".join(out)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    return (
        "("
        + " ".join(serialize_item(i) for i in inner.items)
        + ")"
        + serialize_params(inner.params)
    )


def _serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        return serialize_inner_list(member)
    return serialize_item(member)


def serialize_list(members: list[Member]) -> str:
    return ", ".join(_serialize_member(m) for m in members)


def serialize_dictionary(members: Dictionary) -> str:
    out = []
    for key, member in members.items():
        if isinstance(member, Item) and member.value is True:
            out.append(_check_key(key) + serialize_params(member.params))
        else:
            out.append(_check_key(key) + "=" + _serialize_member(member))
    return ", ".join(out)


# ----------------------------------------------------------------------------------------
# Parsing (RFC 8941 §4.2)


class _Parser:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        if not text.isascii():
            raise SFError("structured fields are ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def fail(self, what: str) -> SFError:
        return SFError(f"{what} at offset {self.pos} in {self.text!r}")

    # -- top-level ---------------------------------------------------------------------

    def finish(self) -> None:
        self.skip_sp()
        if not self.at_end():
            raise self.fail("unexpected trailing characters")

    def list_(self) -> list[Member]:
        members: list[Member] = []
        while not self.at_end():
            members.append(self.item_or_inner_list())
            self.skip_ows()
            if self.at_end():
                return members
            if self.take() != ",":
                raise self.fail("expected ','")
            self.skip_ows()
            if self.at_end():
                raise self.fail("trailing ','")
        return members

    def dictionary(self) -> Dictionary:
        members: Dictionary = {}
        while not self.at_end():
            key = self.key()
            member: Member
            if self.peek() == "=":
                self.pos += 1
                member = self.item_or_inner_list()
            else:
                member = Item(True, self.params())
            # RFC 8941: a repeated key overwrites the value but keeps the first position.
            members[key] = member
            self.skip_ows()
            if self.at_end():
                return members
            if self.take() != ",":
                raise self.fail("expected ','")
            self.skip_ows()
            if self.at_end():
                raise self.fail("trailing ','")
        return members

    # -- members -----------------------------------------------------------------------

    def item_or_inner_list(self) -> Member:
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while not self.at_end():
            self.skip_sp()
            if self.peek() == ")":
                self.pos += 1
                return InnerList(items, self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')' in inner list")
        raise self.fail("unterminated inner list")

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip_sp()
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:
        match = _KEY_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a key")
        self.pos = match.end()
        return match.group()

    # -- bare items --------------------------------------------------------------------

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char.isalpha() or char == "*":
            return self.token()
        raise self.fail("expected an item")

    def number(self) -> int | Decimal:
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a digit")
        whole, frac = match.group(2), match.group(3)
        if frac is None:
            if len(whole) > 15:
                raise self.fail("integer has more than 15 digits")
            self.pos = match.end()
            return int(match.group(1))
        if len(whole) > 12:
            raise self.fail("decimal has more than 12 integer digits")
        if not 1 <= len(frac) <= 3:
            raise self.fail("decimal needs 1 to 3 fractional digits")
        self.pos = match.end()
        return Decimal(match.group(1))

    def string(self) -> str:
        match = _STRING_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("invalid or unterminated string")
        self.pos = match.end()
        content = match.group(1)
        return _UNESCAPE_RE.sub(r"\1", content) if "\\" in content else content

    def token(self) -> Token:
        match = _TOKEN_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a token")
        self.pos = match.end()
        return Token(match.group())

    def byte_sequence(self) -> bytes:
        self.pos += 1  # ":"
        end = self.text.find(":", self.pos)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        content = self.text[self.pos : end]
        self.pos = end + 1
        if not set(content) <= _B64_CHARS:
            raise self.fail("invalid base64 in byte sequence")
        # RFC 8941 §4.2.7: parsers should not fail for missing "=" padding.
        content = content.rstrip("=")
        if "=" in content:
            raise self.fail("padding inside byte sequence")
        try:
            return base64.b64decode(content + "=" * (-len(content) % 4), validate=True)
        except binascii.Error as exc:
            raise self.fail("invalid base64 in byte sequence") from exc

    def boolean(self) -> bool:
        self.pos += 1  # "?"
        char = self.take()
        if char == "1":
            return True
        if char == "0":
            return False
        raise self.fail("expected ?0 or ?1")


def _parse_top(text: str | bytes) -> _Parser:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as exc:
            raise SFError("structured fields are ASCII") from exc
    parser = _Parser(text)
    parser.skip_sp()
    return parser


def parse_item(text: str | bytes) -> Item:
    parser = _parse_top(text)
    item = parser.item()
    parser.finish()
    return item


def parse_list(text: str | bytes) -> list[Member]:
    parser = _parse_top(text)
    members = parser.list_()
    parser.finish()
    return members


def parse_dictionary(text: str | bytes) -> Dictionary:
    parser = _parse_top(text)
    members = parser.dictionary()
    parser.finish()
    return members
