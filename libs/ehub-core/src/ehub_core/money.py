"""Money: ``Decimal`` amounts with ISO 4217 currency codes, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

# ISO 4217 codes with their minor units, for the currencies hubs trade in.
MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "IDR": 2,
    "INR": 2,
    "JPY": 0,
    "KES": 2,
    "KRW": 0,
    "MXN": 2,
    "MYR": 2,
    "NGN": 2,
    "NOK": 2,
    "NZD": 2,
    "PHP": 2,
    "PLN": 2,
    "RWF": 0,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TZS": 2,
    "UGX": 0,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}


def _known_currency(code: str) -> str:
    code = code.upper()
    if code not in MINOR_UNITS:
        raise ValueError(f"unsupported currency {code!r}; use an ISO 4217 code such as USD")
    return code


CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_known_currency)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]


def quantize(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the currency's minor unit (2 places for EUR, 0 for JPY/RWF)."""
    exp = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return amount.quantize(exp, rounding=rounding)
