"""Labels: the PDF opens, reads right, and its barcode decodes to the tracking number.

The barcode is decoded from the PDF itself: the bars' positions and widths are read
from the page's content stream and run through an independent Code 128 decoder
(symbol table from ISO/IEC 15417), checksum included.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal as D
from itertools import pairwise

import pypdf
import pytest

from ehub_logistics.carriers.base import Address, Customs, CustomsItem, Parcel
from ehub_logistics.labels import LabelData, barcode, render_label

# Code 128 symbols 0..106 as bar/space widths in modules (ISO/IEC 15417, table 1).
CODE128 = """
212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 221312 231212
112232 122132 122231 113222 123122 123221 223211 221132 221231 213212 223112 312131
311222 321122 321221 312212 322112 322211 212123 212321 232121 111323 131123 131321
112313 132113 132311 211313 231113 231311 112133 112331 132131 113123 113321 133121
313121 211331 231131 213113 213311 213131 311123 311321 331121 312113 312311 332111
314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 112412 122114
122411 142112 142211 241211 221114 413111 241112 134111 111242 121142 121241 114212
124112 124211 411212 421112 421211 212141 214121 412121 111143 111341 131141 114113
114311 411113 411311 113141 114131 311141 411131 211412 211214 211232 2331112
""".split()  # noqa: SIM905 - the table reads as printed
SYMBOL = {pattern: value for value, pattern in enumerate(CODE128)}
BAR = re.compile(rb"n ([\d.]+) [\d.]+ ([\d.]+) [\d.]+ re f\*")


def decode_code128(widths: list[int]) -> str:
    assert "".join(map(str, widths[-7:])) == CODE128[106], "no stop pattern"
    symbols = [SYMBOL["".join(map(str, widths[i : i + 6]))] for i in range(0, len(widths) - 7, 6)]
    start, *data, check = symbols
    assert (start + sum(i * v for i, v in enumerate(data, 1))) % 103 == check, "bad checksum"
    code_set, out = {103: "A", 104: "B", 105: "C"}[start], []
    for v in data:
        if code_set == "C" and v < 100:
            out.append(f"{v:02d}")
        elif v == 99:
            code_set = "C"
        elif v == 100 and code_set != "B":
            code_set = "B"
        elif v == 101 and code_set != "A":
            code_set = "A"
        else:
            out.append(chr(v + 32) if code_set == "B" or v < 64 else chr(v - 64))
    return "".join(out)


def bars_from_pdf(pdf: bytes, page: int = 0) -> list[int]:
    stream = pypdf.PdfReader(io.BytesIO(pdf)).pages[page].get_contents().get_data()
    bars = sorted((float(x), float(w)) for x, w in BAR.findall(stream))
    module = min(w for _, w in bars)
    widths: list[int] = []
    for (x, w), (nx, _) in pairwise(bars):
        widths += [round(w / module), round((nx - x - w) / module)]
    widths.append(round(bars[-1][1] / module))
    return widths


def label(tracking: str = "EX1234567894", **over) -> LabelData:
    data = {
        "shipment_id": "shp_0123",
        "tracking_number": tracking,
        "carrier_name": "ehub Express (simulated courier)",
        "service_name": "Express Worldwide",
        "shipper": Address(
            "CA", "B3H 1A1", "Halifax", name="Maritime Lobster Co", street=("1 Harbour Rd",)
        ),
        "recipient": Address("CN", "518000", "Shenzhen", name="Li Lei", street=("8 Nanshan Ave",)),
        "parcels": (
            Parcel(D("1.5"), D("30"), D("20"), D("10")),
            Parcel(D("2"), D("10"), D("10"), D("10")),
        ),
        "chargeable_weight_kg": D("3.5"),
        "ship_date": date(2026, 3, 2),
        "customs": Customs(
            (
                CustomsItem("Live lobster", "030632", 2, D("45.00"), "CA"),
                CustomsItem("Maple syrup", "170220", 1, D("12.50"), "CA"),
            ),
            currency="USD",
            incoterm="DDP",
        ),
        "reference": "ord_42",
    }
    return LabelData(**(data | over))


def test_label_opens_with_one_page_per_parcel_and_reads_right():
    pdf = render_label(label())
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2
    text = reader.pages[1].extract_text()
    for expected in [
        "EX1234567894",
        "Express Worldwide",
        "piece 2 of 2",
        "Maritime Lobster Co",
        "Li Lei",
        "Shenzhen",
        "Weight 2 kg",
        "Chargeable 3.5 kg",
        "Incoterm DDP",
        "Value 102.50 USD",
        "HS 030632",
        "HS 170220",
        "origin CA",
    ]:
        assert expected in text, expected


@pytest.mark.parametrize("tracking", ["EX1234567894", "EE473124829CA", "CSLCA004211337"])
def test_barcode_in_the_pdf_decodes_to_the_tracking_number(tracking):
    pdf = render_label(label(tracking))
    assert decode_code128(bars_from_pdf(pdf)) == tracking
    assert barcode(tracking).value == tracking


def test_many_customs_items_are_summarised_not_overflowed():
    items = tuple(CustomsItem(f"Item {i}", "392690", 1, D("1.00"), "CN") for i in range(9))
    pdf = render_label(label(customs=Customs(items, "USD", "DAP")))
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Item 4" in text and "Item 5" not in text
    assert "and 4 more item(s)" in text


def test_non_latin_names_are_printed():
    pdf = render_label(
        label(recipient=Address("CN", "518000", "深圳", name="李雷", street=("南山",)))
    )
    assert "李雷" in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_the_same_label_renders_byte_for_byte_the_same():
    assert render_label(label()) == render_label(label())
