"""The buyer's hub believes the seller hub's offer only if the seller's hub signed it.

Two gateways in process: CN (the buyer's hub) places an order with CA (the seller's
hub), whose real ``POST /federation/v1/offers`` answers from stand-in catalog and
logistics services. Between them sits a man in the middle that passes CA's answers on,
or strips, changes or re-signs them. An answer that does not verify as CA's, for this very
request, is a 502 problem+json to the marketplace, and nothing is placed at CN.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import inspect, text

from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.signing import HubKey, HubSigningAuth, KeyRing, sign_response
from ehub_core.testing import serve_in_process
from ehub_gateway.app import create_app
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.federation.wellknown import build_document
from ehub_gateway.settings import GatewaySettings

TOKEN = "operator-test-token"
CA_URL = "http://ca.invalid"
SIGNATURE_HEADERS = ("signature", "signature-input")

Tamper = Callable[[httpx.Request, httpx.Response], httpx.Response]


# -- the seller hub's own services, standing in for catalog and logistics ------------------


def stand_in_services() -> FastAPI:
    """CA's catalog and logistics (and CN's customs) as the gateways call them."""
    app = FastAPI()

    @app.get("/operator/v1/sellers/{seller_id}")
    async def seller(seller_id: str) -> Any:
        if seller_id != "sel_lobster":
            return JSONResponse({"detail": "no such seller"}, status_code=404)
        return {
            "id": seller_id,
            "name": "Atlantic Lobster Co.",
            "country": "CA",
            "sme_verified": False,
            "ship_from": {"country": "CA", "city": "Halifax", "postal_code": "B3H 1A1"},
        }

    @app.get("/operator/v1/products/{product_id}")
    async def product(product_id: str) -> Any:
        return {
            "id": product_id,
            "seller_id": "sel_lobster",
            "stock": 500,
            "title": "Live lobster",
            "hs_code": "030632",
            "origin_country": "CA",
            "price": "45.00",
            "currency": "CAD",
            "weight_kg": "1.2",
        }

    @app.post("/operator/v1/rates")
    async def rates() -> Any:
        rate = {
            "rate_id": "r1",
            "carrier": "postal",
            "service": "surface_parcel",
            "service_level": "economy",
            "total": "118.48",
            "currency": "CAD",
            "transit_days": 12,
        }
        return {"rates": [rate], "cheapest": "r1", "fastest": "r1"}

    @app.post("/operator/v1/landed-cost")
    async def landed_cost() -> Any:
        totals = {"goods": "457.71", "shipping": "118.48", "duty": "0", "excise": "0"}
        totals |= {"vat": "36.30", "fees": "0", "landed": "612.49", "currency": "CNY"}
        return {"admissible": True, "currency": "CAD", "buyer_totals": totals, "regime": None}

    return app


class Middleman(httpx.AsyncBaseTransport):
    """The network between CN and CA: passes CA's answers on, or ``tamper``s with them."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.tamper: Tamper | None = None
        self.last: httpx.Response | None = None  # CA's last genuine answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        genuine = httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )
        changed = self.tamper(request, genuine) if self.tamper else genuine
        self.last = genuine
        return changed


def answer(status: int, headers: Any, body: bytes) -> httpx.Response:
    kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return httpx.Response(status, headers=kept, content=body)


def re_signed(key: HubKey, hub: str) -> Tamper:
    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in (*SIGNATURE_HEADERS, "content-digest", "ehub-hub")
        }
        headers |= sign_response(
            response.status_code,
            {"Content-Type": response.headers["content-type"]},
            response.content,
            key,
            hub,
            request_method=request.method,
            request_url=str(request.url),
            request_headers=request.headers,
        )
        return answer(response.status_code, headers, response.content)

    return tamper


def unsigned(_: httpx.Request, response: httpx.Response) -> httpx.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in SIGNATURE_HEADERS}
    return answer(response.status_code, headers, response.content)


def cheaper(_: httpx.Request, response: httpx.Response) -> httpx.Response:
    body = response.content.replace(b'"45.00"', b'"0.45"')
    assert body != response.content
    return answer(response.status_code, response.headers, body)


# -- two hubs -----------------------------------------------------------------------------


def settings(tmp_path: Any, hub: str, **extra: Any) -> GatewaySettings:
    var = tmp_path / hub.lower()
    return GatewaySettings(
        hub_id=hub, var_dir=var, database_url=f"sqlite+aiosqlite:///{var}/gateway.db", **extra
    )


async def trusting(s: GatewaySettings, *peers: tuple[HubKey, str]) -> None:
    s.var_dir.mkdir(parents=True, exist_ok=True)
    db = Database(s.resolved_database_url)
    await upgrade(db, "ehub_gateway.migrations")
    for key, url in peers:
        doc = build_document(
            hub_id=key.hub_id,
            name=key.hub_id,
            base_url=url,
            keys=[key.public_info],
            signers=[key],
            now=datetime.now(UTC),
        )
        await add_peer(
            db, own_hub=s.hub_id, base_url=url, fingerprint=key.fingerprint, document=doc
        )
    await db.dispose()


@pytest.fixture
async def hubs(tmp_path) -> Any:
    """CN (buyer's hub, trusting CA and MY) and CA (seller's hub, trusting CN)."""
    cn_s = settings(tmp_path, "CN", internal_token=TOKEN)
    ca_s = settings(tmp_path, "CA", catalog_url="http://catalog.test")
    keys = {
        "CN": KeyRing(cn_s.resolved_keys_dir, "CN").ensure_active(),
        "CA": KeyRing(ca_s.resolved_keys_dir, "CA").ensure_active(),
        "MY": KeyRing(tmp_path / "my-keys", "MY").ensure_active(),
    }
    await trusting(cn_s, (keys["CA"], CA_URL), (keys["MY"], "http://my.invalid"))
    await trusting(ca_s, (keys["CN"], "http://cn.invalid"))
    cn_app, ca_app = create_app(cn_s), create_app(ca_s)
    services = httpx.AsyncClient(transport=httpx.ASGITransport(app=stand_in_services()))
    async with (
        services,
        serve_in_process(ca_app),
        serve_in_process(cn_app) as client,
    ):
        middleman = Middleman(ca_app)
        cn_fed = cn_app.state.fed
        await cn_fed.client.aclose()
        cn_fed.client = httpx.AsyncClient(
            transport=middleman, auth=HubSigningAuth(cn_fed.keyring.active_key, "CN")
        )
        for app in (cn_app, ca_app):
            await app.state.orders.services.aclose()
            app.state.orders.services = services
        resp = await client.post(
            "/operator/v1/partners",
            json={"name": "Tmall", "role": "marketplace"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert resp.status_code == 201, resp.text
        partner = {"Authorization": f"Bearer {resp.json()['key']['key']}"}
        yield cn_app, client, partner, middleman, keys


def order(seller_id: str = "sel_lobster") -> dict[str, Any]:
    return {
        "seller_hub": "CA",
        "seller_id": seller_id,
        "buyer": {"id": "buyer-42", "identity_number": "110101199003074578"},
        "ship_to": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": "CN",
        },
        "lines": [{"product_id": "prd_lobster", "quantity": 2}],
        "currency": "CNY",
    }


async def table_counts(app: Any) -> dict[str, int]:
    """Rows of every table of CN's gateway database."""
    async with app.state.ctx.db.reader() as session:
        conn = await session.connection()
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        return {n: int(await session.scalar(text(f'SELECT count(*) FROM "{n}"'))) for n in names}


# -- tests --------------------------------------------------------------------------------


async def test_an_offer_signed_by_the_seller_hub_is_believed_and_the_order_placed(hubs) -> None:
    cn_app, client, partner, middleman, _ = hubs
    before = await table_counts(cn_app)
    resp = await client.post("/v1/orders", json=order(), headers=partner)
    assert resp.status_code == 201, resp.text
    assert resp.json()["state"] == "placed"
    assert resp.json()["lines"][0]["unit_price"] == "45.00"
    # CA signed what it answered (the seller's side of the offer route).
    assert middleman.last is not None and middleman.last.headers["ehub-hub"] == "CA"
    assert 'keyid="CA#' in middleman.last.headers["signature-input"]
    assert (await table_counts(cn_app))["orders"] == before["orders"] + 1


def _impostor(keys: dict[str, HubKey]) -> Tamper:
    real = keys["CA"]
    fake = HubKey.generate(kid=real.kid, not_before=real.not_before, not_after=real.not_after)
    return re_signed(fake, "CA")  # CA's key id, not CA's private key


def _unknown_key(keys: dict[str, HubKey]) -> Tamper:
    real = keys["CA"]
    other = HubKey.generate(kid="CA#2099-01", not_before=real.not_before, not_after=real.not_after)
    return re_signed(other, "CA")


TAMPERS: dict[str, tuple[Callable[[dict[str, HubKey]], Tamper], str]] = {
    "unsigned": (lambda keys: unsigned, "missing_signature"),
    "price-changed-after-signing": (lambda keys: cheaper, "digest_mismatch"),
    "signed-by-another-trusted-hub": (lambda keys: re_signed(keys["MY"], "MY"), "hub_mismatch"),
    "cas-key-id-another-private-key": (_impostor, "bad_signature"),
    "a-ca-key-cn-does-not-know": (_unknown_key, "unknown_key"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
async def test_an_offer_that_does_not_verify_is_502_and_nothing_is_placed(hubs, case) -> None:
    cn_app, client, partner, middleman, keys = hubs
    make, reason = TAMPERS[case]
    middleman.tamper = make(keys)
    before = await table_counts(cn_app)
    resp = await client.post(
        "/v1/orders", json=order(), headers={**partner, "Idempotency-Key": f"k-{case}"}
    )
    assert resp.status_code == 502, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["type"] == "https://ehub.dev/problems/unverified-offer"
    assert problem["reason"] == reason and "CA" in problem["detail"]
    assert await table_counts(cn_app) == before


async def test_an_offer_answered_to_another_request_is_502(hubs) -> None:
    cn_app, client, partner, middleman, _ = hubs
    assert (await client.post("/v1/orders", json=order(), headers=partner)).status_code == 201
    captured = middleman.last
    assert captured is not None
    # CA's genuine, signed answer, but to the request before: the signature covers that
    # request's signature, not this one's.
    middleman.tamper = lambda _req, _resp: answer(
        captured.status_code, captured.headers, captured.content
    )
    before = await table_counts(cn_app)
    resp = await client.post("/v1/orders", json=order(), headers=partner)
    assert resp.status_code == 502, resp.text
    assert resp.json()["reason"] == "bad_signature"
    assert await table_counts(cn_app) == before


async def test_a_signed_refusal_passes_with_its_fields_and_an_unsigned_one_is_502(hubs) -> None:
    cn_app, client, partner, middleman, _ = hubs
    before = await table_counts(cn_app)
    resp = await client.post("/v1/orders", json=order("sel_unknown"), headers=partner)
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["seller_id"]
    assert middleman.last is not None and middleman.last.status_code == 422
    assert "signature" in middleman.last.headers  # CA signs its refusals too

    middleman.tamper = unsigned
    resp = await client.post("/v1/orders", json=order("sel_unknown"), headers=partner)
    assert resp.status_code == 502, resp.text
    assert resp.json()["reason"] == "missing_signature"
    assert await table_counts(cn_app) == before
