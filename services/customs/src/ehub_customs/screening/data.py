"""Loading the screening data once at start-up: goods rules and reference values per
country, the policy, and the denied-party lists (indexed for matching)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ehub_customs.screening.files import (
    CountryScreening,
    GoodsRule,
    ListsFile,
    ListSource,
    Policy,
    ReferenceValue,
)
from ehub_customs.screening.lists import (
    ListedParty,
    ListFormatError,
    PartyIndex,
    load_ofac_csv,
    load_un_xml,
)

BUNDLED = Path(str(files("ehub_customs.screening") / "data"))


class ScreeningDataError(ValueError):
    """A bad screening data file: ``file: reason``; it stops start-up."""


@dataclass(frozen=True, slots=True)
class ScreeningData:
    policy: Policy
    countries: dict[str, CountryScreening]
    lists: tuple[ListSource, ...]
    parties: PartyIndex
    versions: dict[str, str] = field(default_factory=dict)

    def goods(self, country: str, on: date) -> list[GoodsRule]:
        c = self.countries.get(country)
        return [g for g in c.goods if g.in_force(on)] if c else []

    def references(self, country: str, on: date) -> list[ReferenceValue]:
        c = self.countries.get(country)
        return [r for r in c.valuation if r.in_force(on)] if c else []

    def describe(self) -> str:
        """What was screened against, for a clean decision's reason."""
        lists = ", ".join(f"{s.id} ({s.retrieved.isoformat()})" for s in self.lists)
        return f"screening data {self.policy.version}; lists {lists}"


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScreeningDataError(f"{path.name}: {exc}") from exc


def _model(cls: Any, path: Path) -> Any:
    try:
        return cls.model_validate(_yaml(path))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ScreeningDataError(f"{path.name}: {loc}: {err['msg']}") from exc


def load_lists(directory: Path, sources: list[ListSource]) -> list[ListedParty]:
    entries: list[ListedParty] = []
    for s in sources:
        try:
            if s.format == "ofac-csv":
                read = {k: (directory / v).read_text(encoding="utf-8") for k, v in s.files.items()}
                entries += load_ofac_csv(
                    read["sdn"], read.get("alt"), read.get("add"), list_id=s.id
                )
            else:
                entries += load_un_xml((directory / s.files["xml"]).read_bytes(), list_id=s.id)
        except (OSError, KeyError, ListFormatError) as exc:
            raise ScreeningDataError(f"lists.yaml: {s.id}: {exc}") from exc
    return entries


def load_screening(data_dir: Path | None = None, lists_dir: Path | None = None) -> ScreeningData:
    """Load and validate every screening file; raise :class:`ScreeningDataError`."""
    root = data_dir or BUNDLED
    policy: Policy = _model(Policy, root / "policy.yaml")
    countries: dict[str, CountryScreening] = {}
    for path in sorted((root / "goods").glob("*.yaml")):
        c: CountryScreening = _model(CountryScreening, path)
        if path.stem.upper() != c.country:
            raise ScreeningDataError(
                f"{path.name}: country {c.country} in a file named {path.stem}"
            )
        ids = [g.id for g in c.goods] + [r.id for r in c.valuation]
        if len(ids) != len(set(ids)):
            raise ScreeningDataError(f"{path.name}: duplicate rule ids")
        countries[c.country] = c
    lroot = lists_dir or root / "lists"
    lists: ListsFile = _model(ListsFile, lroot / "lists.yaml")
    entries = load_lists(lroot, lists.lists)
    p = policy.parties
    index = PartyIndex(
        entries,
        review_score=p.review_score,
        min_alias_chars=p.min_alias_chars,
        address_score=p.address_score,
    )
    return ScreeningData(
        policy=policy,
        countries=countries,
        lists=tuple(lists.lists),
        parties=index,
        versions={cc: c.version for cc, c in countries.items()},
    )
