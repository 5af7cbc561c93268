"""Three-record matching of a cross-border retail import: order, payment and waybill.

China releases a cross-border retail import only when the platform's order, the payment
company's payment record and the carrier's waybill agree (the "three records", 三单
对碰). An import declaration may carry them (``records``): the order (amounts, the
buyer's identity hash, the consignee), the payment (amount paid, the payer's identity
hash) and, when the carrier already booked it, the waybill (tracking number, consignee).
They disagree when

- the order's goods differ from the declared lines, or the amount paid from the order's
  total, by more than 0.01 in the declaration currency;
- the payer is not the buyer (identity hashes differ);
- the waybill's consignee is not the order's (names compared normalised).

A disagreement holds the declaration (``held``, ``records_mismatch``, the reason naming
each mismatching field) for an officer. A waybill not known at pre-declaration completes
the matching when it arrives (:func:`attach_waybill`), without a new saga command: the
declaration stays as screened until then, and is held then if the records disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_customs.declarations.models import CLEARED, HELD, IMPORT, Declaration
from ehub_customs.screening.decide import Hit
from ehub_customs.screening.lists import normalise
from ehub_customs.screening.models import ScreeningHit

RULE = "cn.cbec.three_records"
REASON_CODE = "records_mismatch"
TOLERANCE = Decimal("0.01")
SOURCE = (
    "GACC Announcement [2018] No. 194 on the supervision of cross-border e-commerce retail "
    "imports and exports (海关总署公告2018年第194号): platforms, payment and logistics "
    "companies transmit the order, payment and waybill data to customs, which compares them "
    "before release (cited from memory: unverified)"
)
KIND = "three_records"  # the documents entry that keeps the records with the declaration

Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]
IdHash = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_:+/=-]+$")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderRecord(_Record):
    goods: Amount
    shipping: Amount = Decimal(0)
    tax: Amount = Decimal(0)
    total: Amount
    buyer_id_hash: IdHash
    consignee: Name


class PaymentRecord(_Record):
    amount: Amount
    payer_id_hash: IdHash
    reference: str | None = Field(None, max_length=100)


class WaybillRecord(_Record):
    tracking_number: str = Field(min_length=1, max_length=100)
    consignee: Name


class Records(_Record):
    """The three records; amounts in the declaration currency."""

    order: OrderRecord
    payment: PaymentRecord
    waybill: WaybillRecord | None = None

    def stored(self) -> dict[str, Any]:
        return {"type": KIND, **self.model_dump(mode="json", exclude_none=True)}


@dataclass(frozen=True, slots=True)
class Mismatch:
    field: str
    detail: str
    category: str  # value | party (the screening hit categories)


def mismatches(records: Records, declared_goods: Decimal, currency: str) -> list[Mismatch]:
    """Every field on which the records disagree (empty: they agree so far)."""
    o, p, w = records.order, records.payment, records.waybill
    out = []
    if abs(o.goods - declared_goods) > TOLERANCE:
        out.append(
            Mismatch(
                "records.order.goods",
                f"the order's goods {o.goods} {currency} differ from the declared "
                f"{declared_goods} {currency}",
                "value",
            )
        )
    if abs(p.amount - o.total) > TOLERANCE:
        out.append(
            Mismatch(
                "records.payment.amount",
                f"the amount paid {p.amount} {currency} differs from the order's total "
                f"{o.total} {currency}",
                "value",
            )
        )
    if p.payer_id_hash != o.buyer_id_hash:
        out.append(Mismatch("records.payment.payer_id_hash", "the payer is not the buyer", "party"))
    if w is not None and normalise(w.consignee) != normalise(o.consignee):
        out.append(
            Mismatch(
                "records.waybill.consignee",
                f"the waybill's consignee {w.consignee!r} is not the order's {o.consignee!r}",
                "party",
            )
        )
    return out


def reason(found: list[Mismatch]) -> str:
    fields = ", ".join(m.field for m in found)
    details = "; ".join(m.detail for m in found)
    return f"order, payment and waybill disagree on {fields}: {details} (rule {RULE})"


def hits(found: list[Mismatch]) -> list[Hit]:
    return [
        Hit(m.category, "mismatch", RULE, f"{m.field}: {m.detail}", SOURCE, False)  # type: ignore[arg-type]
        for m in found
    ]


def pending_hit() -> Hit:
    return Hit(
        "value",
        "awaiting_waybill",
        RULE,
        "order and payment agree; the waybill is matched when the carrier books it",
        SOURCE,
        False,
    )


def matched_hit(waybill: WaybillRecord) -> Hit:
    return Hit("value", "matched", RULE, f"waybill {waybill.tracking_number} agrees", SOURCE, False)


def stored_records(d: Declaration) -> Records | None:
    for doc in d.documents or ():
        if doc.get("type") == KIND:
            return Records.model_validate({k: v for k, v in doc.items() if k != "type"})
    return None


async def attach_waybill(
    session: AsyncSession,
    *,
    order_id: str,
    waybill: WaybillRecord,
    now: datetime,
) -> Declaration | None:
    """Complete the matching of an order's import declaration with its waybill.

    Idempotent: the same waybill again changes nothing. Returns the declaration, or
    None when the order has no import declaration carrying records. A cleared
    declaration whose records now disagree is held (``records_mismatch``); a held or
    inspected one keeps its state and gains the hits; a rejected one only records them.
    """
    d = await session.scalar(
        select(Declaration)
        .where(Declaration.order_id == order_id, Declaration.phase == IMPORT)
        .with_for_update()
    )
    records = stored_records(d) if d is not None else None
    if d is None or records is None:
        return None
    if records.waybill == waybill:
        return d
    updated = records.model_copy(update={"waybill": waybill})
    d.documents = [
        updated.stored() if doc.get("type") == KIND else doc for doc in d.documents or ()
    ]
    found = mismatches(updated, d.total_value, d.currency)
    new_hits = hits(found) or [matched_hit(waybill)]
    if found and d.decision == CLEARED:
        d.decision, d.reason_code, d.reason = HELD, REASON_CODE, reason(found)
        d.decided_by, d.decided_at = "rules", now
    elif found and d.decision == HELD:
        d.reason = f"{d.reason}; {reason(found)}"
    session.add_all(_rows(d.id, new_hits, now))
    await session.flush()
    return d


def _rows(declaration_id: str, found: list[Hit], now: datetime) -> list[ScreeningHit]:
    from ehub_customs.screening.service import hit_rows

    return hit_rows(declaration_id, found, now)
