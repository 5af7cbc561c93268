"""Declaration bodies as the saga sends them (docs/orders.md), and the read schema.

Command bodies are validated here; a malformed one is not an error but a decision:
``rejected`` with reason code ``invalid_declaration`` and a reason naming the field
(:func:`invalid_reason`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ehub_customs.declarations.records import Records

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]


class _Body(BaseModel):
    # Bodies also carry order_id, step and whatever the saga adds later.
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeclarationLine(_Body):
    line_id: StrictInt | Annotated[str, StringConstraints(min_length=1, max_length=100)]
    hs_code: str
    description: str = Field("", max_length=500)
    quantity: StrictInt = Field(gt=0, le=1_000_000)
    unit_value: Amount
    origin_country: CountryCode
    unit_weight_kg: Annotated[Decimal, Field(gt=0, le=100_000, allow_inf_nan=False)] | None = None
    list_price: Amount | None = Field(
        None, description="The catalogue price of a unit, when the filer gives it"
    )

    @field_validator("hs_code")
    @classmethod
    def _hs_shape(cls, value: str) -> str:
        digits = value.replace(".", "").replace(" ", "")
        if not digits.isdigit() or len(digits) not in (6, 8, 10):
            raise ValueError("HS code must be 6, 8 or 10 digits (dots allowed)")
        return digits

    def stored(self) -> dict[str, Any]:
        """The line as kept with the declaration (amounts as decimal strings)."""
        return {
            "line_id": self.line_id,
            "hs_code": self.hs_code,
            "description": self.description,
            "quantity": self.quantity,
            "unit_value": str(self.unit_value),
            "origin_country": self.origin_country,
            **({"unit_weight_kg": str(self.unit_weight_kg)} if self.unit_weight_kg else {}),
            **({"list_price": str(self.list_price)} if self.list_price is not None else {}),
        }


Text = Annotated[str, StringConstraints(max_length=300)]


class PartyBody(_Body):
    """A party of the declaration, screened against the denied-party lists."""

    name: str = Field(min_length=1, max_length=300)
    company: Text | None = None
    street: list[Text] | Text | None = None
    city: Text | None = None
    postal_code: Text | None = None
    country: CountryCode | None = None

    @property
    def street_text(self) -> str:
        if isinstance(self.street, list):
            return " ".join(self.street)
        return self.street or ""

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class DocumentBody(_Body):
    """A document the declaration carries (a permit, a certificate): it lifts a
    restriction whose rule ``requires`` that type."""

    type: str = Field(pattern=r"^[a-z_]{3,40}$")
    reference: str = Field(min_length=1, max_length=100)
    hs: str | None = Field(None, pattern=r"^[0-9.]{2,13}$", description="HS prefix covered")


class AllowanceClaim(_Body):
    amount: Amount
    currency: CurrencyCode


class _Declaration(_Body):
    order_id: str = Field(min_length=1, max_length=100)
    currency: CurrencyCode
    lines: list[DeclarationLine] = Field(min_length=1, max_length=500)
    seller: PartyBody | None = None
    buyer: PartyBody | None = None
    consignee: PartyBody | None = None
    shipper: PartyBody | None = None
    documents: list[DocumentBody] = Field(default_factory=list, max_length=50)

    def parties(self) -> list[tuple[str, PartyBody]]:
        roles = ("seller", "shipper", "buyer", "consignee")
        return [(r, p) for r in roles if (p := getattr(self, r)) is not None]

    @property
    def goods_value(self) -> Decimal:
        return sum((line.unit_value * line.quantity for line in self.lines), Decimal(0))


class ImportDeclarationBody(_Declaration):
    """``FileImportDeclaration``: ``country`` is the destination."""

    # Three-record matching (declarations/records.py); optional: the saga sends none yet.
    records: Records | None = None

    country: CountryCode
    origin: CountryCode
    buyer_ref: str | None = Field(None, min_length=1, max_length=100)
    allowance: AllowanceClaim | None = None
    partner_id: str | None = Field(
        None, min_length=1, max_length=64, description="The marketplace that placed the order"
    )


class ExportDeclarationBody(_Declaration):
    """``FileExportDeclaration``: ``country`` is the origin."""

    country: CountryCode
    destination: CountryCode


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('lines', 0, 'quantity')`` → ``lines[0].quantity``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "body"


def invalid_reason(exc: ValidationError, limit: int = 5) -> str:
    """One line naming each bad field: ``lines[0].quantity: Input should be ...``."""
    errors = exc.errors(include_url=False)
    # A union (line_id) reports one error per member; name the field once.
    seen: dict[str, str] = {}
    for err in errors:
        loc, msg = tuple(err["loc"]), err["msg"]
        if loc and loc[-1] in ("int", "str", "constrained-str"):
            loc, msg = loc[:-1], "Input should be a string or an integer"
        seen.setdefault(field_path(loc), msg)
    parts = [f"{path}: {msg}" for path, msg in list(seen.items())[:limit]]
    more = len(seen) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "invalid declaration: " + "; ".join(parts)


class HitRead(BaseModel):
    category: str = Field(description="goods | party | value | split")
    outcome: str = Field(
        description="prohibited | restricted | match | review | undervalued | split | "
        "mismatch (these decide) or satisfied | noted | whitelisted | awaiting_waybill | "
        "matched (recorded only)"
    )
    rule: str
    reason: str
    source: str
    verified: bool
    line_id: str | None = None
    subject: str | None = None
    entry: str | None = None
    score: float | None = None


class DeclarationRead(BaseModel):
    id: str
    order_id: str
    phase: str = Field(description="import | export | refund (a returned order's tax claim)")
    country: str = Field(description="import: the destination; export: the origin")
    counterpart_country: str = Field(description="import: the origin; export: the destination")
    decision: str = Field(description="cleared | held | inspect | rejected")
    reason_code: str
    reason: str
    decided_by: str
    filed_at: datetime
    decided_at: datetime
    currency: str
    total_value: str
    lines: list[dict[str, Any]]
    allowance_reserved: bool
    claimed_by: str | None = None
    hits: list[HitRead] = Field(default_factory=list, description="The screening's hits")
