"""Hand-worked screening decisions (docs/customs.md, "Risk screening"): the pure rule
``screen(facts, data, book, history, whitelist)`` in process, no database. Each case
names the source of the rule it exercises."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ehub_customs.screening.data import BUNDLED, ScreeningDataError, load_screening
from ehub_customs.screening.decide import Document, Facts, History, Line, Party, screen
from ehub_customs.screening.lists import ListFormatError, load_ofac_csv, load_un_xml, normalise

D = Decimal
ON = date(2026, 11, 26)


@pytest.fixture(scope="module")
def data():
    return load_screening()


def ln(hs: str, desc: str, value: str, origin: str = "GB", qty: int = 1, **kw: Any) -> Line:
    return Line("ln_1", hs.replace(".", ""), desc, qty, D(value), origin, **kw)


def facts(
    country: str,
    lines: list[Line],
    *,
    counterpart: str = "GB",
    currency: str = "CNY",
    phase: str = "import",
    parties: tuple[Party, ...] = (),
    documents: tuple[Document, ...] = (),
) -> Facts:
    return Facts(phase, country, counterpart, currency, ON, tuple(lines), parties, documents)  # type: ignore[arg-type]


LOBSTER = ln("0306.32", "Live Atlantic lobster, 1 lb", "45.00", "CA", 10)
LI_WEI = Party("consignee", "Li Wei", "88 Century Avenue", "Shanghai", "CN")


def test_a_clean_parcel_is_cleared(data, book):
    # Cotton T-shirts GB -> CN, an ordinary consignee: no rule hits.
    s = screen(
        facts("CN", [ln("6109.10", "cotton T-shirt", "500.00")], parties=(LI_WEI,)), data, book
    )
    assert (s.decision, s.reason_code, s.hits) == ("cleared", "screened_clean", ())
    assert s.reason.startswith("no risk rule hit (screening data 2026-12-02")


def test_a_prohibited_item_is_rejected(data, book):
    # Arms into CN: GACC Table of Articles Prohibited from Entering the PRC, item 1.
    s = screen(facts("CN", [ln("9302.00", "semi-automatic pistol", "800.00")]), data, book)
    assert (s.decision, s.reason_code) == ("rejected", "prohibited_goods")
    [hit] = s.hits
    assert (hit.rule, hit.outcome, hit.line_id) == ("cn.goods.arms", "prohibited", "ln_1")
    assert "HS 930200 under 93" in hit.reason and "Order No. 43" in hit.source


def test_a_prohibited_keyword_is_rejected_whatever_the_hs_code(data, book):
    # Switchblades into CA: Customs Tariff 9898.00.00, CBSA Memorandum D19-13-2.
    s = screen(
        facts("CA", [ln("8211.93", "Automatic switchblade knife", "30.00")], currency="CAD"),
        data,
        book,
    )
    assert (s.decision, s.hits[0].rule) == ("rejected", "ca.goods.prohibited-weapons")
    assert "description names 'switchblade'" in s.reason
    assert "d19-13-2" in s.reason


def test_goods_of_cuban_origin_are_rejected_into_the_us(data, book):
    # 31 CFR 515.204: no import of Cuban-origin merchandise, by the goods' origin.
    s = screen(
        facts("US", [ln("2402.10", "cigars, box of 25", "300.00", "CU")], currency="USD"),
        data,
        book,
    )
    assert (s.decision, s.hits[0].rule) == ("rejected", "us.goods.cuban-origin")
    assert "origin CU" in s.reason


def test_live_lobster_into_cn_is_held_for_a_quarantine_permit(data, book):
    # Live crustaceans into CN need GACC's Entry Animal and Plant Quarantine Permit
    # (cn.goods.live-crustaceans; inspection P.R/Q.S per htshub CN 0306).
    s = screen(facts("CN", [LOBSTER], counterpart="CA", currency="CAD"), data, book)
    assert (s.decision, s.reason_code) == ("held", "restricted_goods")
    [hit] = s.hits
    assert (hit.rule, hit.outcome, hit.verified) == (
        "cn.goods.live-crustaceans",
        "restricted",
        True,
    )
    assert "needs a quarantine_permit" in hit.reason


def test_a_quarantine_permit_in_the_declaration_clears_the_lobster(data, book):
    # Same rule; the permit's reference is carried, so the restriction is met.
    permit = Document("quarantine_permit", "GACC-P-2026-0042", "0306")
    s = screen(
        facts("CN", [LOBSTER], counterpart="CA", currency="CAD", documents=(permit,)), data, book
    )
    assert (s.decision, s.reason_code) == ("cleared", "screened_clean")
    assert s.hits[0].outcome == "satisfied"
    assert "quarantine_permit GACC-P-2026-0042 carried" in s.reason


def test_a_permit_for_another_heading_does_not_count(data, book):
    wine = Document("quarantine_permit", "GACC-P-1", "2204")
    s = screen(
        facts("CN", [LOBSTER], counterpart="CA", currency="CAD", documents=(wine,)), data, book
    )
    assert s.decision == "held"


def test_a_hub_that_notes_restrictions_clears_the_lobster_and_says_so(data, book):
    # EHUB_SCREENING_RESTRICTED=note (the local network's default).
    s = screen(
        facts("CN", [LOBSTER], counterpart="CA", currency="CAD"), data, book, restricted="note"
    )
    assert s.decision == "cleared" and s.hits[0].outcome == "noted"
    assert "needs a quarantine_permit" in s.reason


def test_a_fuzzy_denied_party_goes_to_review_and_the_whitelist_clears_it_next_time(data, book):
    # UN Consolidated List CDi.001 ERIC BADEGE; "Erik Badege" scores 90.9: between the
    # review (85) and match (95) scores of policy.yaml.
    erik = Party("consignee", "Erik Badege", "12 Avenue de la Paix", "Kigali", "RW")
    f = facts("CN", [ln("6109.10", "cotton T-shirt", "100.00")], parties=(erik,))
    s = screen(f, data, book)
    assert (s.decision, s.reason_code) == ("held", "denied_party_review")
    [hit] = s.hits
    assert (hit.entry, hit.subject, hit.score) == ("un-consolidated:CDi.001", "erik badege", 90.9)
    assert "scores 90.9 against un-consolidated:CDi.001 'ERIC BADEGE'" in hit.reason
    assert "scsanctions.un.org" in hit.source
    cleared = screen(
        f, data, book, whitelist=frozenset({("erik badege", "un-consolidated:CDi.001")})
    )
    assert (cleared.decision, cleared.hits[0].outcome) == ("cleared", "whitelisted")
    # The whitelist is per subject and entry: someone else with a close name is still held.
    other = Party("consignee", "Eric Badegi")
    assert screen(facts("CN", f.lines, parties=(other,)), data, book).decision == "held"


def test_an_exact_denied_party_is_rejected(data, book):
    # OFAC SDN ent_num 4632, BANK MARKAZI JOMHOURI ISLAMI IRAN (IRAN, SDGT, IRGC, IFSR).
    buyer = Party("buyer", "Bank Markazi Jomhouri Islami Iran")
    s = screen(facts("CN", [ln("8471.30", "laptop", "4000.00")], parties=(buyer,)), data, book)
    assert (s.decision, s.reason_code) == ("rejected", "denied_party_match")
    assert s.hits[0].entry == "ofac-sdn:4632" and s.hits[0].score == 100.0
    assert "treasury.gov/ofac/downloads/sdn.csv" in s.hits[0].source


def test_an_alias_in_other_word_order_with_diacritics_is_a_match(data, book):
    # OFAC SDN 2674 "ABBAS, Abu": case, accents and word order do not hide a name.
    s = screen(
        facts("CN", [ln("6109.10", "shirt", "50")], parties=(Party("seller", "Abú Abbás"),)),
        data,
        book,
    )
    assert s.decision == "rejected" and s.hits[0].entry == "ofac-sdn:2674"


def test_legal_suffixes_do_not_hide_a_listed_company(data, book):
    # OFAC SDN 815 "GALAX TRADING CO., LTD." declared as "Galax Trading Company Limited".
    seller = Party("seller", "Galax Trading Company Limited")
    s = screen(facts("CN", [ln("6109.10", "shirt", "50")], parties=(seller,)), data, book)
    assert s.decision == "rejected" and s.hits[0].entry == "ofac-sdn:815"


def test_a_listed_name_inside_a_longer_name_is_reviewed_not_rejected(data, book):
    # OFAC SDN 4633 BANK MASKAN: "Bank Maskan Tehran Branch" holds every listed word.
    p = Party("consignee", "Bank Maskan Tehran Branch")
    s = screen(facts("CN", [ln("6109.10", "shirt", "50")], parties=(p,)), data, book)
    assert (s.decision, s.hits[0].score) == ("held", 94.0)


def test_a_part_of_a_listed_name_is_not_a_hit(data, book):
    # token_set_ratio would score "Li Wei" against a "LI, Wei Dong" 100; we do not.
    for name in ("Li Wei", "Bank of China", "Atlantic Lobster Co.", "Bay of Fundy Seafood"):
        assert data.parties.screen_name(name) == [], name


def test_a_listed_address_is_held_for_review(data, book):
    # OFAC add.csv, ent_num 4635 (BANK REFAH KARGARAN): No. 40 North Shiraz Street ...
    p = Party(
        "consignee",
        "Parsa Imports",
        "No. 40 North Shiraz Street, Mollasadra Ave, Vanak Sq",
        "Tehran 19917",
        "IR",
    )
    s = screen(facts("CN", [ln("6109.10", "shirt", "50")], parties=(p,)), data, book)
    assert (s.decision, s.reason_code) == ("held", "denied_party_review")
    assert s.hits[0].entry == "ofac-sdn:4635" and "address scores" in s.hits[0].reason


def test_an_undervalued_line_is_held(data, book):
    # cn.value.smartphones: reference CNY 300 a unit; policy max_discount 50 %: below
    # CNY 150 is held. A smartphone declared at CNY 20.
    s = screen(facts("CN", [ln("8517.13", "smartphone", "20.00")]), data, book)
    assert (s.decision, s.reason_code) == ("held", "undervalued")
    assert "below 50% of the reference 300.00 CNY per unit" in s.reason
    ok = screen(facts("CN", [ln("8517.13", "smartphone", "150.00")]), data, book)
    assert ok.decision == "cleared"  # exactly at the floor is not below it


def test_a_line_declared_far_below_its_catalogue_price_is_held(data, book):
    s = screen(facts("CN", [ln("6109.10", "shirt", "40.00", list_price=D("100.00"))]), data, book)
    assert (s.decision, s.hits[0].rule) == ("held", "policy.valuation.catalogue")


def test_a_split_consignment_pattern_is_held(data, book):
    # GB: no duty on consignments up to GBP 135 (gb.lvc.duty-135). Three parcels of GBP
    # 100 to one consignee within 24 h, each under it, together GBP 300: held
    # (policy.yaml split: 24 h, 3 parcels; cf. 19 CFR 10.151 "one person on one day").
    f = facts("GB", [ln("6109.10", "shirt", "100.00")], counterpart="CN", currency="GBP")
    two = History(((D("100.00"), "GBP"), (D("100.00"), "GBP")))
    s = screen(f, data, book, history=two)
    assert (s.decision, s.reason_code) == ("held", "split_consignment")
    assert (
        "3 parcels" in s.reason and "total 300.00 GBP" in s.reason and "gb.lvc.duty-135" in s.reason
    )
    # Two parcels are not yet a pattern; one parcel over the limit is not a split.
    assert screen(f, data, book, history=History(((D("100.00"), "GBP"),))).decision == "cleared"
    big = facts("GB", [ln("6109.10", "shirt", "200.00")], counterpart="CN", currency="GBP")
    assert screen(big, data, book, history=two).decision == "cleared"
    # CN has no de minimis (its limits are the allowance ledger's): no split rule.
    cn = facts("CN", [ln("6109.10", "shirt", "100.00")])
    assert screen(cn, data, book, history=History(((D("100"), "CNY"),) * 5)).decision == "cleared"


def test_prohibited_wins_over_review_and_every_hit_is_in_the_reason(data, book):
    erik = Party("consignee", "Erik Badege")
    s = screen(facts("CN", [ln("9302.00", "pistol", "800")], parties=(erik,)), data, book)
    assert (s.decision, s.reason_code) == ("rejected", "prohibited_goods")
    assert "cn.goods.arms" in s.reason and "un-consolidated:CDi.001" in s.reason


def test_an_export_to_a_denied_party_is_rejected(data, book):
    # Export from CA to an SDN-listed consignee (OFAC SDN 4642 BANK SADERAT PLC).
    p = Party("consignee", "Bank Saderat PLC", country="GB")
    f = facts("CA", [LOBSTER], counterpart="CN", currency="CAD", phase="export", parties=(p,))
    s = screen(f, data, book)
    assert (s.decision, s.hits[0].entry) == ("rejected", "ofac-sdn:4642")


def test_normalisation():
    assert normalise("ANGLO-CARIBBEAN CO., LTD.") == "anglo caribbean"
    assert normalise("Société Générale S.A.") == "societe generale"
    assert normalise("AL QA'IDA") == "al qaida"
    assert normalise("Ltd.") == "ltd"  # a name that is only a suffix keeps it


def test_official_formats_load_and_bad_ones_are_refused():
    sdn = '36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n'
    alt = '36,12,"aka","AERO-CARIBBEAN",-0- \n'
    [e] = load_ofac_csv(sdn, alt)
    assert (e.key, e.kind, e.programs, e.aliases) == (
        "ofac-sdn:36",
        "entity",
        ("CUBA",),
        ("AERO-CARIBBEAN",),
    )
    with pytest.raises(ListFormatError):
        load_ofac_csv("x,y\n")
    un = (BUNDLED / "lists/un/consolidated.xml").read_bytes()
    entries = {e.entry_id: e for e in load_un_xml(un)}
    assert entries["CDi.002"].name == "FRANK KAKOLELE BWAMBALE"
    assert entries["KPe.001"].aliases == ("CHANGGWANG SINYONG CORPORATION", "KOMID")
    with pytest.raises(ListFormatError):
        load_un_xml(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><CONSOLIDATED_LIST/>')


def test_a_bad_data_file_stops_loading(tmp_path: Path):
    import shutil

    shutil.copytree(BUNDLED, tmp_path / "data")
    bad = tmp_path / "data/goods/cn.yaml"
    bad.write_text(bad.read_text().replace('hs: ["93"]', 'hs: ["9x"]'))
    with pytest.raises(ScreeningDataError, match=r"cn.yaml: goods.0.hs: .*2-10 digits"):
        load_screening(tmp_path / "data")
