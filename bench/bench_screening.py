"""Decisions per second of the pure screening rule (services/customs, screening/decide.py),
in process: a clean parcel (2 lines, a consignee and a seller screened against the bundled
list extract) and the same with the lists repeated to about the size of the full OFAC SDN
list with aliases (~40,000 names). Run: .venv/bin/python bench/bench_screening.py"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from decimal import Decimal

from ehub_customs.screening.data import load_screening
from ehub_customs.screening.decide import Facts, Line, Party, screen
from ehub_customs.screening.lists import ListedParty, PartyIndex
from ehub_customs.tariffs.loader import load_rulebook

FACTS = Facts(
    "import",
    "CN",
    "CA",
    "CAD",
    date(2026, 11, 26),
    (
        Line("1", "030632", "Live Atlantic lobster, 1 lb", 10, Decimal("45.00"), "CA"),
        Line("2", "610910", "cotton T-shirt", 2, Decimal("20.00"), "CA"),
    ),
    (
        Party("consignee", "Li Wei", "88 Century Avenue", "Shanghai", "CN"),
        Party("seller", "Atlantic Lobster Co.", "1 Wharf Road", "Halifax", "CA"),
    ),
)


def rate(data, book, seconds: float = 2.0) -> float:
    screen(FACTS, data, book, restricted="note")
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            screen(FACTS, data, book, restricted="note")
        n += 100
    return n / elapsed


def main() -> None:
    book, data = load_rulebook(), load_screening()
    small = rate(data, book)
    print(f"bundled extract ({len(data.parties)} entries): {small:,.0f} decisions/s")
    entries: list[ListedParty] = []
    for i in range(400):  # 32 entries x 400 = 12,800 entries, ~18,400 names
        entries += [
            replace(e, entry_id=f"{e.entry_id}-{i}", name=f"{e.name} {i}")
            for e in data.parties.entries
        ]
    p = data.policy.parties
    big = replace(
        data,
        parties=PartyIndex(entries, review_score=p.review_score, min_alias_chars=p.min_alias_chars),
    )
    names, per_second = len(big.parties._names), rate(big, book)
    print(f"{len(entries):,} entries ({names:,} names): {per_second:,.0f} decisions/s")


if __name__ == "__main__":
    main()
