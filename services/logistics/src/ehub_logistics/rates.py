"""Rate shopping: ask every carrier at once, keep what answers in time, sort.

A slow or failing carrier never fails the call; it shows up in ``messages``. Quotes
are sorted cheapest first; quotes in the declared value's currency come before
others, because comparing amounts across currencies would need an FX rate the hub
does not apply here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ehub_core.errors import UnprocessableError, field_error
from ehub_logistics.carriers.base import CarrierAdapter, RateQuote, RateRequest, RateResult
from ehub_logistics.carriers.registry import CarrierRegistry

CARRIER_TIMEOUT_S = 5.0
log = logging.getLogger("ehub.logistics.rates")


def request_digest(request: RateRequest) -> str:
    """What determines a price: the lane, postal codes and parcels (normalised)."""
    parts = [
        request.origin.country,
        (request.origin.postal_code or "").replace(" ", "").upper(),
        request.destination.country,
        (request.destination.postal_code or "").replace(" ", "").upper(),
    ]
    for p in request.parcels:
        dims = (p.weight_kg, p.length_cm, p.width_cm, p.height_cm)
        parts.append(",".join(format(d.normalize(), "f") for d in dims))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def rate_id(quote: RateQuote, digest: str) -> str:
    """Stateless quote id: the same request priced by the same card version gets the
    same id, so a booking can prove it buys the price the seller saw, with no quote
    table to keep."""
    material = "|".join((quote.carrier, quote.service, quote.rate_card, digest, str(quote.total)))
    return "rte_" + hashlib.sha256(material.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Shopping:
    by_price: list[RateQuote]
    by_transit: list[RateQuote]
    messages: list[str]
    rate_ids: dict[tuple[str, str], str]

    def rate_id(self, quote: RateQuote) -> str:
        return self.rate_ids[(quote.carrier, quote.service)]


def _wanted(quote: RateQuote, request: RateRequest) -> bool:
    # Adapters are asked to honour the wishes; this keeps a careless one honest.
    if request.services is not None and quote.service not in request.services:
        return False
    if request.service_levels is not None and quote.service_level not in request.service_levels:
        return False
    return request.max_transit_days is None or quote.transit_days <= request.max_transit_days


async def _ask(adapter: CarrierAdapter, request: RateRequest, timeout: float) -> RateResult:
    try:
        async with asyncio.timeout(timeout):
            return await adapter.rate(request)
    except TimeoutError:
        return RateResult(messages=[f"{adapter.name}: no answer within {timeout:g}s"])
    except Exception as exc:  # one carrier's failure must not fail the others
        log.warning("rating with %s failed", adapter.name, exc_info=True)
        return RateResult(messages=[f"{adapter.name}: rating failed ({type(exc).__name__})"])


def choose_carriers(registry: CarrierRegistry, names: Sequence[str] | None) -> list[CarrierAdapter]:
    if not names:
        return list(registry)
    unknown = sorted(set(names) - set(registry.names))
    if unknown:
        raise UnprocessableError(
            f"Unknown carriers {unknown}; this hub offers {registry.names}",
            errors=[
                field_error("wishes.carriers", f"unknown carriers {unknown}", "unknown_carrier")
            ],
        )
    return [registry.get(name) for name in dict.fromkeys(names)]


async def shop(
    adapters: Sequence[CarrierAdapter],
    request: RateRequest,
    *,
    currency: str,
    timeout: float = CARRIER_TIMEOUT_S,
) -> Shopping:
    """Every option of ``adapters`` for ``request``, stamped with stable rate ids."""
    remote = [a for a in adapters if not a.rates_in_process]
    results = (
        list(await asyncio.gather(*(_ask(a, request, timeout) for a in remote))) if remote else []
    )
    results += [await _ask(a, request, timeout) for a in adapters if a.rates_in_process]
    digest = request_digest(request)
    quotes = [q for result in results for q in result.quotes if _wanted(q, request)]
    messages = [m for result in results for m in result.messages]
    by_price = sorted(
        quotes,
        key=lambda q: (
            q.currency != currency,
            q.currency,
            q.total,
            q.transit_days,
            q.carrier,
            q.service,
        ),
    )
    by_transit = sorted(
        quotes, key=lambda q: (q.transit_days, q.currency != currency, q.total, q.carrier)
    )
    ids = {(q.carrier, q.service): rate_id(q, digest) for q in quotes}
    return Shopping(by_price=by_price, by_transit=by_transit, messages=messages, rate_ids=ids)
