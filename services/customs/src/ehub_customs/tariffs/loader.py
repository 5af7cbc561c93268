"""Load and validate the tariff data files; a bad file stops start-up with file:line: reason.

The YAML is composed into nodes first so every value keeps its line number; floats are
read as :class:`~decimal.Decimal` (money never passes through ``float``). Pydantic
validates each file against :mod:`ehub_customs.tariffs.models`; the first error is
reported at the line of the offending key. Cross-rule checks (duplicate ids, two rates
for the same HS prefix in force at once) are reported the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ehub_customs.fx import FxTable
from ehub_customs.tariffs import compile as compiler
from ehub_customs.tariffs.models import CountryFile, FxFile, LaneFile
from ehub_customs.tariffs.rulebook import RuleBook

DATA_DIR = Path(__file__).parent / "data"
LANES_FILE = "lanes.yaml"
FX_FILE = "fx.yaml"

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]


class RuleFileError(Exception):
    """A tariff data file is invalid; ``str()`` reads ``file:line: reason``."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as Decimal (from their exact text)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    assert isinstance(node, yaml.ScalarNode)
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


@dataclass(slots=True)
class ParsedFile:
    name: str
    data: Any
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int:
        for n in range(len(path), -1, -1):
            hit = self.lines.get(tuple(path[:n]))
            if hit is not None:
                return hit
        return 1


def parse_yaml(text: str, name: str) -> ParsedFile:
    """YAML text to Python data plus a map from each key path to its 1-based line."""
    loader = _DecimalLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RuleFileError(name, line, f"YAML syntax: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()
    if node is None:
        raise RuleFileError(name, 1, "the file is empty")
    lines: dict[Path_, int] = {}
    data = _convert(loader, node, (), lines)
    return ParsedFile(name, data, lines)


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, child, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, n, (*path, i), lines) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def validate(parsed: ParsedFile, model: type[M]) -> M:
    try:
        return model.model_validate(parsed.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "file"
        raise RuleFileError(parsed.name, parsed.line_of(loc), f"{where}: {err['msg']}") from exc


def _country_files(data_dir: Path) -> Iterator[Path]:
    for path in sorted(data_dir.glob("*.yaml")):
        if path.name not in (LANES_FILE, FX_FILE):
            yield path


def load_rulebook(path: str | Path | None = None) -> RuleBook:
    """Load every file under ``path`` (default: the bundled data); raise RuleFileError."""
    data_dir = Path(path) if path is not None else DATA_DIR
    if not data_dir.is_dir():
        raise RuleFileError(str(data_dir), 0, "tariff data directory not found")
    fx_parsed = _read(data_dir / FX_FILE)
    fx_model = validate(fx_parsed, FxFile)
    fx = FxTable(
        base=fx_model.base,
        days=[(d.date, dict(d.rates)) for d in fx_model.days],
        source=fx_model.source.title,
        verified=fx_model.verified,
        version=fx_model.version,
    )
    countries = {}
    for file in _country_files(data_dir):
        parsed = _read(file)
        model = validate(parsed, CountryFile)
        if file.stem.upper() != model.country:
            raise RuleFileError(
                parsed.name,
                parsed.line_of(("country",)),
                f"country {model.country} does not match the file name {file.name}",
            )
        if model.currency not in fx.currencies:
            raise RuleFileError(
                parsed.name,
                parsed.line_of(("currency",)),
                f"currency {model.currency} has no rate in {FX_FILE}",
            )
        countries[model.country] = compiler.compile_country(model, parsed, RuleFileError)
    lanes_parsed = _read(data_dir / LANES_FILE)
    lanes_model = validate(lanes_parsed, LaneFile)
    lanes = compiler.compile_lanes(lanes_model, lanes_parsed, RuleFileError, set(countries))
    if not countries:
        raise RuleFileError(str(data_dir), 0, "no country files found")
    return RuleBook(countries=countries, lanes=lanes, fx=fx, lanes_version=lanes_model.version)


def _read(file: Path) -> ParsedFile:
    if not file.is_file():
        raise RuleFileError(file.name, 0, "file not found")
    return parse_yaml(file.read_text(encoding="utf-8"), file.name)
