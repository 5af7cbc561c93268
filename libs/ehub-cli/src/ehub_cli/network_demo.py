"""The demo partners and sellers a local network starts with, so an order can be placed
at once (their ids and API keys go to ``network.json`` under ``demo``)."""

from __future__ import annotations

from typing import Any

import httpx

from ehub_cli.network_plan import NetworkPlan

# One believable seller per hub, with a product, so an order can be placed at once.
DEMO_SELLERS: dict[str, dict[str, Any]] = {
    "CA": {
        "seller": {
            "name": "Atlantic Lobster Co.",
            "ship_from": {
                "name": "Atlantic Lobster Co.",
                "street": ["1 Lower Water St"],
                "city": "Halifax",
                "state": "NS",
                "postal_code": "B3J 1R7",
                "country": "CA",
                "phone": "+1 902 555 0100",
            },
        },
        "product": {
            "title": "Live Atlantic lobster, 1 lb",
            "hs_code": "030632",
            "price": "45.00",
            "currency": "CAD",
            "weight_kg": "0.900",
        },
    },
    "CN": {
        "seller": {
            "name": "Hangzhou Silk Works",
            "ship_from": {
                "name": "Hangzhou Silk Works",
                "street": ["18 Wulin Road"],
                "city": "Hangzhou",
                "postal_code": "310006",
                "country": "CN",
                "phone": "+86 571 5555 0100",
            },
        },
        "product": {
            "title": "Silk scarf, 90 x 90 cm",
            "hs_code": "621410",
            "price": "180.00",
            "currency": "CNY",
            "weight_kg": "0.100",
        },
    },
}


def _partner(client: httpx.Client, gateway: str, token: str, name: str, role: str) -> Any:
    """A partner of the hub (gateway operator API) and its first API key."""
    r = client.post(
        f"{gateway}/operator/v1/partners",
        json={"name": name, "role": role},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return r.json()


def seed_demo(plan: NetworkPlan, internal_token: str) -> dict[str, Any]:
    """Create each hub's demo partners (a seller and a marketplace, with their API keys)
    and the demo seller (auto-accepting its orders, owned by the seller partner) with
    one product."""
    demo: dict[str, Any] = {}
    operator = {"Authorization": f"Bearer {internal_token}"}
    with httpx.Client(timeout=10.0) as client:
        for hub in plan.hubs:
            spec = DEMO_SELLERS.get(hub)
            if spec is None:
                continue
            services = plan.of_hub(hub)
            gateway, catalog = services["gateway"].url, services["catalog"].url
            owner = _partner(client, gateway, internal_token, spec["seller"]["name"], "seller")
            market = _partner(
                client, gateway, internal_token, f"{hub} demo marketplace", "marketplace"
            )
            as_seller = {"Authorization": f"Bearer {owner['key']['key']}"}
            body = {**spec["seller"], "country": hub, "auto_accept": True}
            # Only the hub's operator says a seller is a verified SME.
            seller = client.post(
                f"{catalog}/operator/v1/sellers",
                json={**body, "owner": owner["partner"]["id"], "sme_verified": True},
                headers=operator,
            )
            if seller.status_code == 404:  # a catalog without the operator API
                seller = client.post(
                    f"{gateway}/v1/sellers", json={**body, "sme_verified": True}, headers=as_seller
                )
            seller.raise_for_status()
            seller_id = seller.json()["id"]
            product = client.post(
                f"{gateway}/v1/products",
                json={
                    **spec["product"],
                    "seller_id": seller_id,
                    "origin_country": hub,
                    "stock": 500,
                },
                headers=as_seller,
            )
            product.raise_for_status()
            demo[hub] = {
                "seller_id": seller_id,
                "product_id": product.json()["id"],
                # API keys of the demo partners (this file is the operator's only: 0600)
                "seller_key": owner["key"]["key"],
                "marketplace_key": market["key"]["key"],
            }
    return demo
