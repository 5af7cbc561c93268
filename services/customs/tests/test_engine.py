"""Behaviour of the engine beyond the totals: citations, regimes, estimates, FX."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from ehub_core.errors import UnprocessableError


def test_every_charge_names_its_rule_and_source(q, it):
    quote = q("RW", [it("6109.10", 1, "100000")])
    for line in quote.lines:
        for c in line.charges:
            assert c.rule_id and c.source_title
    assert {c.rule_id for c in quote.consignment_charges} == {"rw.fee.processing"}


def test_unverified_rule_makes_the_quote_unverified(q, it):
    quote = q("RW", [it("6109.10", 1, "100000")])
    assert not quote.verified
    assert "rw.duty.eac-cet-est.610910" in quote.unverified_rule_ids


def test_unknown_hs_falls_back_to_a_flagged_chapter_estimate(q, it):
    quote = q("CN", [it("9504.90", 1, "1000")])
    line = quote.lines[0]
    assert line.estimate and quote.contains_estimates
    duty = next(c for c in line.charges if c.kind == "duty")
    assert duty.rule_id == "cn.estimate.default" and duty.estimate
    assert duty.amount == D("80.00")  # never silently zero (above CN's CNY 50 minimum)
    assert any("estimate" in w for w in quote.warnings)


def test_national_code_matches_longest_prefix(q, it):
    whole = q("BE", [it("0306.12.10", 1, "1000")], on=date(2026, 11, 26))
    parts = q("BE", [it("0306.12.90", 1, "1000")], on=date(2026, 11, 26))
    assert whole.lines[0].duty_rule_id == "be.duty.taric.030612"
    assert parts.lines[0].duty_rule_id == "be.duty.taric.03061290"
    assert parts.totals.duty == D("160.00")


def test_cbec_regime_reports_allowance_counting(q, it):
    within = q("CN", [it("6109.10", 1, "1000")], buyer_id="b", used="100")
    assert within.regime.mode == "within_limits"
    assert within.regime.counts_toward_allowance == D("1000.00")
    crossing = q("CN", [it("6109.10", 1, "2000.01")], buyer_id="b", used="24000")
    assert crossing.regime.mode == "general_trade"
    assert crossing.regime.counts_toward_allowance == 0


def test_without_buyer_id_china_is_general_trade(q, it):
    quote = q("CN", [it("6109.10", 1, "1000")])
    assert quote.regime is None
    assert quote.totals.duty == D("60.00")


def test_eu_eur3_is_per_distinct_subheading_not_per_item(q, it):
    same = q("BE", [it("6109.10", 5, "10")])
    two = q("BE", [it("6109.10", 1, "10"), it("9102.11", 1, "50")])
    assert same.totals.duty == D("3.00")
    assert two.totals.duty == D("6.00")
    assert all(
        c.rule_id == "be.lvc.flat-eur3"
        for _, c in [(line, c) for line in two.lines for c in line.charges if c.kind == "duty"]
    )


def test_ioss_vat_is_collected_at_sale(q, it):
    quote = q("BE", [it("6109.10", 1, "100")])
    vat = next(c for c in quote.lines[0].charges if c.kind == "vat")
    assert vat.collected_at == "sale" and "be.ioss.150" in vat.related_rule_ids
    assert quote.totals.collected_at_sale == vat.amount


def test_us_has_no_de_minimis_after_2025_08_29(q, it):
    quote = q("US", [it("6109.10", 1, "1", "VN")], on=date(2025, 8, 29))
    assert quote.totals.duty == D("0.17")


def test_ewtp_lane_sets_fast_track_only_for_verified_sme(q, it):
    sme = q("CN", [it("0306.32", 1, "1000", "CA")], origin="CA", seller_sme_verified=True)
    other = q("CN", [it("0306.32", 1, "1000", "CA")], origin="CA")
    assert sme.fast_track and sme.lane.rule_id == "lane.ca-cn.2026"
    assert not other.fast_track and other.totals.duty == D("70.00")


def test_lane_over_cap_does_not_apply(q, it):
    quote = q("CN", [it("0306.32", 1, "10000.01", "CA")], origin="CA", seller_sme_verified=True)
    assert quote.lane is None


def test_restricted_goods_are_reported_and_prohibited_goods_inadmissible(q, it):
    lobster = q("CN", [it("0306.32", 1, "100", "CA")], origin="CA")
    assert lobster.lines[0].restrictions[0].rule_id == "cn.restrict.aquatic"
    assert lobster.admissible
    vape = q("TH", [it("8543.40", 1, "100")])
    assert not vape.admissible


def test_fx_rate_and_date_are_echoed(q, it):
    quote = q("RW", [it("6109.10", 1, "100")], currency="USD", buyer_currency="EUR")
    assert quote.fx.rate == D("1470.000000") and quote.fx.rate_date == date(2026, 11, 20)
    assert quote.totals.goods == D("147000")
    assert quote.buyer_totals.currency == "EUR" and quote.buyer_fx.to_currency == "EUR"
    assert "fx:2026-11-20" in quote.unverified_rule_ids


def test_ddp_and_dap_name_the_payer(q, it):
    assert q("GB", [it("6109.10", 1, "200")]).payer_of_border_charges == "seller"
    assert q("GB", [it("6109.10", 1, "200")], incoterm="DAP").payer_of_border_charges == "buyer"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dest": "ZZ"}, "destination"),
        ({"currency": "XXX"}, "currency"),
        ({"on": date(1990, 1, 1)}, "date"),
    ],
)
def test_semantic_errors_name_the_field(q, it, kwargs, field):
    dest = kwargs.pop("dest", "GB")
    with pytest.raises(UnprocessableError) as exc:
        q(dest, [it("6109.10", 1, "10")], **kwargs)
    assert exc.value.extra["errors"][0]["loc"][-1] == field


def test_specific_rate_without_volume_names_the_item_field(q, it):
    with pytest.raises(UnprocessableError) as exc:
        q("US", [it("2204.21", 1, "10")])
    assert exc.value.extra["errors"][0]["loc"] == ["body", "items", 0, "unit_volume_l"]
