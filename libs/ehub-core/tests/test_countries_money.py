"""Countries (ISO 3166-1, pycountry) and money (ISO 4217, iso4217): one source each,
used by every service's schemas and by the hub id at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from ehub_core.countries import CountryCode, country_name, is_country
from ehub_core.money import CurrencyCode, minor_units, quantize


class Shape(BaseModel):
    country: CountryCode
    currency: CurrencyCode


@pytest.mark.parametrize(("given", "code"), [("cn", "CN"), ("Ca", "CA"), ("UG", "UG")])
def test_country_code_is_upper_cased(given, code):
    assert Shape(country=given, currency="usd").country == code


@pytest.mark.parametrize("bad", ["XX", "ZZ", "UK", "C1", "CHN", "", "é"])
def test_unassigned_country_codes_are_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as err:
        Shape(country=bad, currency="USD")
    assert [e["loc"] for e in err.value.errors()] == [("country",)]


def test_country_list_is_iso_3166():
    assert is_country("SS") and is_country("VN") and not is_country("XK")
    assert country_name("cn") == "China"


@pytest.mark.parametrize(
    ("currency", "places"), [("UGX", 0), ("VND", 0), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("CNY", 2)]
)
def test_minor_units_come_from_iso_4217(currency, places):
    assert minor_units(currency) == places
    rounded = quantize(Decimal("1234.56789"), currency)
    assert -rounded.as_tuple().exponent == places  # type: ignore[operator]


def test_quantize_rounds_half_up_to_the_minor_unit():
    assert quantize(Decimal("2.5"), "UGX") == Decimal("3")
    assert quantize(Decimal("0.0005"), "KWD") == Decimal("0.001")
    assert quantize(Decimal("10.005"), "EUR") == Decimal("10.01")


@pytest.mark.parametrize("bad", ["XAU", "XTS", "ABC", "US"])
def test_currencies_without_a_minor_unit_or_unknown_are_refused(bad):
    with pytest.raises(ValidationError) as err:
        Shape(country="CN", currency=bad)
    assert [e["loc"] for e in err.value.errors()] == [("currency",)]


def test_currency_is_upper_cased():
    assert Shape(country="CN", currency="vnd").currency == "VND"


def test_unassigned_hub_id_stops_ehub_serve_with_exit_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    result = subprocess.run(
        [sys.executable, "-m", "ehub_cli", "serve", "customs", "--port", "1"],
        env=env | {"EHUB_HUB_ID": "XX"},
        capture_output=True,
        text=True,
        timeout=300,  # a loaded machine imports slowly; the exit code is the contract
    )
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "EHUB_HUB_ID" in lines[0] and "'XX' is not an ISO 3166-1 alpha-2" in lines[0]
