"""Shipping labels: a 4 x 6 inch PDF page per parcel, printed on any thermal printer.

Each page carries the carrier and service, sender and recipient, a Code 128 barcode
of the tracking number with the number in clear below it, the piece's weight and the
shipment's chargeable weight, and a customs summary (incoterm, declared value, HS
code, value and origin per item) so a border officer can read the parcel without
opening its paperwork.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import inch, mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from ehub_logistics.carriers.base import Address, Customs, Parcel

PAGE = (4 * inch, 6 * inch)
MARGIN = 4 * mm
BARCODE_BAR_WIDTH = 0.36 * mm
BARCODE_HEIGHT = 18 * mm
MAX_CUSTOMS_LINES = 5
_CJK_FONT = "STSong-Light"  # Adobe CID font: names in Chinese and Japanese print too


@dataclass(frozen=True, slots=True)
class LabelData:
    shipment_id: str
    tracking_number: str
    carrier_name: str
    service_name: str
    shipper: Address
    recipient: Address
    parcels: tuple[Parcel, ...]
    chargeable_weight_kg: Decimal
    ship_date: date
    customs: Customs | None = None
    reference: str | None = None


def barcode(tracking_number: str) -> Code128:
    """The Code 128 symbol printed on the label (its ``value`` is what it encodes)."""
    return Code128(
        tracking_number, barWidth=BARCODE_BAR_WIDTH, barHeight=BARCODE_HEIGHT, humanReadable=False
    )


def _font(text: str, bold: bool = False) -> str:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        if _CJK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(_CJK_FONT))
        return _CJK_FONT
    return "Helvetica-Bold" if bold else "Helvetica"


def _text(c: Canvas, x: float, y: float, text: str, size: float, bold: bool = False) -> None:
    c.setFont(_font(text, bold), size)
    c.drawString(x, y, text)


def _address_lines(addr: Address) -> list[str]:
    lines = [v for v in (addr.name, addr.company) if v]
    lines += list(addr.street)
    locality = " ".join(v for v in (addr.postal_code, addr.city, addr.state) if v)
    lines.append(f"{locality}  {addr.country}".strip())
    if addr.phone:
        lines.append(f"Tel {addr.phone}")
    return lines


def _draw_page(c: Canvas, data: LabelData, piece: int) -> None:
    width, height = PAGE
    left, y = MARGIN, height - MARGIN - 12
    _text(c, left, y, data.carrier_name, 11, bold=True)
    y -= 13
    _text(c, left, y, f"{data.service_name}   piece {piece} of {len(data.parcels)}", 9)
    c.line(left, y - 4, width - MARGIN, y - 4)

    y -= 16
    _text(c, left, y, "FROM", 7, bold=True)
    for line in _address_lines(data.shipper):
        y -= 9
        _text(c, left, y, line, 8)
    y -= 14
    _text(c, left, y, "TO", 8, bold=True)
    for i, line in enumerate(_address_lines(data.recipient)):
        y -= 13
        _text(c, left, y, line, 11, bold=(i == 0))

    y -= 12 + BARCODE_HEIGHT
    symbol = barcode(data.tracking_number)
    symbol.drawOn(c, (width - symbol.width) / 2, y)
    y -= 14
    c.setFont("Helvetica-Bold", 13)
    c.drawCentredString(width / 2, y, data.tracking_number)

    parcel = data.parcels[piece - 1]
    y -= 16
    dims = f"{parcel.length_cm:g}x{parcel.width_cm:g}x{parcel.height_cm:g} cm"
    _text(c, left, y, f"Weight {parcel.weight_kg:g} kg   {dims}", 8)
    y -= 10
    _text(
        c, left, y, f"Chargeable {data.chargeable_weight_kg:g} kg   Ship date {data.ship_date}", 8
    )
    y -= 10
    _text(c, left, y, f"Ref {data.reference or '-'}   {data.shipment_id}", 7)
    if data.customs is not None:
        _draw_customs(c, data.customs, left, y - 6)


def _draw_customs(c: Canvas, customs: Customs, left: float, top: float) -> None:
    width = PAGE[0]
    c.line(left, top, width - MARGIN, top)
    y = top - 10
    total = f"{customs.total_value:.2f} {customs.currency}"
    _text(c, left, y, f"CUSTOMS  {customs.contents_type}  Incoterm {customs.incoterm}", 7, True)
    _text(c, width / 2 + 20, y, f"Value {total}", 7, bold=True)
    for item in customs.items[:MAX_CUSTOMS_LINES]:
        y -= 9
        line = (
            f"HS {item.hs_code}  {item.quantity} x {item.description[:28]}  "
            f"{item.value:.2f} {customs.currency}  origin {item.origin_country}"
        )
        _text(c, left, y, line, 6.5)
    hidden = len(customs.items) - MAX_CUSTOMS_LINES
    if hidden > 0:
        _text(c, left, y - 9, f"... and {hidden} more item(s) on the commercial invoice", 6.5)


def render_label(data: LabelData) -> bytes:
    """The label PDF, one page per parcel. Byte-for-byte stable for the same data."""
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=PAGE, invariant=True, pageCompression=0)
    c.setTitle(f"Label {data.tracking_number}")
    c.setAuthor("ehub logistics")
    for piece in range(1, len(data.parcels) + 1):
        _draw_page(c, data, piece)
        c.showPage()
    c.save()
    return buffer.getvalue()
