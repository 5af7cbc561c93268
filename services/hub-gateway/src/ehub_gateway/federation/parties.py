"""Who may speak of an order: only the hub at its other end.

An order lives at two hubs, the buyer's and the seller's, and every event about it comes
from one of them. Ingest admits a peer's order event (the ``orders``, ``customs`` and
``shipments`` streams) only if the order is here and the sender is its other hub — the
seller's hub of an order bought here, the buyer's hub of an order sold here — or if the
event creates it: an ``OrderPlaced`` keyed by its order id, naming the sender as the
buyer's hub and this hub as the seller's. A repeat of that ``OrderPlaced`` from the same
hub passes (its inbox entry makes it a duplicate, or the saga ignores a second copy).

The seller's copy of an order is written by the saga after ingest republished its
``OrderPlaced``. Until then the order is known here by the ``OrderPlaced`` received for it
(``fed_received``, or an earlier event of the same request or ingest group), so the buyer
hub's next events — a cancellation right after placing — are not refused in that window.
When several hubs' ``OrderPlaced`` name one order id, the first received holds it, as the
saga creates the order from the first and ignores the others.

The check runs in the ingest transaction, before anything is written, so a refused
request leaves nothing behind. Its answer is the same whether the order does not exist
here or belongs to other hubs: a third hub learns nothing about our orders by asking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.envelope import PAYLOAD_TYPES
from ehub_core.errors import ForbiddenError
from ehub_core.proto.ehub.v1.envelope_pb2 import Envelope
from ehub_core.proto.ehub.v1.orders_pb2 import OrderPlaced
from ehub_core.signing import SignatureError
from ehub_core.signing.errors import Reason
from ehub_core.streams import ORDER_STREAMS  # the streams whose events are about one order
from ehub_gateway.federation.models import ReceivedEvent
from ehub_gateway.orders.models import Order

PLACED = "OrderPlaced"
# Ids per SELECT ... IN (...): far below SQLite's and asyncpg's bind-parameter limits.
_CHUNK = 500

Pair = tuple[str, str]  # (buyer's hub, seller's hub)


class NotOrderParty(ForbiddenError):
    """403: an authenticated peer spoke of an order it is not the other hub of."""

    title = "Not a party to the order"
    type_slug = "not-order-party"


@dataclass(frozen=True)
class OrderClaim:
    """What an order event says about its order: which one, and for ``OrderPlaced``,
    which hubs it is between."""

    event_id: str
    event_type: str
    order_id: str
    subject: str
    buyer_hub: str = ""
    seller_hub: str = ""

    @property
    def places(self) -> bool:
        return self.event_type == PLACED


def order_claim(env: Envelope, stream: str) -> OrderClaim | None:
    """The order ``env`` is about (None for events of no order, e.g. keys).

    The order is the payload's ``order_id`` or, when empty, the subject — the same the saga
    reads. A payload that does not decode names no order: ``malformed_envelope``.
    """
    if stream not in ORDER_STREAMS:
        return None
    try:
        payload = PAYLOAD_TYPES[env.type].FromString(env.payload)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, f"bad {env.type} payload") from exc
    order_id = str(getattr(payload, "order_id", "")) or env.subject
    hubs = (payload.buyer_hub, payload.seller_hub) if isinstance(payload, OrderPlaced) else ("", "")
    return OrderClaim(env.event_id, env.type, order_id, env.subject, *hubs)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


class OrderParties:
    """The hubs of the orders a set of claims is about, as this transaction sees them.

    :meth:`load` reads them once for a whole request (or ingest group); :meth:`judge` then
    decides each request in order, in memory, and remembers the orders a request that
    stands places, so a later request of the same transaction may speak of them.
    """

    def __init__(self, own_hub: str, pairs: dict[str, Pair]) -> None:
        self.own_hub = own_hub
        self._pairs = pairs

    @classmethod
    async def load(
        cls, session: AsyncSession, own_hub: str, claims: Iterable[OrderClaim]
    ) -> OrderParties:
        ids = sorted({c.order_id for c in claims if c.order_id})
        pairs: dict[str, Pair] = {}
        for chunk in _chunks(ids):
            rows = await session.execute(
                select(Order.id, Order.buyer_hub, Order.seller_hub).where(Order.id.in_(chunk))
            )
            pairs.update({oid: (buyer, seller) for oid, buyer, seller in rows})
        # Orders placed with us whose OrderPlaced was received but not yet made an order
        # by the saga: held by the first hub that placed them.
        pending = [oid for oid in ids if oid not in pairs]
        for chunk in _chunks(pending):
            rows = await session.execute(
                select(ReceivedEvent.subject, ReceivedEvent.source_hub)
                .where(ReceivedEvent.event_type == PLACED, ReceivedEvent.subject.in_(chunk))
                .order_by(ReceivedEvent.received_at, ReceivedEvent.event_id)
            )
            for oid, source in rows:
                pairs.setdefault(oid, (source, own_hub))
        return cls(own_hub, pairs)

    def judge(self, claims: Sequence[OrderClaim], sender: str) -> NotOrderParty | None:
        """The refusal of the first claim ``sender`` may not make (the whole request is
        refused), or None, after which the orders the request places count as known."""
        placing: dict[str, Pair] = {}
        for claim in claims:
            pair = self._pairs.get(claim.order_id) or placing.get(claim.order_id)
            detail = self._refusal(claim, sender, pair)
            if detail is not None:
                return NotOrderParty(
                    detail, event_id=claim.event_id, order_id=claim.order_id, hub=sender
                )
            if claim.places:
                placing.setdefault(claim.order_id, (sender, self.own_hub))
        for order_id, pair in placing.items():
            self._pairs.setdefault(order_id, pair)
        return None

    def _refusal(self, claim: OrderClaim, sender: str, pair: Pair | None) -> str | None:
        if claim.places:
            if (claim.buyer_hub, claim.seller_hub) != (sender, self.own_hub):
                return (
                    f"OrderPlaced {claim.order_id!r} from hub {sender} names buyer hub "
                    f"{claim.buyer_hub or '-'} and seller hub {claim.seller_hub or '-'}: an "
                    f"order placed with {self.own_hub} names its sender as the buyer's hub "
                    f"and {self.own_hub} as the seller's"
                )
            if not claim.order_id or claim.subject != claim.order_id:
                return (
                    f"OrderPlaced {claim.order_id!r} from hub {sender} is keyed by "
                    f"{claim.subject!r}: an order is keyed by its own id"
                )
            if pair in (None, (sender, self.own_hub)):
                return None
        elif pair is not None and sender != self.own_hub and sender in pair:
            return None
        return (
            f"hub {sender} may not send {claim.event_type} about order {claim.order_id!r}: "
            f"only the order's other hub may speak of it at {self.own_hub}"
        )
