"""Rate quotes round to their card currency's ISO 4217 minor unit (from the ``iso4217``
package): whole units for UGX and VND, three decimals for KWD, cents for USD."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from ehub_logistics.carriers.base import Address, Parcel, RateRequest
from ehub_logistics.carriers.pricing import price_request
from ehub_logistics.carriers.ratecard import RateCardError, load_rate_card

DATA = Path(str(files("ehub_logistics.carriers") / "data"))


def card_in(tmp_path: Path, currency: str, factor: str) -> Path:
    """The postal card re-priced in ``currency`` (prices times ``factor``)."""
    data = yaml.safe_load((DATA / "postal-2026-01-01.yaml").read_text())
    data["currency"] = currency
    data["remote_area"]["minimum"] = str(
        Decimal(str(data["remote_area"]["minimum"])) * Decimal(factor)
    )
    for svc in data["services"]:
        svc["prices"] = {
            zone: [str(Decimal(str(p)) * Decimal(factor)) for p in row]
            for zone, row in svc["prices"].items()
        }
        if "additional_per_kg" in svc:
            svc["additional_per_kg"] = {
                z: str(Decimal(str(v)) * Decimal(factor))
                for z, v in svc["additional_per_kg"].items()
            }
    path = tmp_path / f"postal-{currency}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def request(dest: str = "CA", postal: str | None = "X0A 0H0") -> RateRequest:
    return RateRequest(
        origin=Address("CN"),
        destination=Address(dest, postal_code=postal),
        parcels=(Parcel(Decimal("1.3"), Decimal(30), Decimal(20), Decimal(10)),),
        declared_value=Decimal("100"),
        currency="USD",
        ship_date=date(2026, 3, 2),
    )


def places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


@pytest.mark.parametrize(
    ("currency", "factor", "decimals"),
    [("UGX", "3712.37", 0), ("VND", "25431.7", 0), ("KWD", "0.30713", 3), ("USD", "1.0013", 2)],
)
def test_rate_quote_amounts_have_the_currency_minor_unit(tmp_path, currency, factor, decimals):
    card = load_rate_card(card_in(tmp_path, currency, factor))
    result = price_request(card, request())
    assert result.quotes, result.messages
    for q in result.quotes:
        assert q.currency == currency
        amounts = (q.base, q.fuel_surcharge, q.remote_area_fee, q.total)
        assert [places(a) for a in amounts] == [decimals] * 4, (q.service, amounts)
        assert q.total == q.base + q.fuel_surcharge + q.remote_area_fee
    # The rounding is real: the card's own prices have more decimals than the currency.
    prices = [p for svc in card.services for row in svc.prices.values() for p in row]
    assert any(places(p.normalize()) > decimals for p in prices)


def test_domestic_lanes_are_priced(tmp_path):
    """Domestic shipments are legitimate for logistics (zone D of the postal card)."""
    card = load_rate_card(DATA / "postal-2026-01-01.yaml")
    result = price_request(card, request(dest="CN", postal=None))
    assert {q.zone for q in result.quotes} == {"D"}


@pytest.mark.parametrize("currency", ["XAU", "ABC"])
def test_a_card_currency_outside_iso_4217_money_is_refused(tmp_path, currency):
    with pytest.raises(RateCardError, match="currency"):
        load_rate_card(card_in(tmp_path, currency, "1"))
