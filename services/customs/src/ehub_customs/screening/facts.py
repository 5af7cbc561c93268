"""What the screening decision reads and writes: a declaration's :class:`Facts` (lines,
parties, documents), the consignee's :class:`History`, each rule's :class:`Hit` and the
:class:`Screening` they add up to, with the decisions and reason codes
(:data:`REASONS`). Importable from :mod:`ehub_customs.screening.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from ehub_customs.screening.lists import normalise

CLEARED, HELD, REJECTED = "cleared", "held", "rejected"
CLEAN = "screened_clean"

# reason codes, strongest first: the first present names the decision
REASONS: tuple[tuple[str, str, str], ...] = (
    ("prohibited", "prohibited_goods", REJECTED),
    ("match", "denied_party_match", REJECTED),
    ("restricted", "restricted_goods", HELD),
    ("review", "denied_party_review", HELD),
    ("undervalued", "undervalued", HELD),
    ("split", "split_consignment", HELD),
)
COUNTING = frozenset(o for o, _, _ in REASONS)

RestrictedMode = Literal["hold", "note"]


@dataclass(frozen=True, slots=True)
class Line:
    line_id: str
    hs_code: str  # digits
    description: str
    quantity: int
    unit_value: Decimal
    origin_country: str
    unit_weight_kg: Decimal | None = None
    list_price: Decimal | None = None  # the catalogue price, when the filer gives it


@dataclass(frozen=True, slots=True)
class Party:
    role: str  # seller, buyer, consignee, shipper
    name: str
    street: str = ""
    city: str = ""
    country: str = ""

    @property
    def key(self) -> str:
        """Who the whitelist knows: the normalised name."""
        return normalise(self.name)


@dataclass(frozen=True, slots=True)
class Document:
    type: str  # quarantine_permit, health_certificate, import_licence, ...
    reference: str
    hs: str | None = None  # the HS prefix it covers (digits); None: the whole declaration


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rule reads of a declaration."""

    phase: Literal["import", "export"]
    country: str  # the declaring hub: import → destination, export → origin
    counterpart: str
    currency: str
    on: date
    lines: tuple[Line, ...]
    parties: tuple[Party, ...] = ()
    documents: tuple[Document, ...] = ()

    @property
    def value(self) -> Decimal:
        return sum((x.unit_value * x.quantity for x in self.lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class History:
    """The same consignee's earlier parcels into the same country within the policy's
    window: their goods values and currencies."""

    parcels: tuple[tuple[Decimal, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    category: Literal["goods", "party", "value", "split"]
    outcome: str
    rule: str  # the rule id, or list:entry for a party
    reason: str
    source: str  # title, URL
    verified: bool
    line_id: str | None = None
    subject: str | None = None  # the party's normalised name
    entry: str | None = None  # list:entry id
    score: float | None = None

    @property
    def counts(self) -> bool:
        return self.outcome in COUNTING


@dataclass(frozen=True, slots=True)
class Screening:
    decision: str
    reason_code: str
    reason: str
    hits: tuple[Hit, ...] = field(default_factory=tuple)
