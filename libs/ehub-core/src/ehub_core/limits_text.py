"""Request-schema types that refuse what no ehub field takes: :data:`PlainText` and
:data:`MultilineText` refuse control characters (NUL, ANSI escapes, bidirectional
overrides, unpaired surrogates) with a 422 naming the field; :data:`IsoDate` takes a date
only as ``YYYY-MM-DD``; :data:`INT32_MAX` and :data:`INT64_MAX` bound integers to what a
database column holds. Importable from :mod:`ehub_core.limits`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

# The largest values the columns behind request fields hold on every supported database
# (Postgres INTEGER is 32-bit, BIGINT 64-bit; SQLite stores 64-bit integers).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


# C0 and C1 control characters, DEL, bidirectional embeddings/overrides/isolates (text
# that prints differently from what it says: "Trojan source" on a label) and unpaired
# surrogates (they cannot be encoded as UTF-8, so they could not be stored or answered).
_OTHER_CONTROLS = "\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_LINE_BAD = re.compile(f"[\x00-\x1f{_OTHER_CONTROLS}]")
# Multi-line text keeps TAB, LF and CR (\x09, \x0a, \x0d).
_MULTILINE_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_OTHER_CONTROLS}]")


def _refuse(match: re.Match[str]) -> None:
    code = ord(match.group())
    raise ValueError(
        f"must not contain control characters (U+{code:04X} at position {match.start()})"
    )


def no_control_characters(value: str) -> str:
    """Refuse control characters, TAB and line breaks included (one-line text)."""
    found = _LINE_BAD.search(value)
    if found is not None:
        _refuse(found)
    return value


def no_control_characters_multiline(value: str) -> str:
    """Refuse control characters except TAB, LF and CR (descriptions, notes)."""
    found = _MULTILINE_BAD.search(value)
    if found is not None:
        _refuse(found)
    return value


PlainText = Annotated[str, AfterValidator(no_control_characters)]
"""One line of text: names, addresses, references. Combine with ``Field(max_length=...)``."""
MultilineText = Annotated[str, AfterValidator(no_control_characters_multiline)]
"""Text that may span lines (TAB, LF, CR allowed), e.g. a product description."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date_only(value: Any) -> Any:
    """Refuse what pydantic would otherwise read as a date: Unix timestamps (``0`` is
    1970-01-01) and other spellings. The API documents dates as ``YYYY-MM-DD``."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(iso_date_only)]
"""A calendar date, accepted only as ``YYYY-MM-DD`` (or a ``date`` from Python)."""
