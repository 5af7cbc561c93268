"""``peers add`` for a hub that is a peer already (issue: a newcomer took over CN).

A document claiming to be CN, signed by a key of its own (NZ's, or any), used to re-pin
CN: URL, transport and keys. Now a known hub is re-pinned only by a document a key we
trust for it now signed; a replacement takes ``replace`` = the new fingerprint and drops
the old keys in the same transaction; one key speaks for one hub; the key material
follows the pin; a revoked key stays revoked through remove + add. Real keys, real
signatures, SQLite and Postgres.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.signing import HubKey
from ehub_gateway.federation.models import Peer, PeerKey
from ehub_gateway.federation.peer_docs import add_peer
from ehub_gateway.federation.peer_store import remove_peer
from ehub_gateway.federation.wellknown import DocumentError, build_document

NOW = datetime.now(UTC)
SEED = secrets.token_bytes(32)  # NZ's key, which the impostor document reuses


def key(kid: str) -> HubKey:
    return HubKey.generate(
        kid=kid, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=60)
    )


def document(hub: str, url: str, keys: list[HubKey], signers: list[HubKey], revoked=()):
    return build_document(
        hub_id=hub,
        name=hub,
        base_url=url,
        keys=[k.public_info for k in keys],
        signers=signers,
        revoked=revoked,
        now=NOW,
    )


async def state(db: Database) -> dict:
    async with db.reader() as s:
        peers = {
            p.hub_id: (p.base_url, p.pinned_fingerprint) for p in await s.scalars(select(Peer))
        }
        keys = {
            k.kid: (k.hub_id, bytes(k.public_key), k.revoked_at is not None)
            for k in await s.scalars(select(PeerKey))
        }
    return {"peers": peers, "keys": keys}


@pytest.fixture
async def db(database_url):
    d = Database(database_url)
    await upgrade(d, "ehub_gateway.migrations")
    yield d
    await d.dispose()


async def add(db: Database, doc, url: str, fingerprint: str, replace: str | None = None):
    return await add_peer(
        db, own_hub="CA", base_url=url, fingerprint=fingerprint, document=doc, replace=replace
    )


async def test_a_newcomer_cannot_take_over_a_known_peer_and_nothing_changes(db) -> None:
    cn = key("CN#2026-12")
    nz = HubKey(SEED, kid="NZ#2026-12", not_before=cn.not_before, not_after=cn.not_after)
    await add(
        db, document("CN", "https://cn.example", [cn], [cn]), "https://cn.example", cn.fingerprint
    )
    await add(
        db, document("NZ", "https://nz.example", [nz], [nz]), "https://nz.example", nz.fingerprint
    )
    before = await state(db)
    # A document claiming CN, listing an impostor key id with NZ's key, signed with it.
    impostor = HubKey(SEED, kid="CN#impostor", not_before=nz.not_before, not_after=nz.not_after)
    forged = document("CN", "https://attacker.example", [impostor], [impostor])
    with pytest.raises(DocumentError, match="is a peer already"):
        await add(db, forged, "https://attacker.example", impostor.fingerprint)
    # Even replacing on purpose: NZ's key speaks for NZ only.
    with pytest.raises(DocumentError, match="trusted for hub NZ"):
        await add(
            db, forged, "https://attacker.example", impostor.fingerprint, impostor.fingerprint
        )
    # A replacement must name the new fingerprint.
    other = key("CN#other")
    with pytest.raises(DocumentError, match="must repeat"):
        await add(
            db,
            document("CN", "https://x", [other], [other]),
            "https://x",
            other.fingerprint,
            "SHA256:x",
        )
    assert await state(db) == before


async def test_the_peer_itself_re_pins_with_a_document_its_trusted_key_signed(db) -> None:
    old, new = key("CN#2026-12"), key("CN#2027-01")
    await add(
        db,
        document("CN", "https://cn.example", [old], [old]),
        "https://cn.example",
        old.fingerprint,
    )
    rotated = document("CN", "https://cn2.example", [old, new], [old, new])
    await add(db, rotated, "https://cn2.example", new.fingerprint)  # no --replace needed
    after = await state(db)
    assert after["peers"]["CN"] == ("https://cn2.example", new.fingerprint)
    assert set(after["keys"]) == {"CN#2026-12", "CN#2027-01"}


async def test_a_replacement_drops_the_old_keys_and_the_key_material_follows_the_pin(db) -> None:
    # The hub lost its keys and made a new one under the same key id (ids are months).
    lost, again = key("CN#2026-12"), key("CN#2026-12")
    await add(
        db,
        document("CN", "https://cn.example", [lost], [lost]),
        "https://cn.example",
        lost.fingerprint,
    )
    fresh = document("CN", "https://cn.example", [again], [again])
    with pytest.raises(DocumentError, match="is a peer already"):
        await add(db, fresh, "https://cn.example", again.fingerprint)
    await add(db, fresh, "https://cn.example", again.fingerprint, replace=again.fingerprint)
    after = await state(db)
    assert after["keys"] == {"CN#2026-12": ("CN", bytes(again.public_info.public_key), False)}
    assert after["peers"]["CN"][1] == again.fingerprint


async def test_a_key_its_document_lists_as_revoked_is_not_trusted_after_remove_and_add(
    db,
) -> None:
    one, two = key("CN#2026-11"), key("CN#2026-12")
    await add(
        db,
        document("CN", "https://cn.example", [one, two], [one, two]),
        "https://cn.example",
        two.fingerprint,
    )
    assert await remove_peer(db, "CN")
    doc = document("CN", "https://cn.example", [one, two], [two], revoked=["CN#2026-11"])
    await add(db, doc, "https://cn.example", two.fingerprint)
    keys = (await state(db))["keys"]
    assert keys.get("CN#2026-11", ("CN", b"", True))[2] is True  # absent or revoked
    assert keys["CN#2026-12"][2] is False


# -- the URL an operator onboards --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_http", "why"),
    [
        ("http://169.254.169.254/latest", False, "link-local"),
        ("https://169.254.169.254", False, "link-local"),
        ("https://[fe80::1]:8443", False, "link-local"),
        ("https://user:pw@cn.example.invalid", False, "no user or password"),
        ("ftp://cn.example", False, "https://host"),
        ("not a url at all", False, "https://host"),
        ("https://nowhere.invalid", False, "cannot resolve"),
    ],
)
def test_a_peer_url_that_is_not_safe_to_fetch_is_refused(url, allow_http, why) -> None:
    from ehub_gateway.federation.peer_docs import check_peer_url

    with pytest.raises(DocumentError, match=why):
        check_peer_url(url, allow_http=allow_http)


def test_plain_http_only_on_loopback_or_when_allowed() -> None:
    from ehub_gateway.federation.peer_docs import check_peer_url

    assert check_peer_url("http://127.0.0.3:8000") == "http://127.0.0.3:8000"
    assert check_peer_url("http://localhost:8000")
    assert check_peer_url("https://127.0.0.1")
    # A private address over plain http needs the operator's say-so.
    with pytest.raises(DocumentError, match="plain http"):
        check_peer_url("http://10.1.2.3:8000")
    assert check_peer_url("http://10.1.2.3:8000", allow_http=True)


@pytest.fixture
def html_server():
    """A real HTTP server on loopback answering every GET with an HTML page."""
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>login</html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_an_answer_that_is_not_a_json_document_is_a_clear_refusal(html_server) -> None:
    from ehub_gateway.federation.peer_docs import fetch_document

    with pytest.raises(DocumentError, match="did not answer JSON"):
        await fetch_document(html_server)
