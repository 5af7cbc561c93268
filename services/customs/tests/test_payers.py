"""Who pays each charge (DDP vs DAP) and the carrier's collection fee, worked by hand.

Sources: the CA rule file (MFN 18 % on a cotton T-shirt from CN, GST 5 % on value + duty,
the postal CAD 20 threshold) and ``ca.fee.canada-post-handling`` (CBSA's page on mail
imports: CAD 9.95 charged to the recipient when duty or tax is due; unverified amount).
"""

from __future__ import annotations

from decimal import Decimal as D

from ehub_customs.landed_cost.schemas import quote_dict


def _payers(quote):
    return {c.kind: c.payer for line in quote.lines for c in line.charges}


def test_ddp_the_seller_pays_everything_and_nothing_is_due_at_the_door(q, it):
    quote = q("CA", [it("6109.10", 1, "100")], transport="postal", incoterm="DDP")
    t = quote.totals
    assert (t.duty, t.vat) == (D("18.00"), D("5.90"))  # 100 x 18 %; (100+18) x 5 %
    assert not quote.consignment_charges  # no collection fee when the seller paid
    assert set(_payers(quote).values()) == {"seller"}
    assert (t.seller_pays, t.buyer_pays_at_delivery) == (D("23.90"), D("0"))


def test_dap_the_buyer_pays_duty_tax_and_the_carriers_fee_at_delivery(q, it):
    quote = q("CA", [it("6109.10", 1, "100")], transport="postal", incoterm="DAP")
    t = quote.totals
    fee = quote.consignment_charges[0]
    assert (fee.rule_id, fee.amount, fee.payer) == (
        "ca.fee.canada-post-handling",
        D("9.95"),
        "buyer",
    )
    assert set(_payers(quote).values()) == {"buyer"}
    # 18.00 + 5.90 + 9.95
    assert (t.buyer_pays_at_delivery, t.seller_pays, t.fees) == (D("33.85"), D("0"), D("9.95"))
    assert "ca.fee.canada-post-handling" in quote.unverified_rule_ids


def test_dap_with_nothing_to_collect_has_no_fee(q, it):
    quote = q("CA", [it("6109.10", 1, "20.00")], transport="postal", incoterm="DAP")
    assert quote.totals.charges == D("0") and not quote.consignment_charges


def test_dap_without_a_sourced_fee_warns_instead_of_guessing(q, it):
    quote = q("CA", [it("6109.10", 1, "100")], transport="courier", incoterm="DAP")
    assert not quote.consignment_charges
    assert quote.totals.buyer_pays_at_delivery == D("23.90")
    assert any("collecting" in w and "courier" in w for w in quote.warnings)


def test_charges_collected_at_sale_are_the_sellers_whatever_the_incoterm(q, it):
    # GB: VAT on a consignment of GBP 135 or less is charged at sale by the seller.
    quote = q("GB", [it("6109.10", 1, "100")], incoterm="DAP")
    vat = next(c for c in quote.lines[0].charges if c.kind == "vat")
    assert (vat.collected_at, vat.payer, vat.amount) == ("sale", "seller", D("20.00"))
    assert quote.totals.buyer_pays_at_delivery == D("0")


def test_the_answer_names_the_payer_of_each_charge(q, it):
    body = quote_dict(q("CA", [it("6109.10", 1, "100")], transport="postal", incoterm="DAP"))
    assert [c["payer"] for c in body["lines"][0]["charges"]] == ["buyer", "buyer"]
    assert body["consignment_charges"][0]["payer"] == "buyer"
    assert body["totals"]["buyer_pays_at_delivery"] == "33.85"


def test_a_minimum_names_its_rule_and_says_what_was_not_collected(q, it):
    quote = q("CN", [it("6109.10", 1, "100")])
    duty = next(c for c in quote.lines[0].charges if c.kind == "duty")
    assert duty.amount == D("0") and "cn.min.fifty-per-consignment" in duty.related_rule_ids
    assert duty.note and duty.note.startswith("6.00 not collected")
    assert "cn.min.fifty-per-consignment" in quote.unverified_rule_ids
