"""What happens to an outbound event after an attempt that did not deliver it: it waits
(exponential backoff with full jitter) and goes again, or, out of attempts or refused
for good, it is dead-lettered for an operator (``ehub dlq list`` / ``ehub dlq replay``).

Every failed attempt records its error in ``last_error``, so ``ehub events show`` tells
an operator why an event is still on its way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ehub_core.db import Database
from ehub_gateway.federation import outbound_store
from ehub_gateway.federation.models import DeliveryStatus, OutboundEvent
from ehub_gateway.settings import GatewaySettings

log = logging.getLogger("ehub.gateway.delivery")

MAX_ERROR = 2000


def full_jitter(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry): uniform
    between 0 and ``min(cap, base * 2**attempt)`` ("full jitter"), so many hubs retrying
    at once spread out instead of stampeding."""
    ceiling = min(cap, base * 2 ** min(attempt, 60))
    return (rng or random).uniform(0, ceiling)


def dead_letter(row: OutboundEvent, error: str, now: datetime) -> None:
    """Dead-letter ``row``: never due again; ``next_attempt_at`` keeps when it stopped."""
    row.status = DeliveryStatus.DEAD
    row.last_error = error[:MAX_ERROR]
    row.next_attempt_at = now


class Outcomes:
    def __init__(self, db: Database, settings: GatewaySettings) -> None:
        self.db = db
        self.settings = settings

    def backoff(self, row: OutboundEvent, error: str, now: datetime) -> None:
        """A failed attempt: count it, record its error, and schedule the next one, or
        dead-letter the row once it is out of attempts."""
        row.attempts += 1
        if row.attempts >= self.settings.delivery_max_attempts:
            dead_letter(row, error, now)
            return
        row.last_error = error[:MAX_ERROR]
        row.status = DeliveryStatus.PENDING
        delay = full_jitter(
            row.attempts - 1,
            base=self.settings.delivery_backoff_base,
            cap=self.settings.delivery_backoff_max,
        )
        row.next_attempt_at = now + timedelta(seconds=delay)

    async def retry(
        self, rows: Sequence[OutboundEvent], error: str, *, attempted_at: datetime | None = None
    ) -> None:
        """Every row of a failed attempt backs off (or is dead-lettered)."""
        log.warning("delivery of %d event(s) failed: %s", len(rows), error)
        now = datetime.now(UTC)
        async with outbound_store.unreceipted(self.db, rows) as pending:
            for row in pending:
                if attempted_at is not None:
                    row.sent_at = attempted_at
                self.backoff(row, error, now)

    async def refused(
        self,
        rows: Sequence[OutboundEvent],
        culprit: str,
        error: str,
        *,
        attempted_at: datetime | None = None,
    ) -> None:
        """The peer refused the whole batch because of one event it named (403: we may
        not send it). That event is dead-lettered for good; the others were not judged
        and go again at once, so one forbidden event never holds back its batch."""
        log.warning("event %s dead-lettered: %s", culprit, error)
        now = datetime.now(UTC)
        async with outbound_store.unreceipted(self.db, rows) as pending:
            for row in pending:
                if row.event_id == culprit:
                    row.attempts += 1
                    if attempted_at is not None:
                        row.sent_at = attempted_at
                    dead_letter(row, error, now)
                else:
                    row.next_attempt_at = now
