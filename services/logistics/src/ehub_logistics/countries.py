"""ISO 3166-1 alpha-2 country codes, the only country identifiers the service accepts.

The list is the shared one (:mod:`ehub_core.countries`, from ``pycountry``); this module
re-exports it for the logistics code that imports it from here.
"""

from __future__ import annotations

from ehub_core.countries import CountryCode, alpha2_codes, country_code, is_country

__all__ = ["COUNTRIES", "CountryCode", "country_code", "is_country"]

COUNTRIES: frozenset[str] = alpha2_codes()
