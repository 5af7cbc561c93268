"""The decision rule: a pure function of (declaration facts, screening data, history).

``screen()`` reads nothing else (no database, no clock): the saga's command handler and
any direct caller get the same decision for the same inputs, and tests call it in
process. What the hits mean:

| hit | outcome | decision |
| --- | --- | --- |
| a prohibited good | ``prohibited`` | ``rejected`` (``prohibited_goods``) |
| a denied party, score ≥ match | ``match`` | ``rejected`` (``denied_party_match``) |
| a restricted good without its document | ``restricted`` | ``held`` (``restricted_goods``) |
| a denied party (review ≤ score < match), an address | ``review`` | ``held`` (review) |
| a line below its reference value | ``undervalued`` | ``held`` (``undervalued``) |
| a split-consignment pattern | ``split`` | ``held`` (``split_consignment``) |
| none | — | ``cleared`` (``screened_clean``) |

Outcomes that do not count: ``satisfied`` (a restricted good whose document the
declaration carries), ``noted`` (a restricted good on a hub whose
``EHUB_SCREENING_RESTRICTED`` is ``note``), ``whitelisted`` (a party hit an officer
cleared before for that subject and list entry). A party review is held with the
reason code ``denied_party_review``.

The data it reads and writes is in :mod:`~ehub_customs.screening.facts`, the rules in
:mod:`~ehub_customs.screening.checks`; this module adds their hits up to a decision
(:func:`combine`), and every name of the three is importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from ehub_customs.screening.checks import (
    Rate,
    book_rate,
    de_minimis,
    screen_goods,
    screen_parties,
    screen_split,
    screen_values,
)
from ehub_customs.screening.data import ScreeningData
from ehub_customs.screening.facts import (
    CLEAN,
    CLEARED,
    COUNTING,
    HELD,
    REASONS,
    REJECTED,
    Document,
    Facts,
    History,
    Hit,
    Line,
    Party,
    RestrictedMode,
    Screening,
)
from ehub_customs.tariffs.rulebook import RuleBook

__all__ = [
    "CLEAN",
    "CLEARED",
    "COUNTING",
    "HELD",
    "REASONS",
    "REJECTED",
    "Document",
    "Facts",
    "History",
    "Hit",
    "Line",
    "Party",
    "Rate",
    "RestrictedMode",
    "Screening",
    "book_rate",
    "combine",
    "de_minimis",
    "screen",
    "screen_goods",
    "screen_parties",
    "screen_split",
    "screen_values",
]


def combine(hits: Sequence[Hit], data: ScreeningData) -> Screening:
    counted = [h for h in hits if h.counts]
    if not counted:
        notes = [h for h in hits if not h.counts]
        reason = f"no risk rule hit ({data.describe()})"
        if notes:
            reason += "; " + "; ".join(h.reason for h in notes)
        return Screening(CLEARED, CLEAN, reason, tuple(hits))
    for outcome, code, decision in REASONS:
        if any(h.outcome == outcome for h in counted):
            reason = "; ".join(f"{h.reason} (rule {h.rule}; source: {h.source})" for h in counted)
            return Screening(decision, code, reason, tuple(hits))
    raise AssertionError("unreachable")


def screen(
    facts: Facts,
    data: ScreeningData,
    book: RuleBook,
    *,
    history: History = History(),
    whitelist: frozenset[tuple[str, str]] = frozenset(),
    restricted: RestrictedMode = "hold",
) -> Screening:
    """Decide a declaration from its facts alone (see the module's table)."""
    rate = book_rate(book)
    hits = [
        *screen_goods(facts, data, restricted),
        *screen_parties(facts, data, whitelist),
        *screen_values(facts, data, rate),
        *screen_split(facts, data, history, book, rate),
    ]
    return combine(hits, data)
