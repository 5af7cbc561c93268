"""Operator commands for identity, peers, outbound events and the dead-letter queue of a
hub's gateway.

They work on the gateway's own state (its key directory and database, from the same
``EHUB_*`` settings the gateway uses), through the gateway's own modules (``peer_docs``,
``peer_store``, ``outbound_store``), so they run beside a live gateway: it picks up peers
within ``EHUB_TRUST_RELOAD_INTERVAL`` seconds and replayed events at its next round.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer

from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.settings import load_settings
from ehub_core.signing import HubKey, HubSigningAuth, KeyRing
from ehub_gateway.federation import outbound_store
from ehub_gateway.federation.models import DeliveryStatus
from ehub_gateway.federation.outbound_store import EventView
from ehub_gateway.federation.peer_docs import add_peer, check_peer_url, fetch_document
from ehub_gateway.federation.peer_store import TRANSPORTS, list_peers, remove_peer
from ehub_gateway.federation.wellknown import DocumentError
from ehub_gateway.settings import GatewaySettings

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, help="This hub's signing keys.")
peers_app = typer.Typer(no_args_is_help=True, help="Peer hubs this hub trusts.")
dlq_app = typer.Typer(no_args_is_help=True, help="Events that could not be delivered.")
events_app = typer.Typer(no_args_is_help=True, help="Events handed to the federation relay.")

HubOpt = Annotated[str | None, typer.Option("--hub", help="Hub id (default: EHUB_HUB_ID)")]
VarOpt = Annotated[Path | None, typer.Option("--var-dir", help="State dir (default: EHUB_VAR_DIR)")]


def gateway_settings(hub: str | None, var_dir: Path | None) -> GatewaySettings:
    overrides: dict[str, Any] = {}
    if hub:
        overrides["hub_id"] = hub
    if var_dir:
        overrides["var_dir"] = var_dir
    return load_settings(GatewaySettings, **overrides)


def keyring_of(settings: GatewaySettings) -> KeyRing:
    return KeyRing(settings.resolved_keys_dir, settings.hub_id)


def with_db(settings: GatewaySettings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await upgrade(db, "ehub_gateway.migrations")
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def init_hub(settings: GatewaySettings) -> tuple[KeyRing, bool]:
    ring = keyring_of(settings)
    had = bool(ring.all_keys())
    ring.ensure_active()
    return ring, not had


# -- keys ------------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(hub: HubOpt = None, var_dir: VarOpt = None) -> None:
    """Show this hub's keys (public data only)."""
    ring = keyring_of(gateway_settings(hub, var_dir))
    now = datetime.now(UTC)
    active = ring.active_key(now).kid if ring.all_keys() else None
    for key in ring.all_keys():
        mark = "active" if key.kid == active else ("valid" if key.is_valid_at(now) else "expired")
        typer.echo(
            f"{key.kid:<16} {key.fingerprint}  {key.not_before:%F} .. {key.not_after:%F}  {mark}"
        )
    for kid in ring.revoked_kids():
        typer.echo(f"{kid:<16} revoked")


@keys_app.command("rotate")
def keys_rotate(hub: HubOpt = None, var_dir: VarOpt = None) -> None:
    """Make a new key active; older keys keep verifying until they expire."""
    ring = keyring_of(gateway_settings(hub, var_dir))
    key = ring.rotate()
    typer.echo(f"new active key {key.kid} ({key.fingerprint}); older keys verify until they expire")


@keys_app.command("revoke")
def keys_revoke(
    kid: Annotated[str, typer.Argument(help="Key id, e.g. CN#2026-11")],
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Revoke a key now and push a signed revocation to every peer."""
    settings = gateway_settings(hub, var_dir)
    ring = keyring_of(settings)
    if ring.get(kid) is None and kid not in ring.revoked_kids():
        typer.echo(f"no key {kid} in {settings.resolved_keys_dir}", err=True)
        raise typer.Exit(1)
    doomed = ring.get(kid)  # kept in memory: it may sign its own revocation
    signer = ring.revoke(kid)
    typer.echo(f"revoked {kid}; signing with {signer.kid} from now on")
    now = datetime.now(UTC)
    # Peers must already trust the key that signs the revocation. The revoked key is the
    # one they surely know (a key `revoke` just generated they cannot know yet); other
    # valid keys, oldest first, are the fallback (e.g. when re-running a revocation).
    others = [k for k in ring.all_keys() if k.kid != kid]
    signers = [k for k in (doomed, *others) if k is not None and k.is_valid_at(now)]
    peers = with_db(settings, list_peers)
    body = json.dumps({"kid": kid, "revoked_at": now.isoformat()}).encode()
    failed = 0
    for peer, _keys in peers:
        outcome = push_revocation(f"{peer.base_url}/federation/v1/revocations", body, signers)
        ok = outcome == "accepted"
        typer.echo(f"  {peer.hub_id}: {outcome}")
        failed += not ok
    if failed:
        raise typer.Exit(1)


def push_revocation(url: str, body: bytes, signers: list[HubKey]) -> str:
    """POST the revocation signed by the first of ``signers`` the peer accepts; return
    ``accepted`` or what went wrong."""
    outcome = "no valid key to sign the revocation with"
    for key in signers:
        try:
            r = _post_signed(url, body, key)
        except httpx.HTTPError as exc:
            return f"unreachable ({exc}); it learns at its next refresh"
        if r.status_code == 200:
            return "accepted"
        outcome = f"HTTP {r.status_code} {r.text[:200]}"
        if r.status_code != 401:  # only another key can cure an authentication failure
            break
    return outcome


def _post_signed(url: str, body: bytes, key: HubKey) -> httpx.Response:
    with httpx.Client(auth=HubSigningAuth(lambda: key, key.hub_id), timeout=10) as client:
        return client.post(url, content=body, headers={"Content-Type": "application/json"})


# -- peers -----------------------------------------------------------------------------------


@peers_app.command("add")
def peers_add(
    url: Annotated[str, typer.Argument(help="The peer gateway's base URL")],
    fingerprint: Annotated[str, typer.Option(help="Pinned key fingerprint, SHA256:...")],
    transport: Annotated[
        str, typer.Option(help="http, kafka, or auto (kafka if the peer shares our backbone)")
    ] = "auto",
    allow: Annotated[
        list[str] | None, typer.Option(help="Event types the peer may send (default: all)")
    ] = None,
    replace: Annotated[
        str | None,
        typer.Option(
            help="Replace a hub that is a peer already, on purpose: repeat the new pinned "
            "fingerprint. Without it, a document for a known hub must be signed by a key "
            "trusted for that hub now"
        ),
    ] = None,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http", help="Accept a plain http URL that is not loopback (trusted network)"
        ),
    ] = False,
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Onboard a peer: fetch its well-known document and check the pinned fingerprint."""
    settings = gateway_settings(hub, var_dir)
    try:
        check_peer_url(url, allow_http=allow_http)
        doc = asyncio.run(fetch_document(url))
    except DocumentError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        typer.echo(f"cannot fetch {url}/.well-known/ehub: {exc}", err=True)
        raise typer.Exit(1) from None
    if transport == "auto":
        ours = settings.resolved_backbone_id
        theirs = (doc.get("backbone") or {}).get("id")
        transport = "kafka" if ours and theirs == ours else "http"
    if transport not in TRANSPORTS:
        typer.echo(f"transport must be auto, {' or '.join(TRANSPORTS)}", err=True)
        raise typer.Exit(2)

    async def work(db: Database) -> Any:
        return await add_peer(
            db,
            own_hub=settings.hub_id,
            base_url=url,
            fingerprint=fingerprint,
            transport=transport,
            allowed_types=allow,
            document=doc,
            replace=replace,
            allow_http=allow_http,
        )

    try:
        verified = with_db(settings, work)
    except DocumentError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"peer {verified.hub_id} ({verified.name}) added via {transport}; "
        f"keys: {', '.join(k.kid for k in verified.keys)}"
    )


@peers_app.command("list")
def peers_list(hub: HubOpt = None, var_dir: VarOpt = None) -> None:
    """Show trusted peers and their keys."""
    for peer, keys in with_db(gateway_settings(hub, var_dir), list_peers):
        typer.echo(
            f"{peer.hub_id}  {peer.base_url}  via {peer.transport}  "
            f"pinned {peer.pinned_fingerprint}"
        )
        for k in keys:
            state = f"revoked {k.revoked_at:%F %T}" if k.revoked_at else f"until {k.not_after:%F}"
            typer.echo(f"    {k.kid:<16} {state}")


@peers_app.command("remove")
def peers_remove(
    peer_hub: Annotated[str, typer.Argument(help="The peer's hub id")],
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Stop trusting a peer (its keys are forgotten)."""
    settings = gateway_settings(hub, var_dir)

    async def work(db: Database) -> bool:
        return await remove_peer(db, peer_hub.upper())

    if not with_db(settings, work):
        typer.echo(f"no peer {peer_hub}", err=True)
        raise typer.Exit(1)
    typer.echo(f"peer {peer_hub.upper()} removed")


# -- outbound events and dead letters ----------------------------------------------------


def _when(t: datetime | None) -> str:
    return f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if t is not None else "-"


def _show(view: EventView) -> list[str]:
    receipt = "-"
    if view.receipt_id:
        receipt = f"{view.receipt_id} from {view.target_hub} at {_when(view.receipted_at)}"
        if view.receipt_bytes is not None:
            receipt += f" ({view.receipt_bytes} bytes, signed)"
    lines = [
        f"event        {view.event_id}",
        f"type         {view.event_type} -> {view.target_hub} (subject {view.subject})",
        f"transport    {view.transport or 'as the peer is set up'}",
        f"state        {view.status}",
        f"attempts     {view.attempts}",
        f"last error   {view.last_error or '-'}",
        f"created      {_when(view.created_at)}",
        f"last attempt {_when(view.last_attempt_at)}",
    ]
    if view.next_attempt_at is not None:
        lines.append(f"next attempt {_when(view.next_attempt_at)}")
    if view.dead_at is not None:
        lines.append(f"dead-lettered {_when(view.dead_at)}")
    lines.append(f"receipt      {receipt}")
    return lines


@events_app.command("show")
def events_show(
    event_id: Annotated[str, typer.Argument(help="The event id /internal/v1/events answered")],
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """State, attempts, last error and receipt of an event handed to the relay."""

    async def work(db: Database) -> EventView | None:
        return await outbound_store.find_event(db, event_id)

    view = with_db(gateway_settings(hub, var_dir), work)
    if view is None:
        typer.echo(f"no outbound event {event_id}", err=True)
        raise typer.Exit(1)
    for line in _show(view):
        typer.echo(line)


@events_app.command("list")
def events_list(
    status: Annotated[
        DeliveryStatus | None, typer.Option("--status", help="Only events in this state")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many")] = 100,
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """The newest outbound events (oldest of them first), one a line."""

    async def work(db: Database) -> list[EventView]:
        return await outbound_store.list_events(db, status, limit)

    views = with_db(gateway_settings(hub, var_dir), work)
    for v in views:
        typer.echo(
            f"{v.event_id}  {v.event_type:<18} -> {v.target_hub}  {v.status:<9} "
            f"attempts={v.attempts}  last attempt {_when(v.last_attempt_at)}  "
            f"{v.last_error or ''}".rstrip()
        )
    typer.echo(f"{len(views)} event(s)")


@dlq_app.command("list")
def dlq_list(hub: HubOpt = None, var_dir: VarOpt = None) -> None:
    """Events that exhausted their delivery attempts or were rejected for good."""
    views = with_db(gateway_settings(hub, var_dir), outbound_store.dead_letters)
    for v in views:
        typer.echo(
            f"{v.event_id}  {v.event_type:<18} -> {v.target_hub}  attempts={v.attempts}  "
            f"created {_when(v.created_at)}  last attempt {_when(v.last_attempt_at)}  "
            f"dead-lettered {_when(v.dead_at)}  {v.last_error}"
        )
    typer.echo(f"{len(views)} dead-lettered event(s)")


@dlq_app.command("replay")
def dlq_replay(
    event_ids: Annotated[list[str] | None, typer.Argument(help="Event ids (default: all)")] = None,
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Put dead-lettered events back in the delivery queue with fresh attempts."""

    async def work(db: Database) -> int:
        return await outbound_store.replay_dead(db, event_ids)

    n = with_db(gateway_settings(hub, var_dir), work)
    typer.echo(f"{n} event(s) queued for delivery again")
