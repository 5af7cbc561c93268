"""A bad data file stops start-up with file:line: reason."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from ehub_customs.tariffs.loader import DATA_DIR, RuleFileError, load_rulebook


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_bundled_rule_book_loads_all_nine_countries():
    book = load_rulebook()
    assert set(book.countries) == {"CN", "CA", "US", "GB", "BE", "AU", "MY", "TH", "RW"}
    for rules in book.countries.values():
        assert len({d.hs[:6] for d in rules.duties}) >= 40, rules.code


def test_negative_rate_is_reported_with_its_line(data):
    gb = data / "gb.yaml"
    _edit(gb, 'ad_valorem: "12%", desc: "T-shirts', 'ad_valorem: "-12%", desc: "T-shirts')
    with pytest.raises(RuleFileError) as exc:
        load_rulebook(data)
    assert exc.value.file == "gb.yaml"
    assert exc.value.line == _line_of(gb, '"-12%"')
    assert "negative" in str(exc.value)


def test_unquoted_decimal_is_read_exactly_never_as_float(data):
    be = data / "be.yaml"
    _edit(be, 'rate: "21%"', "rate: 0.21")
    book = load_rulebook(data)
    rate = next(v.rate for v in book.countries["BE"].vat if v.ref.id == "be.vat.standard")
    assert rate == Decimal("0.21") and str(rate) == "0.21"


def test_negative_fee_is_reported(data):
    rw = data / "rw.yaml"
    _edit(rw, 'amount: "3000"', 'amount: "-3000"')
    with pytest.raises(RuleFileError, match=r"rw\.yaml:\d+: fees\.0\.amount"):
        load_rulebook(data)


def test_unknown_key_is_reported(data):
    au = data / "au.yaml"
    _edit(au, "valuation: FOB", "valuation: FOB\nvaluaton_note: typo")
    with pytest.raises(RuleFileError) as exc:
        load_rulebook(data)
    assert exc.value.line == _line_of(au, "valuaton_note")


def test_bad_hs_prefix_is_reported(data):
    us = data / "us.yaml"
    _edit(us, 'hs: "6109.10", ad_valorem: "16.5%"', 'hs: "6109.1", ad_valorem: "16.5%"')
    with pytest.raises(RuleFileError, match="HS prefix"):
        load_rulebook(data)


def test_two_rates_for_one_prefix_on_the_same_dates_are_rejected(data):
    ca = data / "ca.yaml"
    _edit(
        ca,
        '      - {hs: "0306.12", ad_valorem: "0%", desc: "Lobsters, frozen"}',
        '      - {hs: "6109.10", ad_valorem: "17%", desc: "duplicate of the mfn group"}',
    )
    with pytest.raises(RuleFileError, match="already has rule"):
        load_rulebook(data)


def test_yaml_syntax_error_names_the_line(data):
    th = data / "th.yaml"
    _edit(th, "currency: THB", "currency: [THB")
    with pytest.raises(RuleFileError) as exc:
        load_rulebook(data)
    assert exc.value.file == "th.yaml" and "YAML syntax" in exc.value.reason


def test_effective_to_before_from_is_rejected(data):
    rw = data / "rw.yaml"
    _edit(
        rw,
        "    effective_from: 2015-07-01\n",
        "    effective_from: 2015-07-01\n    effective_to: 2014-01-01\n",
    )
    with pytest.raises(RuleFileError, match="effective_to"):
        load_rulebook(data)


def test_rule_without_source_is_rejected(data):
    my = data / "my.yaml"
    text = my.read_text()
    start = text.index("  - id: my.excise.wine")
    end = text.index("thresholds:")
    block = text[start:end]
    my.write_text(
        text.replace(
            block, "\n".join(line for line in block.splitlines() if "source:" not in line) + "\n\n"
        )
    )
    with pytest.raises(RuleFileError, match="no source"):
        load_rulebook(data)
