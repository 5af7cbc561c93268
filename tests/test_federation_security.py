"""Who may tell CA what: requests and envelopes built here with the real signer
(``sign_request``, ``seal``) and sent to live gateway processes. Forged, stale, replayed or
unknown-key requests are 401 with their reason code; a known hub overstepping its rights
is 403; neither changes anything at CA. Receipts are CA's signature; rotated keys keep
verifying until they expire and are learned by peers; revocations reach peers at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ehub_core.envelope import confirms, read_unverified, sign_receipt, verify_receipt
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, ReceiptOutcome, SignedReceipt
from ehub_core.signing import (
    HubKey,
    PublicKeyInfo,
    SignatureError,
    content_digest,
    sign_request,
)
from ehub_gateway.federation.wellknown import verify_document
from tests.federation_harness import (
    EVENTS_PATH,
    FAST,
    Broker,
    Gateway,
    batch,
    order_placed,
    peer_all,
    pre_dated,
    receipt_entries,
    sealed_order,
    sealed_shipment,
    signed_post,
    start_all,
    state_counts,
    wait_receipted,
    wait_until,
)

ACCEPTED = ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED
REJECTED = ReceiptOutcome.RECEIPT_OUTCOME_REJECTED
pytestmark = pytest.mark.timeout(300)


@dataclass
class Net:
    broker: Broker
    cn: Gateway
    ca: Gateway
    my: Gateway  # a third hub CA trusts, but only for OrderPlaced

    @property
    def events_url(self) -> str:
        return f"{self.ca.url}{EVENTS_PATH}"

    def key(self, hub: str) -> HubKey:
        """The hub's current signing key, read from its key directory as its gateway does."""
        return {"CN": self.cn, "CA": self.ca, "MY": self.my}[hub].keyring().active_key()

    def ca_trusts(self, kid: str) -> PublicKeyInfo | None:
        """Verifier's view: CA's own keys and the peers' keys as CA holds them."""
        for gw in (self.ca, self.cn, self.my):
            info = gw.keyring().resolve(kid)
            if info is not None:
                return info
        return None

    def entries(self, response: httpx.Response, sender: str = "CN") -> list:
        return receipt_entries(response, self.ca.keyring().resolve, receiver="CA", sender=sender)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base: Path = tmp_path_factory.mktemp("fed-security")
    broker = Broker(base).start()
    hubs = {
        hub: Gateway(hub, base / hub.lower(), f"127.0.0.{host}", broker.bootstrap, dict(FAST))
        for hub, host in (("CN", 32), ("CA", 33), ("MY", 34))
    }
    # Keys valid since two hours ago, so a test can sign "minutes ago" honestly.
    fp = {hub: gw.create_key(not_before=pre_dated()) for hub, gw in hubs.items()}
    cn, ca, my = hubs["CN"], hubs["CA"], hubs["MY"]
    try:
        start_all(cn, ca, my)
        peer_all(
            [
                (cn, ca, fp["CA"], ["--transport", "http"]),
                (ca, cn, fp["CN"], ["--transport", "http"]),
                (ca, my, fp["MY"], ["--transport", "http", "--allow", "OrderPlaced"]),
                (my, ca, fp["CA"], ["--transport", "http"]),
            ]
        )
        yield Net(broker, cn, ca, my)
    finally:
        for gw in hubs.values():
            gw.stop()
        broker.stop()


def assert_problem(response: httpx.Response, status: int, reason: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    if reason is not None:
        assert problem["reason"] == reason, problem
    return problem


# -- 401: the sender is not who it claims, or the message is not intact and fresh ---------


def _tampered_body(net: Net) -> httpx.Response:
    body = batch(sealed_order(net.key("CN")))
    _, headers = signed_post_headers(net, body)
    return httpx.post(net.events_url, content=batch(sealed_order(net.key("CN"))), headers=headers)


def _tampered_digest(net: Net) -> httpx.Response:
    body = batch(sealed_order(net.key("CN")))
    other = batch(sealed_order(net.key("CN")))
    _, headers = signed_post_headers(net, body)
    headers["Content-Digest"] = content_digest(other)
    return httpx.post(net.events_url, content=other, headers=headers)


def _wrong_key(net: Net) -> httpx.Response:
    real = net.key("CN")
    # CN's key id, but not CN's private key.
    impostor = HubKey.generate(kid=real.kid, not_before=real.not_before, not_after=real.not_after)
    return signed_post(net.events_url, batch(sealed_order(impostor)), impostor)[0]


def _unknown_hub(net: Net) -> httpx.Response:
    stranger = HubKey.generate(
        kid="XX#2026-01", not_before=pre_dated(), not_after=pre_dated() + timedelta(days=9)
    )
    return signed_post(net.events_url, batch(sealed_order(stranger)), stranger)[0]


def _claims_another_hub(net: Net) -> httpx.Response:
    _, headers = signed_post_headers(net, body := batch(sealed_order(net.key("CN"))))
    headers["EHub-Hub"] = "MY"
    return httpx.post(net.events_url, content=body, headers=headers)


def _expired_signature(net: Net) -> httpx.Response:
    then = datetime.now(UTC) - timedelta(seconds=400)  # expires 60 s later: long gone
    key = net.key("CN")
    return signed_post(net.events_url, batch(sealed_order(key)), key, now=then)[0]


def _unsigned(net: Net) -> httpx.Response:
    return httpx.post(
        net.events_url,
        content=batch(sealed_order(net.key("CN"))),
        headers={"Content-Type": "application/x-protobuf", "EHub-Hub": "CN"},
    )


def signed_post_headers(net: Net, body: bytes) -> tuple[bytes, dict[str, str]]:
    """Headers CN would send for ``body``, without sending anything."""
    headers = {"Content-Type": "application/x-protobuf"}
    headers.update(sign_request("POST", net.events_url, headers, body, net.key("CN"), "CN"))
    return body, headers


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (_tampered_body, "digest_mismatch"),
        (_tampered_digest, "bad_signature"),
        (_wrong_key, "bad_signature"),
        (_unknown_hub, "unknown_key"),
        (_claims_another_hub, "hub_mismatch"),
        (_expired_signature, "signature_expired"),
        (_unsigned, "missing_signature"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else v,
)
def test_forged_or_stale_request_is_401_and_changes_nothing_at_ca(
    net: Net, forge: Callable[[Net], httpx.Response], reason: str
) -> None:
    before = state_counts(net.ca)
    response = forge(net)
    assert_problem(response, 401, reason)
    assert response.headers["www-authenticate"].startswith("Signature")
    assert state_counts(net.ca) == before


def test_replayed_request_is_401_and_changes_nothing_at_ca(net: Net) -> None:
    key = net.key("CN")
    body = batch(sealed_order(key))
    first, headers = signed_post(net.events_url, body, key)
    assert [e.outcome for e in net.entries(first)] == [ACCEPTED]
    after_first = state_counts(net.ca)

    replay = httpx.post(net.events_url, content=body, headers=headers)
    assert_problem(replay, 401, "replayed_nonce")
    assert state_counts(net.ca) == after_first


@pytest.mark.parametrize(
    "tamper",
    ["flipped_bit", "other_target"],
)
def test_envelope_that_does_not_verify_is_rejected_in_the_receipt(net: Net, tamper: str) -> None:
    key = net.key("CN")
    if tamper == "flipped_bit":
        good = sealed_order(key)
        envelope = good[:40] + bytes([good[40] ^ 0x01]) + good[41:]
        reason = "bad_signature"
    else:
        envelope = sealed_order(key, target="MY")
        reason = "target_mismatch"
    before = state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"])
    response, _ = signed_post(net.events_url, batch(envelope), key)
    [entry] = net.entries(response)
    assert (entry.outcome, entry.reason_code) == (REJECTED, reason)
    assert state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"]) == before


# -- 403: a known, authenticated hub acting outside its rights ---------------------------


def test_cn_delivering_an_event_of_another_hub_is_403(net: Net) -> None:
    foreign = sealed_order(net.key("MY"))  # MY's genuine event, which CA would trust from MY
    before = state_counts(net.ca)
    response, _ = signed_post(net.events_url, batch(foreign), net.key("CN"))
    problem = assert_problem(response, 403)
    assert problem["event_id"] == read_unverified(foreign).event_id
    assert state_counts(net.ca) == before


def test_peer_allowed_only_order_placed_sending_a_shipment_event_is_403(net: Net) -> None:
    key = net.key("MY")
    before = state_counts(net.ca)
    response, _ = signed_post(net.events_url, batch(sealed_shipment(key)), key)
    assert_problem(response, 403)
    assert state_counts(net.ca) == before
    # What MY is allowed still goes through.
    allowed, _ = signed_post(net.events_url, batch(sealed_order(key)), key)
    assert [e.outcome for e in net.entries(allowed, sender="MY")] == [ACCEPTED]


@pytest.mark.parametrize("victim", ["MY", "CA"])
def test_revoking_a_key_of_another_hub_is_403(net: Net, victim: str) -> None:
    kid = net.key(victim).kid
    before = state_counts(net.ca)
    body = f'{{"kid": "{kid}"}}'.encode()
    response, _ = signed_post(
        f"{net.ca.url}/federation/v1/revocations",
        body,
        net.key("CN"),
        content_type="application/json",
    )
    assert_problem(response, 403)
    assert state_counts(net.ca) == before
    if victim == "MY":  # MY's key still speaks for MY
        key = net.key("MY")
        ok, _ = signed_post(net.events_url, batch(sealed_order(key)), key)
        assert [e.outcome for e in net.entries(ok, sender="MY")] == [ACCEPTED]


# -- receipts ------------------------------------------------------------------------------


def test_stored_receipt_verifies_with_cas_public_key_and_forgeries_do_not(net: Net) -> None:
    event = order_placed(transport="http")
    net.cn.inject([event])
    wait_receipted(net.cn, [event["event_id"]], timeout=30)
    digest, signed = net.cn.rows(
        "SELECT o.digest, r.signed_receipt FROM fed_outbound o "
        "JOIN fed_receipts r ON r.receipt_id = o.receipt_id WHERE o.event_id = ?",
        [event["event_id"]],
    )[0]
    ca_keys = net.ca.keyring()
    resolve = ca_keys.resolve  # CA's public keys only
    receipt = verify_receipt(signed, resolve, expected_receiver="CA", expected_sender="CN")
    assert confirms(receipt, event["event_id"], digest)
    assert receipt.key_id in {k.kid for k in ca_keys.public_keys()}

    outer = SignedReceipt.FromString(signed)
    # Signed by another key that claims to be CA's.
    ca_key = ca_keys.active_key()
    impostor = HubKey.generate(
        kid=ca_key.kid, not_before=ca_key.not_before, not_after=ca_key.not_after
    )
    forged = SignedReceipt(
        receipt=outer.receipt, key_id=outer.key_id, signature=impostor.sign(outer.receipt)
    )
    with pytest.raises(SignatureError) as exc:
        verify_receipt(forged.SerializeToString(), resolve, expected_receiver="CA")
    assert exc.value.reason_code == "bad_signature"

    # CA's genuine signature over an altered digest.
    inner = Receipt.FromString(outer.receipt)
    inner.entries[0].envelope_sha256 = bytes(32)
    altered = SignedReceipt(
        receipt=inner.SerializeToString(), key_id=outer.key_id, signature=outer.signature
    )
    with pytest.raises(SignatureError) as exc:
        verify_receipt(altered.SerializeToString(), resolve, expected_receiver="CA")
    assert exc.value.reason_code == "bad_signature"

    # A genuine receipt, but by another hub (MY) than the one CN delivered to.
    by_my = sign_receipt(list(inner.entries), net.key("MY"), sender_hub="CN")
    with pytest.raises(SignatureError) as exc:
        verify_receipt(by_my, net.ca_trusts, expected_receiver="CA", expected_sender="CN")
    assert exc.value.reason_code == "hub_mismatch"


# -- key rotation and revocation -------------------------------------------------------------


def ca_knows(net: Net, kid: str) -> bool:
    return bool(net.ca.scalar("SELECT count(*) FROM fed_peer_keys WHERE kid = ?", [kid]))


def test_rotated_keys_verify_until_they_expire_and_peers_learn_the_new_key(net: Net) -> None:
    ring = net.cn.keyring()
    old = ring.active_key()
    # A short-lived key, published by CN's gateway alongside the long-lived one.
    lifetime = timedelta(seconds=12)
    short = ring.generate(not_before=datetime.now(UTC) - timedelta(seconds=1), lifetime=lifetime)
    sealed_short = [sealed_order(short) for _ in range(2)]

    # While both keys are valid, what each sealed verifies at CA. CA learns the short-lived
    # key from CN's document the first time it meets the unknown key id.
    response, _ = signed_post(net.events_url, batch(sealed_order(old)), old)
    assert [e.outcome for e in net.entries(response)] == [ACCEPTED]

    def short_accepted() -> bool:
        response, _ = signed_post(net.events_url, batch(sealed_short[0]), old)
        [entry] = net.entries(response)
        assert entry.outcome == ACCEPTED or entry.reason_code == "unknown_key", entry
        return entry.outcome == ACCEPTED

    wait_until(short_accepted, timeout=10, what="CA to learn CN's short-lived key")
    assert datetime.now(UTC) < short.not_after, "too slow to test before the key expired"

    # `ehub keys rotate`: CN's running gateway seals with the new key on its own; CA has
    # never seen it, refreshes CN's document (signed by a key it trusts) and accepts it.
    rotated = net.cn.cli("keys", "rotate", "--hub", "CN", "--var-dir", str(net.cn.var_dir))
    new = net.cn.keyring().active_key()
    assert new.kid not in {old.kid, short.kid} and new.kid in rotated.stdout
    event = order_placed(transport="http")
    net.cn.inject([event])
    wait_receipted(net.cn, [event["event_id"]], timeout=30)
    envelope = net.cn.scalar(
        "SELECT envelope FROM fed_outbound WHERE event_id = ?", [event["event_id"]]
    )
    assert read_unverified(envelope).key_id == new.kid
    assert ca_knows(net, new.kid)

    # The well-known document is signed by every valid key, old and new alike.
    doc = httpx.get(f"{net.cn.url}/.well-known/ehub", timeout=10).json()
    assert {s["kid"] for s in doc["signatures"]} >= {old.kid, new.kid}
    for key in (old, new):
        info = key.public_info
        verified = verify_document(doc, trusted=lambda kid, i=info: i if kid == i.kid else None)
        assert verified.signed_by == [key.kid]
    # ... and the rotated-out key still verifies what it seals.
    response, _ = signed_post(net.events_url, batch(sealed_order(old)), new)
    assert [e.outcome for e in net.entries(response)] == [ACCEPTED]

    # Once the short-lived key has expired, what it sealed no longer counts.
    wait_until(
        lambda: datetime.now(UTC) > short.not_after + timedelta(seconds=1),
        timeout=lifetime.total_seconds() + 5,
        what="the short-lived key to expire",
    )
    before = state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"])
    late, _ = signed_post(net.events_url, batch(sealed_short[1]), new)
    [entry] = net.entries(late)
    assert (entry.outcome, entry.reason_code) == (REJECTED, "key_expired")
    assert state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"]) == before


def test_revoked_key_is_rejected_by_peers_within_seconds(net: Net) -> None:
    # A fresh active key, known to CA through real traffic, is found compromised.
    net.cn.cli("keys", "rotate", "--hub", "CN", "--var-dir", str(net.cn.var_dir))
    doomed = net.cn.keyring().active_key()
    warmup = order_placed(transport="http")
    net.cn.inject([warmup])
    wait_receipted(net.cn, [warmup["event_id"]], timeout=30)
    assert ca_knows(net, doomed.kid)
    sealed_before = sealed_order(doomed)

    out = net.cn.cli("keys", "revoke", doomed.kid, "--hub", "CN", "--var-dir", str(net.cn.var_dir))
    revoked_at = time.monotonic()
    assert "CA: accepted" in out.stdout, out.stdout

    def rejected() -> bool:
        response, _ = signed_post(net.events_url, batch(sealed_order(doomed)), doomed)
        return response.status_code == 401 and response.json()["reason"] == "key_revoked"

    wait_until(rejected, timeout=5, what="CA to reject the revoked key")
    assert time.monotonic() - revoked_at < 5
    before = state_counts(net.ca)
    response, _ = signed_post(net.events_url, batch(sealed_order(doomed)), doomed)
    assert_problem(response, 401, "key_revoked")
    assert state_counts(net.ca) == before

    # What the revoked key sealed is refused too, even inside a request signed by a good key.
    good = net.cn.keyring().active_key()
    assert good.kid != doomed.kid
    before = state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"])
    response, _ = signed_post(net.events_url, batch(sealed_before), good)
    [entry] = net.entries(response)
    assert (entry.outcome, entry.reason_code) == (REJECTED, "key_revoked")
    assert state_counts(net.ca, ["fed_received", "ehub_inbox", "ehub_outbox"]) == before

    # CN's running gateway stops signing with the revoked key and keeps delivering.
    after = order_placed(transport="http")
    net.cn.inject([after])
    wait_receipted(net.cn, [after["event_id"]], timeout=30)
    envelope = net.cn.scalar(
        "SELECT envelope FROM fed_outbound WHERE event_id = ?", [after["event_id"]]
    )
    assert read_unverified(envelope).key_id != doomed.kid


def test_revoking_a_hubs_only_key_still_reaches_its_peers(net: Net) -> None:
    only = net.my.keyring().active_key()
    assert [k.kid for k in net.my.keyring().all_keys()] == [only.kid]
    out = net.my.cli("keys", "revoke", only.kid, "--hub", "MY", "--var-dir", str(net.my.var_dir))
    assert "CA: accepted" in out.stdout, out.stdout
    assert net.ca.scalar(
        "SELECT revoked_at IS NOT NULL FROM fed_peer_keys WHERE kid = ?", [only.kid]
    )
    response, _ = signed_post(net.events_url, batch(sealed_order(only)), only)
    assert_problem(response, 401, "key_revoked")
