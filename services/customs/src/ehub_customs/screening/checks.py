"""The screening rules, each evaluated on its own: goods (:func:`screen_goods`), parties
(:func:`screen_parties`), declared values (:func:`screen_values`) and split consignments
(:func:`screen_split`). Each returns its hits; :func:`ehub_customs.screening.decide.screen`
adds them up to a decision. Pure functions: no database, no clock. Importable from
:mod:`ehub_customs.screening.decide`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache

from ehub_core.errors import DomainError
from ehub_customs.screening.data import ScreeningData
from ehub_customs.screening.facts import Document, Facts, History, Hit, Line, RestrictedMode
from ehub_customs.screening.files import GoodsRule, ReferenceValue
from ehub_customs.tariffs.rulebook import RuleBook

Rate = Callable[[str, str, date], Decimal]


def book_rate(book: RuleBook) -> Rate:
    def rate(from_ccy: str, to_ccy: str, on: date) -> Decimal:
        return Decimal(1) if from_ccy == to_ccy else book.fx.rate(from_ccy, to_ccy, on).rate

    return rate


def _source(title: str, url: str | None) -> str:
    return f"{title}, {url}" if url else title


@lru_cache(maxsize=4096)
def _keyword(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])")


def _goods_hit(rule: GoodsRule, line: Line) -> str | None:
    """What in the line hits the rule (for the reason), or None. A rule hits a line by
    its HS prefix, a keyword of its description or its origin; a ``keywords`` rule only
    by a keyword (within its HS prefixes, if it has some)."""
    hs = next((p for p in rule.hs if line.hs_code.startswith(p)), None)
    text = line.description.lower()
    word = next((k for k in rule.keywords if _keyword(k).search(text)), None)
    if rule.match == "keywords":
        if word is None or (rule.hs and hs is None):
            return None
        return f"description names {word!r}"
    if hs is not None:
        return f"HS {line.hs_code} under {hs}"
    if word is not None:
        return f"description names {word!r}"
    if line.origin_country in rule.origins:
        return f"origin {line.origin_country}"
    return None


def _document(facts: Facts, kind: str, line: Line) -> Document | None:
    return next(
        (
            d
            for d in facts.documents
            if d.type == kind and (d.hs is None or line.hs_code.startswith(d.hs))
        ),
        None,
    )


def screen_goods(facts: Facts, data: ScreeningData, mode: RestrictedMode) -> list[Hit]:
    hits: list[Hit] = []
    rules = [r for r in data.goods(facts.country, facts.on) if r.phase in (facts.phase, "both")]
    for line in facts.lines:
        for rule in rules:
            what = _goods_hit(rule, line)
            if what is None:
                continue
            src = _source(rule.source.title, rule.source.url)
            text = f"line {line.line_id} ({what}) {rule.kind} in {facts.country}: {rule.reason}"
            outcome: str = rule.kind
            if rule.kind == "restricted" and rule.requires:
                doc = _document(facts, rule.requires, line)
                if doc is not None:
                    outcome = "satisfied"
                    text += f"; {rule.requires} {doc.reference} carried"
                else:
                    text += f"; needs a {rule.requires}"
                    if mode == "note":
                        outcome = "noted"
            hits.append(Hit("goods", outcome, rule.id, text, src, rule.verified, line.line_id))
    return hits


def screen_parties(
    facts: Facts, data: ScreeningData, whitelist: frozenset[tuple[str, str]]
) -> list[Hit]:
    hits: list[Hit] = []
    match_score = data.policy.parties.match_score
    sources = {s.id: s for s in data.lists}
    for party in facts.parties:
        found = data.parties.screen_name(party.name) if party.name.strip() else []
        if party.street.strip():
            found += data.parties.screen_address(party.street, party.city)
        for h in found:
            entry = h.entry
            ls = sources.get(entry.list_id)
            src = _source(ls.source.title, ls.source.url) if ls else entry.list_id
            if h.on == "name" and h.score >= match_score:
                outcome = "match"  # never whitelisted: the whitelist clears fuzzy hits
            elif (party.key, entry.key) in whitelist:
                outcome = "whitelisted"
            else:
                outcome = "review"
            programs = "/".join(entry.programs) or "-"
            text = (
                f"{party.role} {party.name!r} {h.on} scores {h.score:g} against "
                f"{entry.key} {entry.name!r} ({entry.kind}, {programs}; matched {h.matched_name!r})"
            )
            if outcome == "whitelisted":
                text += "; cleared before by an officer (whitelist)"
            hits.append(
                Hit(
                    "party",
                    outcome,
                    entry.key,
                    text,
                    src,
                    bool(ls and ls.verified),
                    subject=party.key,
                    entry=entry.key,
                    score=h.score,
                )
            )
    return hits


def _reference(refs: Sequence[ReferenceValue], hs: str) -> tuple[ReferenceValue, str] | None:
    best: tuple[ReferenceValue, str] | None = None
    for r in refs:
        for p in r.hs:
            if hs.startswith(p) and (best is None or len(p) > len(best[1])):
                best = (r, p)
    return best


def screen_values(facts: Facts, data: ScreeningData, rate: Rate) -> list[Hit]:
    hits: list[Hit] = []
    keep = Decimal(1) - data.policy.valuation.max_discount
    refs = data.references(facts.country, facts.on)
    for line in facts.lines:
        if line.list_price is not None and line.unit_value < line.list_price * keep:
            hits.append(
                Hit(
                    "value",
                    "undervalued",
                    "policy.valuation.catalogue",
                    f"line {line.line_id} declared at {line.unit_value} {facts.currency} a unit, "
                    f"below {keep:.0%} of its catalogue price {line.list_price}",
                    "screening policy.yaml valuation.max_discount",
                    True,
                    line.line_id,
                )
            )
            continue
        found = _reference(refs, line.hs_code)
        if found is None:
            continue
        ref, _ = found
        if ref.per == "kg":
            if not line.unit_weight_kg:
                continue
            value = line.unit_value / line.unit_weight_kg
        else:
            value = line.unit_value
        try:
            value = value * rate(facts.currency, ref.currency, facts.on)
        except DomainError:
            continue
        floor = ref.min_value * keep
        if value < floor:
            hits.append(
                Hit(
                    "value",
                    "undervalued",
                    ref.id,
                    f"line {line.line_id} declared at {value:.2f} {ref.currency} per {ref.per}, "
                    f"below {keep:.0%} of the reference {ref.min_value} {ref.currency} per "
                    f"{ref.per} for HS {'/'.join(ref.hs)}",
                    _source(ref.source.title, ref.source.url),
                    ref.verified,
                    line.line_id,
                )
            )
    return hits


def de_minimis(book: RuleBook, facts: Facts, rate: Rate) -> tuple[Decimal, str] | None:
    """The destination's highest de minimis in the declaration's currency, and its rule."""
    rules = book.countries.get(facts.country)
    if rules is None:
        return None
    try:
        view = rules.view(facts.on)
    except DomainError:
        return None
    best: tuple[Decimal, str] | None = None
    for t in view.thresholds:
        if t.origins and facts.counterpart not in t.origins:
            continue
        try:
            limit = t.max_value * rate(t.currency, facts.currency, facts.on)
        except DomainError:
            continue
        if best is None or limit > best[0]:
            best = (limit, t.ref.id)
    return best


def screen_split(
    facts: Facts, data: ScreeningData, history: History, book: RuleBook, rate: Rate
) -> list[Hit]:
    if facts.phase != "import":
        return []
    found = de_minimis(book, facts, rate)
    if found is None:
        return []
    limit, rule_id = found
    value = facts.value
    if value > limit:
        return []
    small: list[Decimal] = []
    for amount, ccy in history.parcels:
        try:
            v = amount * rate(ccy, facts.currency, facts.on)
        except DomainError:
            continue
        if v <= limit:
            small.append(v)
    policy = data.policy.split
    total = value + sum(small, Decimal(0))
    if len(small) + 1 < policy.min_parcels or total <= limit:
        return []
    return [
        Hit(
            "split",
            "split",
            "policy.split",
            f"the consignee's {len(small) + 1} parcels into {facts.country} within "
            f"{policy.window_hours} h are each at or below the de minimis of {limit:.2f} "
            f"{facts.currency} ({rule_id}) but total {total:.2f} {facts.currency}",
            "screening policy.yaml split (window, min_parcels); 19 CFR 10.151",
            True,
        )
    ]
