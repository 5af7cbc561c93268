"""Countries: ISO 3166-1 alpha-2 codes from a maintained source (``pycountry``).

Hub ids, origins, destinations and addresses all name a country the same way; this
module is the one place that knows which codes exist. :data:`CountryCode` is the
pydantic type for API fields: it upper-cases its input and refuses a code ISO 3166-1
does not assign (``XX``, ``ZZ``), so a bad one comes back as a 422 naming the field.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field

EXAMPLE = "CN"


@cache
def alpha2_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code ``pycountry`` knows (loaded once, on first use)."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def is_country(code: str) -> bool:
    """Whether ``code`` (upper case) is an assigned ISO 3166-1 alpha-2 code."""
    return code in alpha2_codes()


def country_name(code: str) -> str:
    """The short English name of an assigned code, e.g. ``China`` for ``CN``."""
    country = pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        raise KeyError(code)
    return str(country.name)


def country_code(value: str) -> str:
    """``value`` upper-cased if it is an ISO 3166-1 alpha-2 code; ``ValueError`` otherwise."""
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError(
            f"must be an ISO 3166-1 alpha-2 country code such as {EXAMPLE} (got {value!r})"
        )
    if code not in alpha2_codes():
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        description="ISO 3166-1 alpha-2 country code (case-insensitive, answered upper case)",
        examples=[EXAMPLE],
    ),
    AfterValidator(country_code),
]
