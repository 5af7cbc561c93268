"""Sending sealed events to a peer over the backbone.

Each envelope is published to the peer's ``ehub.fed.<hub>`` topic; the receipt comes
back as a message on ours (``backbone.py``). An event not receipted within its wait is
a failed attempt ("no receipt within ..."), recorded when it comes due and is sent
again, which covers a broker that lost it; each further wait is twice as long, up to
``receipt_timeout_max``. An event out of attempts is dead-lettered once the wait for its
last send is over (a receipt arriving later still settles it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ehub_core.bus import BusUnavailable, EventBus, Message
from ehub_core.streams import fed_topic
from ehub_gateway.federation import outbound_store
from ehub_gateway.federation.delivery_outcomes import MAX_ERROR, Outcomes, dead_letter
from ehub_gateway.federation.models import DeliveryStatus, OutboundEvent
from ehub_gateway.federation.trust import PeerInfo
from ehub_gateway.settings import GatewaySettings


def receipt_wait(settings: GatewaySettings, sends: int) -> float:
    """How long to wait for a receipt after the ``sends``-th send before sending again.

    Doubling, as TCP does with its retransmission timeout: a fixed interval re-sends
    every unreceipted event again and again while the peer is still working through
    its backlog (after a restart, or a rebalance of its consumer group), and each copy
    lengthens the backlog it has to get through before it can answer.
    """
    base = settings.receipt_timeout
    return min(base * 2 ** min(sends - 1, 30), max(base, settings.receipt_timeout_max))


def unanswered(settings: GatewaySettings, row: OutboundEvent) -> str:
    """The error of a backbone send whose receipt did not come in time."""
    wait = receipt_wait(settings, max(row.attempts, 1))
    return f"no receipt within {wait:g}s of send {row.attempts} over the backbone"


class KafkaSender:
    def __init__(
        self, *, hub: str, bus: EventBus, settings: GatewaySettings, outcomes: Outcomes
    ) -> None:
        self.hub = hub
        self.bus = bus
        self.settings = settings
        self.outcomes = outcomes

    async def send(self, peer: PeerInfo, rows: Sequence[OutboundEvent]) -> None:
        messages = [
            Message(
                fed_topic(peer.hub_id),
                r.envelope,
                r.subject.encode(),
                (
                    ("event_id", r.event_id.encode()),
                    ("kind", b"envelope"),
                    ("source_hub", self.hub.encode()),
                ),
            )
            for r in rows
        ]
        at = datetime.now(UTC)
        try:
            refused = await self.bus.publish(messages)
        except BusUnavailable as exc:
            await self.outcomes.retry(rows, f"backbone unavailable: {exc}", attempted_at=at)
            return
        refused_ids = {rows[i].event_id: reason for i, reason in refused.items()}
        # Sent; the receipt arrives on our topic. Until then it is re-sent on a timeout.
        now = datetime.now(UTC)
        async with outbound_store.unreceipted(self.outcomes.db, rows) as pending:
            for row in pending:
                if row.status == DeliveryStatus.SENT:  # its last send got no receipt
                    row.last_error = unanswered(self.settings, row)[:MAX_ERROR]
                row.attempts += 1
                row.sent_at = at
                if row.event_id in refused_ids:
                    # The broker refuses it for good (too large, ...): no retry helps.
                    dead_letter(row, f"the backbone refused it: {refused_ids[row.event_id]}", now)
                    continue
                row.status = DeliveryStatus.SENT
                wait = receipt_wait(self.settings, row.attempts)
                row.next_attempt_at = now + timedelta(seconds=wait)
