"""A search request, checked: its words, its filters, and the cursor bound to it.

``q`` is words, not a query language: FTS5 and ``tsquery`` each have their own syntax
(quotes, ``*``, ``NEAR``, ``:``, ``-``, parentheses), and passing it through would make
the same search mean different things on SQLite and Postgres, or fail inside the
database. So a character or word that is search syntax is refused (422 naming ``q``)
rather than silently dropped, and the words are handed to the database as plain terms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ehub_core.errors import UnprocessableError, field_error

MAX_TERMS = 16
MAX_OFFSET = 10_000
SYNTAX = set('"*:()^{}[]~\\|<>=;!?@#$%+`')
OPERATORS = frozenset({"NEAR", "AND", "OR", "NOT"})
WORD = re.compile(r"[^\W_]+")


def _refuse(field: str, msg: str, type_: str, detail: str | None = None) -> UnprocessableError:
    return UnprocessableError(
        detail or f"{field}: {msg}",
        errors=[field_error(field, msg, type_, where="query")],
    )


def terms_of(q: str | None) -> tuple[str, ...]:
    """The search words of ``q`` (lower case), or a 422 naming what is search syntax."""
    if q is None:
        return ()
    out: list[str] = []
    for chunk in q.split():
        bad = sorted(set(chunk) & SYNTAX)
        if bad:
            raise _refuse("q", f"{bad[0]!r} is search syntax; q takes words only", "search_syntax")
        if chunk[0] == "-":
            raise _refuse(
                "q",
                "'-' before a word (exclusion) is not supported; q takes words only",
                "search_syntax",
            )
        if chunk in OPERATORS:
            raise _refuse(
                "q",
                f"{chunk!r} is a search operator; write it in lower case to search the word",
                "search_syntax",
            )
        out.extend(WORD.findall(chunk.lower()))
    if not out:
        raise _refuse("q", "has no words to search for", "no_words")
    if len(out) > MAX_TERMS:
        raise _refuse("q", f"at most {MAX_TERMS} words", "too_many_words")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Filters:
    """Everything that narrows a search; part of the cursor's fingerprint."""

    terms: tuple[str, ...] = ()
    seller_id: str | None = None
    hs_prefix: str | None = None
    hs_chapter: str | None = None
    origin: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    price_currency: str | None = None
    verified_sme: bool | None = None


@dataclass(frozen=True)
class Search:
    """A whole search request: who asks, where to (listings) or the caller's own list."""

    filters: Filters
    visible_to: str | None
    ship_to: str | None = None
    currency: str | None = None
    importable_only: bool = False
    ewtp_lane: bool = False

    def fingerprint(self) -> str:
        # The dataclasses' repr names every field and value, in a fixed order.
        return hashlib.sha256(repr(self).encode()).hexdigest()


def check_price_range(filters: Filters) -> None:
    given = filters.min_price is not None or filters.max_price is not None
    if given and filters.price_currency is None:
        raise _refuse(
            "price_currency",
            "a price range needs price_currency: listings are priced in their seller's currency",
            "missing",
        )
    lo, hi = filters.min_price, filters.max_price
    if lo is not None and hi is not None and lo > hi:
        raise _refuse("min_price", "is above max_price", "range")


def refuse_unknown(params: Any, known: set[str]) -> None:
    """A query parameter this endpoint does not know is a 422, not silently ignored:
    a misspelt filter would otherwise widen the search without saying so."""
    unknown = sorted(set(params) - known)
    if unknown:
        raise UnprocessableError(
            f"Unknown query parameter(s): {', '.join(unknown)}",
            errors=[field_error(n, "unknown parameter", "unknown", where="query") for n in unknown],
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cursor_key(secret: str) -> bytes:
    return hashlib.sha256(b"ehub-catalog-cursor\0" + secret.encode()).digest()


def encode_cursor(key: bytes, search: Search, offset: int) -> str:
    """Opaque: the next offset and the search's fingerprint, signed (HMAC-SHA256)."""
    body = _b64(json.dumps({"o": offset, "f": search.fingerprint()[:32]}).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:16])
    return f"{body}.{mac}"


def decode_cursor(key: bytes, search: Search, cursor: str | None) -> int:
    """The offset a cursor of *this* search continues at; a 422 naming ``cursor`` for one
    that is forged, damaged or from another search (other words, filters or caller)."""
    if cursor is None:
        return 0
    try:
        body, mac = cursor.split(".")
        good = hmac.compare_digest(
            _unb64(mac), hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
        )
        data = json.loads(_unb64(body)) if good else None
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("o"), int):
        raise _refuse("cursor", "not a cursor this catalog issued", "invalid_cursor")
    if data.get("f") != search.fingerprint()[:32]:
        raise _refuse(
            "cursor",
            "belongs to another search: repeat the query it came from",
            "cursor_mismatch",
        )
    offset: int = data["o"]
    if not 0 <= offset <= MAX_OFFSET:
        raise _refuse("cursor", "not a cursor this catalog issued", "invalid_cursor")
    return offset
