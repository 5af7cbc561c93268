"""Money: ``Decimal`` amounts with ISO 4217 currency codes, never float.

Which codes exist and how many decimals each has (its minor unit: 2 for EUR, 0 for UGX
and VND, 3 for KWD) come from the ``iso4217`` package, which ships the ISO 4217
maintenance agency's table; nothing here keeps its own list. Codes without a minor unit
(gold ``XAU``, special drawing rights ``XDR``, the testing code ``XTS``, ``XXX``) are not
money a hub prices in and are refused.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Annotated

import iso4217
from pydantic import AfterValidator, Field


@cache
def minor_units(currency: str) -> int:
    """The ISO 4217 minor unit (decimal places) of ``currency``; ``ValueError`` if none."""
    try:
        exponent = iso4217.Currency(currency).exponent
    except ValueError:
        raise ValueError(
            f"unsupported currency {currency!r}; use an ISO 4217 code such as USD"
        ) from None
    if exponent is None:
        raise ValueError(f"{currency!r} is an ISO 4217 code without a minor unit, not money")
    return int(exponent)


def is_currency(code: str) -> bool:
    """Whether ``code`` (upper case) is an ISO 4217 currency with a minor unit."""
    try:
        minor_units(code)
    except ValueError:
        return False
    return True


@cache
def minor_quantum(currency: str) -> Decimal:
    """One minor unit of ``currency`` as a ``Decimal`` exponent: 0.01, 1 or 0.001."""
    return Decimal(1).scaleb(-minor_units(currency))


def _known_currency(code: str) -> str:
    code = code.upper()
    minor_units(code)  # raises ValueError naming the code
    return code


CurrencyCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        description="ISO 4217 currency code (case-insensitive, answered upper case)",
        examples=["USD"],
    ),
    AfterValidator(_known_currency),
]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]


def quantize(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the currency's minor unit (2 places for EUR, 0 for UGX, 3 for KWD)."""
    return amount.quantize(minor_quantum(currency), rounding=rounding)
