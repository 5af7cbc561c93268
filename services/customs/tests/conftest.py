from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app
from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.quote import Item, Quote, QuoteRequest
from ehub_customs.settings import CustomsSettings
from ehub_customs.tariffs.loader import load_rulebook
from ehub_customs.tariffs.rulebook import RuleBook

D = Decimal
TODAY = date(2026, 11, 26)
CURRENCY = {
    "CN": "CNY",
    "BE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "CA": "CAD",
    "AU": "AUD",
    "MY": "MYR",
    "TH": "THB",
    "RW": "RWF",
}


@pytest.fixture(scope="session")
def book() -> RuleBook:
    return load_rulebook()


def item(hs: str, qty: int, unit: str, origin: str = "CN", **kw: Any) -> Item:
    extra = {k: D(v) for k, v in kw.items()}
    return Item(hs=hs, quantity=qty, unit_value=D(unit), country_of_origin=origin, **extra)


def make_request(
    dest: str,
    items: list[Item],
    *,
    origin: str = "CN",
    on: date = TODAY,
    currency: str | None = None,
    shipping: str = "0",
    insurance: str = "0",
    **kw: Any,
) -> QuoteRequest:
    return QuoteRequest(
        origin=origin,
        destination=dest,
        date=on,
        currency=currency or CURRENCY.get(dest, "USD"),
        items=tuple(items),
        shipping=D(shipping),
        insurance=D(insurance),
        **kw,
    )


def run(
    book: RuleBook, dest: str, items: list[Item], *, used: str | None = None, **kw: Any
) -> Quote:
    return quote(book, make_request(dest, items, **kw), allowance_used=D(used) if used else None)


def amounts(q: Quote, kind: str) -> list[tuple[str, Decimal]]:
    """(rule_id, amount) of every charge of ``kind``, lines then consignment."""
    out = [(c.rule_id, c.amount) for line in q.lines for c in line.charges if c.kind == kind]
    return out + [(c.rule_id, c.amount) for c in q.consignment_charges if c.kind == kind]


@pytest.fixture(scope="session")
def it():
    """Build an Item: it('6109.10', 1, '100.00', 'CN', unit_volume_l='0.75')."""
    return lambda hs, qty, unit, origin="CN", **kw: item(
        hs.replace(".", ""), qty, unit, origin, **kw
    )


@pytest.fixture(scope="session")
def q(book):
    """Quote against the bundled rule book: q('GB', [items], shipping='5', used='0', ...)."""
    return lambda dest, items, **kw: run(book, dest, items, **kw)


@pytest.fixture(scope="session")
def charges():
    return amounts


INTERNAL_TOKEN = "customs-test-internal-token"  # what the tests' gateway headers carry


@pytest.fixture
async def app(database_url, tmp_path):
    """The customs app on a fresh database, with the internal (gateway) token."""
    return create_app(
        CustomsSettings(database_url=database_url, var_dir=tmp_path, internal_token=INTERNAL_TOKEN)
    )


@pytest.fixture
async def client(app):
    async with serve_in_process(app) as c:
        yield c
