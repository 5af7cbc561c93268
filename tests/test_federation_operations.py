"""The operator's side of federation, through the real ``ehub`` command line against live
gateways: onboarding a peer pins its key fingerprint, and events a peer will not take
(refused for good, or out of attempts) land in the dead-letter queue and replay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.federation_harness import (
    FAST,
    Broker,
    Gateway,
    init_all,
    order_placed,
    outbound_status,
    shipment_event,
    start_all,
    wait_receipted,
    wait_trusted,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)


@dataclass
class Net:
    broker: Broker
    cn: Gateway
    ca: Gateway
    fingerprints: dict[str, str]

    def cn_cli(self, *args: str, check: bool = True) -> str:
        out = self.cn.cli(*args, "--hub", "CN", "--var-dir", str(self.cn.var_dir), check=check)
        return out.stdout + out.stderr

    def ca_allows(self, *types: str) -> None:
        """CA's operator (re-)onboards CN, allowing only ``types``."""
        allow = [a for t in types for a in ("--allow", t)]
        self.ca.add_peer(self.cn, self.fingerprints["CN"], "--transport", "http", *allow)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base: Path = tmp_path_factory.mktemp("fed-operations")
    broker = Broker(base).start()
    # CN gives up quickly, so dead letters appear within seconds.
    quick = dict(FAST) | {"EHUB_DELIVERY_MAX_ATTEMPTS": "3"}
    cn = Gateway("CN", base / "cn", "127.0.0.42", broker.bootstrap, quick)
    ca = Gateway("CA", base / "ca", "127.0.0.43", broker.bootstrap, dict(FAST))
    fingerprints = init_all(cn, ca)  # `ehub init`
    try:
        start_all(cn, ca)
        yield Net(broker, cn, ca, fingerprints)
    finally:
        for gw in (cn, ca):
            gw.stop()
        broker.stop()


@pytest.fixture(scope="module")
def peered(net: Net) -> Net:
    """CN trusts CA (over the backbone they share); CA takes only OrderPlaced from CN.
    A test that widens CA's grant restores it."""
    added = net.cn.add_peer(net.ca, net.fingerprints["CA"])
    assert "peer CA" in added and "via kafka" in added
    net.ca_allows("OrderPlaced")
    wait_trusted(net.cn, net.ca)
    wait_trusted(net.ca, net.cn)
    return net


@pytest.fixture(autouse=True)
def _ca_running(net: Net) -> Iterator[None]:
    yield
    if net.ca.proc is None or net.ca.proc.poll() is not None:
        net.ca.start()


def peer_rows(gw: Gateway) -> list[tuple]:
    return gw.rows("SELECT hub_id, pinned_fingerprint FROM fed_peers") + gw.rows(
        "SELECT kid, hub_id, public_key FROM fed_peer_keys"
    )


def test_peers_add_with_a_wrong_fingerprint_is_refused_and_stores_nothing(net: Net) -> None:
    before = peer_rows(net.cn)
    wrong = net.fingerprints["CN"]  # a real fingerprint, but not one of CA's keys
    out = net.cn.cli(
        "peers", "add", net.ca.url, "--fingerprint", wrong, "--hub", "CN",
        "--var-dir", str(net.cn.var_dir), check=False,
    )  # fmt: skip
    assert out.returncode == 1
    assert "refused" in out.stderr and wrong in out.stderr
    assert peer_rows(net.cn) == before
    assert ("CA", wrong) not in net.cn.rows("SELECT hub_id, pinned_fingerprint FROM fed_peers")


def test_peers_add_pins_the_fingerprint_it_was_given(peered: Net) -> None:
    listed = peered.cn_cli("peers", "list")
    assert f"CA  {peered.ca.url}  via kafka  pinned {peered.fingerprints['CA']}" in listed
    assert peered.cn.rows("SELECT hub_id, pinned_fingerprint FROM fed_peers") == [
        ("CA", peered.fingerprints["CA"])
    ]


def test_forbidden_event_goes_to_the_dlq_without_holding_back_its_batch(peered: Net) -> None:
    net = peered
    orders = [order_placed(transport="http") for _ in range(20)]
    forbidden = shipment_event(transport="http")  # CA takes only OrderPlaced from CN
    net.cn.inject([*orders[:10], forbidden, *orders[10:]])
    wait_receipted(net.cn, [e["event_id"] for e in orders], timeout=30)
    wait_until(
        lambda: outbound_status(net.cn, [forbidden["event_id"]]) == {"dead": 1},
        timeout=30,
        what="the forbidden event to be dead-lettered",
    )
    error = net.cn.scalar(
        "SELECT last_error FROM fed_outbound WHERE event_id = ?", [forbidden["event_id"]]
    )
    assert "403" in error or "forbidden" in error.lower(), error
    assert (
        net.ca.scalar(
            "SELECT count(*) FROM fed_received WHERE event_id = ?", [forbidden["event_id"]]
        )
        == 0
    )
    listed = net.cn_cli("dlq", "list")
    assert forbidden["event_id"] in listed and "ShipmentEvent" in listed


def test_event_refused_for_good_replays_from_the_dlq_once_the_peer_allows_it(
    peered: Net,
) -> None:
    net = peered
    placed = order_placed(transport="http")  # CA takes news of an order from its buyer's hub
    net.cn.inject([placed])
    wait_receipted(net.cn, [placed["event_id"]], timeout=30)
    refused = shipment_event(transport="http", order=placed["subject"])
    net.cn.inject([refused])
    wait_until(
        lambda: outbound_status(net.cn, [refused["event_id"]]) == {"dead": 1},
        timeout=30,
        what="the refused event to be dead-lettered",
    )
    assert refused["event_id"] in net.cn_cli("dlq", "list")

    net.ca_allows("OrderPlaced", "ShipmentEvent")  # CA's operator widens CN's rights
    try:
        replay_until_receipted(net, refused["event_id"])
    finally:
        net.ca_allows("OrderPlaced")
    assert net.ca.column(
        "SELECT event_id FROM fed_received WHERE event_id = ?", [refused["event_id"]]
    ) == [refused["event_id"]]


def replay_until_receipted(net: Net, event_id: str) -> None:
    def replayed() -> bool:
        # CA reloads its trust within a moment; until then a replay may die again.
        out = net.cn_cli("dlq", "replay", event_id)
        assert "1 event(s) queued" in out, out
        wait_until(
            lambda: outbound_status(net.cn, [event_id]).keys() & {"receipted", "dead"},
            timeout=30,
            what="the replayed event to be settled",
        )
        return outbound_status(net.cn, [event_id]) == {"receipted": 1}

    wait_until(replayed, timeout=60, interval=0.5, what="the replayed event to be receipted")


def test_events_out_of_attempts_go_to_the_dlq_and_replay(peered: Net) -> None:
    net = peered
    net.ca.stop()
    events = [order_placed(transport="http") for _ in range(5)]
    ids = [e["event_id"] for e in events]
    net.cn.inject(events)
    wait_until(
        lambda: outbound_status(net.cn, ids) == {"dead": 5},
        timeout=60,
        what="events to CA, which is down, to run out of attempts",
    )
    attempts = dict(net.cn.rows("SELECT event_id, attempts FROM fed_outbound"))
    assert {attempts[e] for e in ids} == {3}
    listed = net.cn_cli("dlq", "list")
    assert all(e in listed for e in ids)

    net.ca.start()
    assert "5 event(s) queued" in net.cn_cli("dlq", "replay", *ids)
    wait_receipted(net.cn, ids, timeout=60)
    received = net.ca.column("SELECT event_id FROM fed_received")
    assert sorted(e for e in received if e in set(ids)) == sorted(ids)


def test_every_unanswered_backbone_send_records_its_error(peered: Net) -> None:
    """CA is down: CN's sends over the backbone reach the broker but no receipt comes. Each
    send that went unanswered is a failed attempt with its error, visible with ``ehub
    events show`` while the event is still on its way, and in ``ehub dlq list`` (with its
    times) once it is out of attempts."""
    net = peered
    net.ca.stop()
    event = order_placed(transport="kafka")
    event_id = event["event_id"]
    net.cn.inject([event])

    def second_send() -> tuple[str | None] | None:
        attempts, error = net.cn.rows(
            "SELECT attempts, last_error FROM fed_outbound WHERE event_id = ?", [event_id]
        )[0]
        return (error,) if attempts == 2 else None

    (error,) = wait_until(second_send, timeout=60, what="CN to send a second time")
    # Its first send went unanswered: the error names it (receipt_timeout is 4 s here).
    assert error is not None and error.startswith("no receipt within 4s of send 1"), error
    shown = net.cn_cli("events", "show", event_id)
    assert "state        sent" in shown and "no receipt within" in shown, shown

    wait_until(
        lambda: outbound_status(net.cn, [event_id]) == {"dead": 1},
        timeout=60,
        what="the unanswered event to run out of attempts",
    )
    shown = net.cn_cli("events", "show", event_id)
    assert "state        dead" in shown and "attempts     3" in shown, shown
    assert "last error   no receipt within 8s of send 3 over the backbone" in shown, shown
    listed = [line for line in net.cn_cli("dlq", "list").splitlines() if event_id in line]
    assert len(listed) == 1, listed
    created, last, dead = re.findall(
        r"created (\S+ \S+)  last attempt (\S+ \S+)  dead-lettered (\S+ \S+)", listed[0]
    )[0]
    assert created <= last < dead, listed  # the wait for the last send's receipt came first
    assert event_id in net.cn_cli("events", "list", "--status", "dead")
    assert event_id not in net.cn_cli("events", "list", "--status", "receipted")

    # Back up, CA reads the copies waiting on the backbone; its receipt settles the event,
    # dead-lettered or not.
    net.ca.start()
    wait_receipted(net.cn, [event_id], timeout=90)
    shown = net.cn_cli("events", "show", event_id)
    receipt_id = net.cn.scalar("SELECT receipt_id FROM fed_outbound WHERE event_id = ?", [event_id])
    assert "state        receipted" in shown and "last error   -" in shown, shown
    assert f"receipt      {receipt_id} from CA" in shown and "signed" in shown, shown


def test_a_send_to_a_stopped_broker_records_its_error(peered: Net) -> None:
    net = peered
    net.broker.stop()
    try:
        event = order_placed(transport="kafka")
        net.cn.inject([event])

        def failed() -> str | None:
            error = net.cn.scalar(
                "SELECT last_error FROM fed_outbound WHERE event_id = ?", [event["event_id"]]
            )
            return error if error else None

        error = wait_until(failed, timeout=90, what="CN's send to the stopped broker to fail")
        assert error.startswith("backbone unavailable"), error
        assert (
            net.cn.scalar(
                "SELECT attempts FROM fed_outbound WHERE event_id = ?", [event["event_id"]]
            )
            >= 1
        )
    finally:
        net.broker.restart()
    wait_receipted(net.cn, [event["event_id"]], timeout=120)


def test_events_show_names_an_unknown_event(peered: Net) -> None:
    out = peered.cn.cli(
        "events", "show", "0190f1e2-0000-7000-8000-000000000000", "--hub", "CN",
        "--var-dir", str(peered.cn.var_dir), check=False,
    )  # fmt: skip
    assert out.returncode == 1 and "no outbound event 0190f1e2" in out.stderr
    bad = peered.cn.cli(
        "events", "list", "--status", "lost", "--hub", "CN",
        "--var-dir", str(peered.cn.var_dir), check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "lost" in bad.stderr
