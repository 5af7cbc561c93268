"""Denied-party lists: loaders for the official formats and the fuzzy matcher.

Formats:

- **OFAC SDN, legacy CSV** (``sdn.csv``, ``alt.csv``, ``add.csv``; no header row; ``-0-``
  is null; layout in OFAC's ``dat_spec.txt``): ``sdn.csv`` is ``ent_num, SDN_Name,
  SDN_Type, Program, Title, Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner,
  Remarks`` (programs joined by ``] [``); ``alt.csv`` is ``ent_num, alt_num, alt_type,
  alt_name, alt_remarks``; ``add.csv`` is ``ent_num, add_num, address,
  city/state/postal code, country, add_remarks``.
- **UN Security Council Consolidated List, XML** (``CONSOLIDATED_LIST`` with
  ``INDIVIDUALS/INDIVIDUAL`` and ``ENTITIES/ENTITY``: ``DATAID``, ``FIRST_NAME`` ...
  ``FOURTH_NAME``, ``UN_LIST_TYPE``, ``REFERENCE_NUMBER``, ``*_ALIAS/ALIAS_NAME`` with a
  ``QUALITY``, ``*_ADDRESS/STREET|CITY|COUNTRY``).

Matching (:class:`PartyIndex`): names are normalised (:func:`normalise`: diacritics,
case, punctuation and common legal suffixes removed) and compared with rapidfuzz's
``token_sort_ratio`` (word order ignored). A subject holding every word of a listed name
of two or more words, plus others ("BANK MASKAN TEHRAN BRANCH"), scores the
``token_set_ratio`` capped at 94: a human looks, it is never rejected on that alone. The
other direction (a subject that is a part of a listed name, "LI WEI" in "LI WEI DONG")
gets no such credit: ``token_set_ratio`` would score it 100.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

NULL = "-0-"
CONTAINED_CAP = 94.0

# Legal-form words dropped before comparing: "GALAX TRADING CO., LTD." is "GALAX TRADING".
LEGAL_SUFFIXES = frozenset(
    [
        "co",
        "company",
        "corp",
        "corporation",
        "inc",
        "incorporated",
        "ltd",
        "ltda",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "gmbh",
        "ag",
        "kg",
        "bv",
        "nv",
        "oy",
        "ab",
        "jsc",
        "ojsc",
        "pjsc",
        "cjsc",
        "ooo",
        "oao",
        "zao",
        "pte",
        "pty",
        "sdn",
        "bhd",
        "kk",
        "fze",
        "fzco",
        "fzc",
        "est",
    ]
)
_APOSTROPHES = re.compile("[.'`\u2019\u00b4]")  # dots, apostrophes, acute accent
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(name: str) -> str:
    """``"Banco Nacional de Cuba, S.A."`` → ``"banco nacional de cuba"``."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _APOSTROPHES.sub("", text)
    tokens = _NON_WORD.sub(" ", text).split()
    kept = [t for t in tokens if t not in LEGAL_SUFFIXES]
    return " ".join(kept or tokens)


@dataclass(frozen=True, slots=True)
class ListedAddress:
    street: str
    city: str
    country: str

    def text(self) -> str:
        return normalise(f"{self.street} {self.city}")


@dataclass(frozen=True, slots=True)
class ListedParty:
    """One entry of a denied-party list."""

    list_id: str  # ofac-sdn, un-consolidated
    entry_id: str  # the list's own id: OFAC ent_num, UN reference number
    name: str
    kind: str  # individual, entity, vessel, aircraft
    programs: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    addresses: tuple[ListedAddress, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.list_id}:{self.entry_id}"


@dataclass(frozen=True, slots=True)
class PartyHit:
    entry: ListedParty
    matched_name: str  # the listed name or alias that scored
    score: float
    on: str  # name | address


# -- loaders -------------------------------------------------------------------------


def _value(raw: str | None) -> str | None:
    if raw is None:
        return None
    v = raw.strip()
    return None if v in ("", NULL) else v


def _rows(text: str) -> Iterable[list[str]]:
    for row in csv.reader(io.StringIO(text.replace("\x1a", ""))):
        if row and any(c.strip() for c in row):
            yield row


class ListFormatError(ValueError):
    """A list file that does not have the official layout."""


def load_ofac_csv(
    sdn: str, alt: str | None = None, add: str | None = None, *, list_id: str = "ofac-sdn"
) -> list[ListedParty]:
    """Entries of OFAC's legacy CSV files (the texts of sdn.csv, alt.csv, add.csv)."""
    aliases: dict[str, list[str]] = defaultdict(list)
    for row in _rows(alt or ""):
        if len(row) < 4:
            raise ListFormatError(f"alt.csv: a row has {len(row)} columns, expected 5")
        name = _value(row[3])
        if name:
            aliases[row[0].strip()].append(name)
    addresses: dict[str, list[ListedAddress]] = defaultdict(list)
    for row in _rows(add or ""):
        if len(row) < 5:
            raise ListFormatError(f"add.csv: a row has {len(row)} columns, expected 6")
        street, city, country = (_value(row[i]) or "" for i in (2, 3, 4))
        if street or city:
            addresses[row[0].strip()].append(ListedAddress(street, city, country))
    out = []
    for row in _rows(sdn):
        if len(row) < 4:
            raise ListFormatError(f"sdn.csv: a row has {len(row)} columns, expected 12")
        ent, name = row[0].strip(), _value(row[1])
        if not ent.isdigit():
            raise ListFormatError(f"sdn.csv: ent_num {ent[:20]!r} is not a number")
        if not name:
            continue
        programs = tuple(p.strip() for p in (_value(row[3]) or "").split("] [") if p.strip())
        out.append(
            ListedParty(
                list_id=list_id,
                entry_id=ent,
                name=name,
                kind=_value(row[2]) or "entity",
                programs=programs,
                aliases=tuple(aliases.get(ent, ())),
                addresses=tuple(addresses.get(ent, ())),
            )
        )
    return out


def _text(el: ET.Element, tag: str) -> str:
    found = el.find(tag)
    return (found.text or "").strip() if found is not None and found.text else ""


def load_un_xml(data: bytes, *, list_id: str = "un-consolidated") -> list[ListedParty]:
    """Entries of the UN Security Council Consolidated List (XML)."""
    head = data[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ListFormatError("consolidated.xml: DTDs and entities are not accepted")
    try:
        root = ET.fromstring(data)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError as exc:
        raise ListFormatError(f"consolidated.xml: {exc}") from exc
    if root.tag != "CONSOLIDATED_LIST":
        raise ListFormatError(f"consolidated.xml: root is {root.tag!r}, not CONSOLIDATED_LIST")
    out = []
    for kind, path, prefix in (
        ("individual", "INDIVIDUALS/INDIVIDUAL", "INDIVIDUAL"),
        ("entity", "ENTITIES/ENTITY", "ENTITY"),
    ):
        for el in root.iterfind(path):
            parts = [
                _text(el, t) for t in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")
            ]
            name = " ".join(p for p in parts if p)
            ref = _text(el, "REFERENCE_NUMBER") or _text(el, "DATAID")
            if not name or not ref:
                continue
            aliases = tuple(
                _text(a, "ALIAS_NAME")
                for a in el.iterfind(f"{prefix}_ALIAS")
                if _text(a, "ALIAS_NAME") and _text(a, "QUALITY").lower() != "low"
            )
            addresses = tuple(
                ListedAddress(_text(a, "STREET"), _text(a, "CITY"), _text(a, "COUNTRY"))
                for a in el.iterfind(f"{prefix}_ADDRESS")
                if _text(a, "STREET") or _text(a, "CITY")
            )
            program = _text(el, "UN_LIST_TYPE")
            out.append(
                ListedParty(
                    list_id=list_id,
                    entry_id=ref,
                    name=name,
                    kind=kind,
                    programs=(program,) if program else (),
                    aliases=aliases,
                    addresses=addresses,
                )
            )
    return out


# -- matching ------------------------------------------------------------------------


def _sort(text: str) -> str:
    return " ".join(sorted(text.split()))


class PartyIndex:
    """Every name and alias of the loaded lists, normalised once, searched fast."""

    def __init__(
        self,
        entries: Sequence[ListedParty],
        *,
        review_score: float,
        min_alias_chars: int = 4,
        address_score: float = 90.0,
    ) -> None:
        self.entries = list(entries)
        self.review_score = review_score
        self.address_score = address_score
        self._names: list[str] = []  # normalised
        self._sorted: list[str] = []  # normalised, words sorted: ratio = token_sort_ratio
        self._owners: list[tuple[int, str]] = []  # (entry index, raw name)
        self._by_token: dict[str, list[int]] = defaultdict(list)  # token -> name indexes
        self._tokens: list[frozenset[str]] = []
        self._addresses: list[str] = []
        self._address_owners: list[int] = []
        for i, e in enumerate(self.entries):
            for n, raw in enumerate((e.name, *e.aliases)):
                norm = normalise(raw)
                if not norm or (n > 0 and len(norm.replace(" ", "")) < min_alias_chars):
                    continue
                idx = len(self._names)
                self._names.append(norm)
                self._sorted.append(_sort(norm))
                self._owners.append((i, raw))
                toks = frozenset(norm.split())
                self._tokens.append(toks)
                for t in toks:
                    self._by_token[t].append(idx)
            for a in e.addresses:
                if a.street:
                    self._addresses.append(_sort(a.text()))
                    self._address_owners.append(i)

    def __len__(self) -> int:
        return len(self.entries)

    def screen_name(self, name: str) -> list[PartyHit]:
        """Listed names scoring at least the review score, best first, one per entry."""
        subject = normalise(name)
        if not subject:
            return []
        scores: dict[int, float] = {}
        # token_sort_ratio is ratio on sorted words: sorted once here and at load time.
        for _, score, idx in process.extract(
            _sort(subject),
            self._sorted,
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=self.review_score,
            limit=None,
        ):
            scores[idx] = max(scores.get(idx, 0.0), float(score))
        subject_tokens = frozenset(subject.split())
        seen: set[int] = set()
        for t in subject_tokens:
            for idx in self._by_token.get(t, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                listed = self._tokens[idx]
                if len(listed) >= 2 and listed < subject_tokens:
                    contained = min(CONTAINED_CAP, fuzz.token_set_ratio(subject, self._names[idx]))
                    if contained >= self.review_score:
                        scores[idx] = max(scores.get(idx, 0.0), contained)
        best: dict[int, PartyHit] = {}
        for idx, score in scores.items():
            entry_i, raw = self._owners[idx]
            hit = best.get(entry_i)
            if hit is None or score > hit.score:
                best[entry_i] = PartyHit(self.entries[entry_i], raw, round(score, 1), "name")
        return sorted(best.values(), key=lambda h: (-h.score, h.entry.key))

    def screen_address(self, street: str, city: str) -> list[PartyHit]:
        """Listed street addresses scoring at least the address score."""
        subject = normalise(f"{street} {city}")
        if not subject or not self._addresses:
            return []
        best: dict[int, PartyHit] = {}
        for raw, score, idx in process.extract(
            _sort(subject),
            self._addresses,
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=self.address_score,
            limit=None,
        ):
            entry_i = self._address_owners[idx]
            if entry_i not in best or score > best[entry_i].score:
                best[entry_i] = PartyHit(
                    self.entries[entry_i], raw, round(float(score), 1), "address"
                )
        return sorted(best.values(), key=lambda h: (-h.score, h.entry.key))
