"""Place the lobster order on a running local network and watch it cross the border.

    make run                      # in one terminal
    make demo                     # in another (or: uv run python scripts/demo_order.py)

A marketplace at the CN hub buys two live lobsters from the demo seller at the CA hub;
the script prints the order's timeline at both hubs as the simulated carrier moves it,
until it is delivered (or ends otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def _gateway(manifest: dict[str, Any], hub: str) -> str:
    return str(manifest["hubs"][hub]["gateway"]["url"])


def _print_new(seen: dict[str, int], hub: str, order: dict[str, Any]) -> None:
    steps = order["timeline"]
    for s in steps[seen.get(hub, 0) :]:
        d = s["detail"]
        why = d.get("reason") or d.get("decision") or ""
        if "status" in d:
            why = d["status"].removeprefix("SHIPMENT_STATUS_").lower()
            where = (d.get("where") or {}).get("name")
            why += f" @ {where}" if where else ""
        at, what, by, state = s["at"][11:19], s["what"], s["hub"], s["state"]
        print(f"  {at}  {hub} timeline  {what:<20} by {by}  -> {state:<17} {why}")
    seen[hub] = len(steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var-dir", default="var", type=Path)
    parser.add_argument("--buyer", default="CN")
    parser.add_argument("--seller", default="CA")
    parser.add_argument("--quantity", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    manifest = json.loads((args.var_dir / "network.json").read_text())
    demo = manifest["demo"][args.seller]
    buyer_gw, seller_gw = _gateway(manifest, args.buyer), _gateway(manifest, args.seller)
    # The marketplace's key at the buyer's hub; the seller's key at the seller's hub.
    market = {"Authorization": f"Bearer {manifest['demo'][args.buyer]['marketplace_key']}"}
    seller = {"Authorization": f"Bearer {demo['seller_key']}"}
    body = {
        "seller_hub": args.seller,
        "seller_id": demo["seller_id"],
        "partner_reference": "demo-" + uuid.uuid4().hex[:8],
        "buyer": {"id": "buyer-42", "identity_number": "110101199003074578"},
        "ship_to": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": args.buyer,
            "phone": "+86 21 5555 0100",
        },
        "lines": [{"product_id": demo["product_id"], "quantity": args.quantity}],
        "currency": "CNY",
    }
    with httpx.Client(timeout=30.0) as client:
        resp = client.post(
            f"{buyer_gw}/v1/orders",
            json=body,
            headers={**market, "Idempotency-Key": str(uuid.uuid4())},
        )
        if resp.status_code != 201:
            print(f"placing failed: {resp.status_code} {resp.text}", file=sys.stderr)
            return 1
        order = resp.json()
        m = order["money"]
        print(f"order {order['id']} placed at {args.buyer}: {order['state']}")
        print(
            f"  goods {m['goods']} + shipping {m['shipping']} + duty {m['duty']} + "
            f"VAT {m['vat']} + excise {m['excise']} = {m['total']} {m['currency']}"
            f"  ({order['shipping']['carrier']}/{order['shipping']['service']})"
        )
        seen: dict[str, int] = {}
        deadline = time.monotonic() + args.timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for hub, gw, key in ((args.buyer, buyer_gw, market), (args.seller, seller_gw, seller)):
                r = client.get(f"{gw}/v1/orders/{order['id']}", headers=key)
                if r.status_code == 200:
                    _print_new(seen, hub, r.json())
                    states[hub] = r.json()["state"]
            if (
                states
                and all(
                    s in ("delivered", "cancelled", "rejected", "returned", "undelivered")
                    for s in states.values()
                )
                and len(states) == 2
            ):
                print(f"done: {states}")
                return 0
            time.sleep(1.0)
    print(f"still going after {args.timeout:.0f}s: {states}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
