"""Landed cost for a page of search hits: one batch call to this hub's customs.

``POST {EHUB_CUSTOMS_URL}/operator/v1/landed-cost/batch`` with the hub's internal
credential, every hit of the page in one request, within ``EHUB_SEARCH_PRICING_BUDGET``
seconds. Customs slow, down or refusing never fails the search: the hits come back
without landed cost and the page says why (``pricing.available: false``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ehub_catalog.catalog.models import Listing

log = logging.getLogger("ehub.catalog.pricing")

BATCH_PATH = "/operator/v1/landed-cost/batch"

# The buyer's currency when ``currency`` is not given: the destination's own (the
# countries the customs tariff files cover; docs/customs.md).
HOME_CURRENCY = {
    "AU": "AUD",
    "BE": "EUR",
    "CA": "CAD",
    "CN": "CNY",
    "GB": "GBP",
    "MY": "MYR",
    "RW": "RWF",
    "TH": "THB",
    "US": "USD",
}


QuoteKey = tuple[str, ...]


class QuoteCache:
    """Customs' answers for recent (listing as priced, destination, currency, date),
    kept ``ttl`` seconds: a popular search is priced once, not on every request. A price
    or weight change is another key; a change of customs' rules shows after ``ttl``."""

    def __init__(self, ttl: float, size: int = 50_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[QuoteKey, tuple[float, dict[str, Any]]] = OrderedDict()

    def get(self, key: QuoteKey) -> dict[str, Any] | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: QuoteKey, quote: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, quote)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class Backoff:
    """After customs failed (slow, down, 5xx), it is not asked again for ``pause``
    seconds: every search in between answers at once without landed cost, instead of
    each waiting out the budget."""

    def __init__(self, pause: float = 5.0) -> None:
        self.pause = pause
        self.until = 0.0
        self.reason: str | None = None

    def blocked(self) -> str | None:
        if time.monotonic() < self.until:
            return f"{self.reason}; customs is asked again within {self.pause:g} s"
        return None

    def failed(self, reason: str) -> Priced:
        self.until, self.reason = time.monotonic() + self.pause, reason
        return Priced(available=False, reason=reason)


@dataclass(frozen=True)
class CustomsLink:
    """How this catalog reaches its hub's customs (settings plus one pooled client)."""

    client: httpx.AsyncClient | None
    url: str | None
    token: str | None
    budget: float
    cache: QuoteCache = field(default_factory=lambda: QuoteCache(0))
    backoff: Backoff = field(default_factory=Backoff)


def quote_key(hit: Listing, destination: str, currency: str, on: str) -> QuoteKey:
    return (
        hit.id,
        hit.origin_country,
        hit.hs_code,
        str(hit.price),
        hit.currency,
        str(hit.weight_kg),
        destination,
        currency,
        on,
    )


@dataclass
class Priced:
    """The outcome for one page: per listing id, customs' quote (``ok`` true or false)."""

    available: bool
    reason: str | None = None
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)


def batch_request(
    hits: list[Listing], *, destination: str, currency: str, on: str
) -> dict[str, Any]:
    return {
        "destination": destination,
        "currency": currency,
        "date": on,
        "items": [
            {
                "ref": hit.id,
                "origin": hit.origin_country,
                "hs_code": hit.hs_code,
                "unit_value": str(hit.price),
                "value_currency": hit.currency,
                "unit_weight_kg": str(hit.weight_kg),
                "quantity": 1,
                "seller_sme_verified": hit.seller_sme_verified,
            }
            for hit in hits
        ],
    }


def _reason(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = None
    return f"customs answered {resp.status_code}" + (f": {detail}" if detail else "")


async def price_page(
    link: CustomsLink, *, hits: list[Listing], destination: str, currency: str
) -> Priced:
    """Customs' quotes for ``hits`` (cached ones, and at most one call for the rest), or
    why there are none."""
    on = datetime.now(UTC).date().isoformat()
    keys = {hit.id: quote_key(hit, destination, currency, on) for hit in hits}
    cached = {ref: q for ref, key in keys.items() if (q := link.cache.get(key)) is not None}
    missing = [hit for hit in hits if hit.id not in cached]
    if not missing:
        return Priced(available=True, quotes=cached)
    if link.client is None or not link.url:
        return Priced(available=False, reason="no customs service configured")
    if (blocked := link.backoff.blocked()) is not None:
        return Priced(available=False, reason=blocked)
    body = batch_request(missing, destination=destination, currency=currency, on=on)
    headers = {"Authorization": f"Bearer {link.token}"} if link.token else {}
    budget = link.budget
    try:
        async with asyncio.timeout(budget):
            resp = await link.client.post(link.url + BATCH_PATH, json=body, headers=headers)
    except TimeoutError:
        return link.backoff.failed(f"customs did not answer within {budget:g} s")
    except httpx.HTTPError as exc:
        log.warning("landed cost batch failed: %r", exc)
        return link.backoff.failed(f"customs unreachable ({type(exc).__name__})")
    if resp.status_code >= 500:
        return link.backoff.failed(_reason(resp))
    if resp.status_code != 200:
        return Priced(available=False, reason=_reason(resp))
    try:
        quotes = {str(q["ref"]): q for q in resp.json()["quotes"]}
    except (ValueError, KeyError, TypeError):
        return Priced(available=False, reason="customs answered something unreadable")
    for ref, quote in quotes.items():
        if ref in keys:
            link.cache.put(keys[ref], quote)
    return Priced(available=True, quotes=cached | quotes)
