"""``ehub partners``: the hub's partners and their API keys (through the gateway's
``ehub_gateway.partners.service``; the key is printed once and only its hash is kept)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_cli.federation import HubOpt, VarOpt, gateway_settings, with_db
from ehub_core.db import Database
from ehub_gateway.partners import service
from ehub_gateway.partners.models import Partner, PartnerKey
from ehub_gateway.partners.service import ROLES, SCOPES, NewKey

partners_app = typer.Typer(no_args_is_help=True, help="Partners of this hub and their API keys.")


T = TypeVar("T")


def _run_tx(
    hub: str | None, var_dir: Path | None, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    settings = gateway_settings(hub, var_dir)

    async def tx(db: Database) -> T:
        async with db.transaction() as session:
            return await work(session)

    return with_db(settings, tx)


@partners_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The partner's name")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")],
    scopes: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated (default: the role's). Known: {', '.join(SCOPES)}"),
    ] = None,
    rate: Annotated[float, typer.Option(help="Requests per second per key")] = 50.0,
    burst: Annotated[float, typer.Option(help="Burst size per key")] = 100.0,
    test: Annotated[bool, typer.Option("--test", help="A test key (ek_test_...)")] = False,
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Add a partner and print its first API key (shown once)."""
    wanted = [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None

    async def work(session: AsyncSession) -> tuple[Partner, NewKey]:
        return await service.create_partner(
            session,
            name=name,
            role=role,
            scopes=wanted,
            rate_per_second=rate,
            burst=burst,
            mode="test" if test else "live",
        )

    try:
        partner, key = _run_tx(hub, var_dir, work)
    except Exception as exc:  # a DomainError names what is wrong
        typer.echo(f"error: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"partner {partner.id} ({partner.role}): {partner.name}")
    typer.echo(f"  scopes {' '.join(partner.scopes)}")
    typer.echo(f"  key    {key.key}")
    typer.echo("  (shown once: only its hash is stored)")


@partners_app.command("list")
def list_(hub: HubOpt = None, var_dir: VarOpt = None) -> None:
    """Partners, their scopes and their keys (ids only)."""
    rows = _run_tx(hub, var_dir, service.list_partners)
    for partner, keys in rows:
        typer.echo(f"{partner.id}  {partner.role:<11} {partner.name}  [{' '.join(partner.scopes)}]")
        for k in keys:
            state = (
                "revoked"
                if k.revoked_at
                else (f"expires {k.expires_at:%F %T}" if k.expires_at else "active")
            )
            typer.echo(f"    key {k.id} ({k.mode})  created {k.created_at:%F %T}  {state}")


@partners_app.command("rotate")
def rotate(
    partner_id: Annotated[str, typer.Argument()],
    grace: Annotated[int, typer.Option(help="Seconds the old keys stay valid")] = 86400,
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """A new key for the partner; the old keys expire after the grace period."""

    async def work(session: AsyncSession) -> NewKey:
        return await service.rotate(session, partner_id, grace=timedelta(seconds=grace))

    try:
        key = _run_tx(hub, var_dir, work)
    except Exception as exc:
        typer.echo(f"error: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"new key {key.key}")
    typer.echo(f"  old keys of {partner_id} stay valid for {grace} s")


@partners_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (the part after ek_live_)")],
    hub: HubOpt = None,
    var_dir: VarOpt = None,
) -> None:
    """Revoke a key now (every gateway of the hub refuses it within a second)."""

    async def work(session: AsyncSession) -> PartnerKey:
        return await service.revoke(session, key_id)

    try:
        key = _run_tx(hub, var_dir, work)
    except Exception as exc:
        typer.echo(f"error: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"key {key.id} revoked at {key.revoked_at:%F %T} UTC")
