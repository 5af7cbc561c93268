"""FX conversion from a dated rates file (``tariffs/data/fx.yaml``).

Rates are units of each currency per one unit of the base currency, per day. A
conversion uses the latest day on or before the quote date that quotes both
currencies; the cross rate is rounded to six decimal places and that exact rate, with
its date, is echoed in every quote.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ehub_core.errors import UnprocessableError, field_error
from ehub_core.money import is_currency, minor_quantum

__all__ = ["FxQuote", "FxRateMissingError", "FxTable", "minor_quantum"]

RATE_PLACES = Decimal("0.000001")


class FxRateMissingError(UnprocessableError):
    """No rate on file for a conversion a quote needs (422 naming the field)."""

    title = "No FX rate"
    type_slug = "no-fx-rate"


@dataclass(frozen=True, slots=True)
class FxQuote:
    """The rate used for one conversion: ``amount_in_from * rate = amount_in_to``."""

    from_currency: str
    to_currency: str
    rate: Decimal
    rate_date: date
    source: str
    verified: bool


class FxTable:
    """Dated rates; ``rate(from, to, on)`` is cached per (from, to, day)."""

    def __init__(
        self,
        *,
        base: str,
        days: list[tuple[date, dict[str, Decimal]]],
        source: str,
        verified: bool,
        version: str = "",
    ) -> None:
        self.base = base
        self.source = source
        self.verified = verified
        self.version = version
        ordered = sorted(days, key=lambda d: d[0])
        self._dates = [d for d, _ in ordered]
        self._rates = [dict(r, **{base: Decimal(1)}) for _, r in ordered]
        self.currencies = frozenset(c for _, r in ordered for c in r) | {base}
        # Amounts in these currencies are rounded to their ISO 4217 minor unit, so the
        # file may only name currencies ISO 4217 gives one (a bad file stops start-up).
        unknown = sorted(c for c in self.currencies if not is_currency(c))
        if unknown:
            raise ValueError(f"FX rates name non-ISO 4217 currencies: {', '.join(unknown)}")
        self._cache: dict[tuple[str, str, date], FxQuote] = {}

    def rate(self, from_ccy: str, to_ccy: str, on: date, *, field: str = "currency") -> FxQuote:
        key = (from_ccy, to_ccy, on)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._lookup(from_ccy, to_ccy, on, field)
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _lookup(self, from_ccy: str, to_ccy: str, on: date, field: str) -> FxQuote:
        if from_ccy == to_ccy:
            return FxQuote(from_ccy, to_ccy, Decimal(1), on, "identity", True)
        for ccy, loc in ((from_ccy, field), (to_ccy, "destination")):
            if ccy not in self.currencies:
                raise FxRateMissingError(
                    f"Currency {ccy} is not in the FX rates file",
                    errors=[field_error(loc, f"unsupported currency {ccy}")],
                )
        idx = bisect.bisect_right(self._dates, on) - 1
        while idx >= 0:
            rates = self._rates[idx]
            if from_ccy in rates and to_ccy in rates:
                cross = (rates[to_ccy] / rates[from_ccy]).quantize(RATE_PLACES)
                return FxQuote(
                    from_ccy, to_ccy, cross, self._dates[idx], self.source, self.verified
                )
            idx -= 1
        raise FxRateMissingError(
            f"No FX rate {from_ccy}->{to_ccy} on or before {on.isoformat()}",
            errors=[field_error("date", "before the first FX rate on file")],
        )
