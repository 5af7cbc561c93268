"""Rate card files are validated at load, with errors that name the file and reason."""

from __future__ import annotations

from datetime import date
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from ehub_logistics.carriers.ratecard import (
    RateCardBook,
    RateCardError,
    load_rate_card,
    load_rate_card_book,
)

DATA = Path(str(files("ehub_logistics.carriers") / "data"))


def valid_card() -> dict:
    return yaml.safe_load((DATA / "express-2026-01-01.yaml").read_text())


def write(tmp_path: Path, data: dict | str, name: str = "card.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("path", sorted(DATA.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_cards_load_and_name_a_source_and_date(path):
    card = load_rate_card(path)
    assert card.source and card.effective_from <= date(2026, 1, 1)
    assert path.name.startswith(f"{card.carrier}-{card.effective_from.isoformat()}")


def test_unquoted_norway_code_is_caught_not_silently_false(tmp_path):
    text = (DATA / "express-2026-01-01.yaml").read_text().replace('"NO"', "NO")
    path = write(tmp_path, text)
    with pytest.raises(RateCardError) as err:
        load_rate_card(path)
    assert str(path) in str(err.value)
    assert "country_groups.EUR" in str(err.value)


def test_price_row_length_must_match_the_weight_breaks(tmp_path):
    data = valid_card()
    data["services"][0]["prices"]["3"] = [1.0, 2.0]
    with pytest.raises(RateCardError, match="zone 3 has 2 prices for 7 weight breaks"):
        load_rate_card(write(tmp_path, data))


def test_unknown_country_and_group_are_named(tmp_path):
    data = valid_card()
    data["zones"][1]["origin"] = ["@ATLANTIS"]
    with pytest.raises(RateCardError, match="unknown country group @ATLANTIS"):
        load_rate_card(write(tmp_path, data))
    data = valid_card()
    data["country_groups"]["ASIA"].append("XX")
    with pytest.raises(RateCardError, match=r"unknown country codes \['XX'\]"):
        load_rate_card(write(tmp_path, data))


def test_missing_source_and_non_increasing_breaks_are_refused(tmp_path):
    data = valid_card()
    del data["source"]
    with pytest.raises(RateCardError, match="source: Field required"):
        load_rate_card(write(tmp_path, data))
    data = valid_card()
    data["services"][0]["weight_breaks"][2] = 0.7
    with pytest.raises(RateCardError, match="positive and increasing"):
        load_rate_card(write(tmp_path, data))


def test_invalid_yaml_and_missing_file_name_the_file(tmp_path):
    bad = write(tmp_path, "carrier: [unclosed")
    with pytest.raises(RateCardError, match=f"rate card {bad}: not valid YAML"):
        load_rate_card(bad)
    with pytest.raises(RateCardError, match="cannot read"):
        load_rate_card(tmp_path / "absent.yaml")


def test_the_version_in_force_on_the_ship_date_applies(tmp_path):
    old, new = valid_card(), valid_card()
    new["effective_from"] = date(2026, 7, 1)
    new["fuel_surcharge_percent"] = 25
    book = load_rate_card_book(
        [write(tmp_path, old, "express-a.yaml"), write(tmp_path, new, "express-b.yaml")]
    )
    assert book.in_force(date(2025, 12, 31)) is None
    assert book.in_force(date(2026, 6, 30)).fuel_surcharge_percent == 20
    assert book.in_force(date(2026, 7, 1)).fuel_surcharge_percent == 25


def test_two_versions_with_the_same_date_are_refused(tmp_path):
    card = load_rate_card(DATA / "express-2026-01-01.yaml")
    with pytest.raises(RateCardError, match="share an effective_from"):
        RateCardBook([card, card])
