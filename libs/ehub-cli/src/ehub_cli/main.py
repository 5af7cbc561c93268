"""``ehub``: the operator's command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ehub_cli.federation import (
    dlq_app,
    events_app,
    gateway_settings,
    init_hub,
    keys_app,
    peers_app,
)
from ehub_cli.network import DEFAULT_DB_PREFIX, NetworkPlan, PostgresServer, Supervisor, status
from ehub_cli.partners import partners_app
from ehub_cli.services import SERVICES

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Run and operate ehub hubs.")
network_app = typer.Typer(no_args_is_help=True, help="A local network of hubs.")
app.add_typer(network_app, name="network")
app.add_typer(keys_app, name="keys")
app.add_typer(peers_app, name="peers")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(partners_app, name="partners")

VarDir = Annotated[Path, typer.Option("--var-dir", envvar="EHUB_VAR_DIR", help="State directory")]


def _parse_hubs(value: str) -> list[str]:
    hubs = [h.strip().upper() for h in value.split(",") if h.strip()]
    bad = [h for h in hubs if len(h) != 2 or not h.isalpha()]
    if not hubs or bad:
        raise typer.BadParameter(f"hubs must be ISO 3166-1 alpha-2 codes, got {value!r}")
    if len(set(hubs)) != len(hubs):
        raise typer.BadParameter("a hub is listed twice")
    return hubs


@app.command()
def init(
    hub: Annotated[str | None, typer.Option(help="Hub id (default: EHUB_HUB_ID)")] = None,
    var_dir: Annotated[Path | None, typer.Option("--var-dir", help="State directory")] = None,
) -> None:
    """Create this hub's Ed25519 signing key (0600, never leaves the key directory)."""
    settings = gateway_settings(hub, var_dir)
    ring, created = init_hub(settings)
    key = ring.active_key()
    verb = "created" if created else "already has"
    typer.echo(f"hub {settings.hub_id} {verb} key {key.kid}")
    typer.echo(f"  fingerprint {key.fingerprint}   (give this to peers for `ehub peers add`)")
    typer.echo(f"  valid {key.not_before:%F %T} .. {key.not_after:%F %T} UTC")
    typer.echo(f"  stored in {settings.resolved_keys_dir}")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="gateway, catalog, customs or logistics")],
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
) -> None:
    """Run one service of this hub (settings from EHUB_* variables).

    Slow and greedy clients are bounded (docs/security.md): a request head must arrive
    within EHUB_HEADER_TIMEOUT and fit in EHUB_MAX_HEADER_BYTES, idle connections close
    after EHUB_KEEP_ALIVE_TIMEOUT, and past EHUB_MAX_CONNECTIONS open connections new
    requests are answered 503; bodies are bounded in the application (ehub_core.limits).
    """
    import uvicorn

    from ehub_core.limits import server_options

    spec = SERVICES.get(service)
    if spec is None:
        typer.echo(f"unknown service {service!r}; one of {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
    settings = spec.load_settings()  # exits 2 with the variable's name on a bad value
    uvicorn.run(
        spec.build(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        **server_options(settings),
    )


@app.command()
def migrate(
    service: Annotated[str, typer.Argument(help="gateway, catalog, customs or logistics")],
) -> None:
    """Apply one service's migrations to its database (EHUB_DATABASE_URL) and exit: what a
    deployment runs once per release before replicas start with EHUB_MIGRATE_ON_START=false."""
    from ehub_cli.migrate import main as migrate_main

    raise typer.Exit(migrate_main([service]))


def _run_network(
    hubs: list[str],
    var_dir: Path,
    base_port: int,
    *,
    postgres: PostgresServer | None = None,
    fresh: bool = False,
) -> None:
    started = time.monotonic()
    plan = NetworkPlan.make(hubs, var_dir, base_port, postgres=postgres)
    sup = Supervisor(plan, fresh=fresh)
    code = 0
    try:
        sup.start()
        typer.echo(f"ehub network ready in {time.monotonic() - started:.1f}s")
        typer.echo(f"  broker     {sup.bootstrap}{' (embedded, in memory)' if sup.broker else ''}")
        db = plan.database_info()
        made = f"{len(sup.databases['created'])} created, {len(sup.databases['reused'])} reused"
        where = db.get("url") or db.get("files")
        typer.echo(f"  databases  {db['backend']} {where} ({made})")
        for hub in hubs:
            for name, svc in sup.plan.of_hub(hub).items():
                typer.echo(f"  {hub} {name:<10} {svc.url}   (docs: {svc.url}/docs)")
        typer.echo(f"  manifest   {var_dir / 'network.json'}")
        typer.echo("Ctrl-C stops everything.")
        code = sup.wait()
    except RuntimeError as exc:
        typer.echo(f"ehub network: {exc}", err=True)
        code = 1
    finally:
        typer.echo("stopping...")
        sup.stop()
    raise typer.Exit(code)


@network_app.command("up")
def network_up(
    hubs: Annotated[str, typer.Option(help="Comma-separated hub ids")] = "CN,CA",
    var_dir: VarDir = Path("var"),
    base_port: Annotated[int, typer.Option(help="First port per hub address; 0 = any free")] = 8000,
    postgres: Annotated[
        str | None,
        typer.Option(
            "--postgres",
            envvar="EHUB_NETWORK_POSTGRES",
            metavar="ADMIN_URL",
            help="Keep the databases on this Postgres server (e.g. "
            "postgresql://postgres@127.0.0.1:5432/postgres, a role that may create "
            "databases): one database per hub and service, <prefix>_<hub>_<service>, "
            "created if missing, reused if present. Default: SQLite files in the var dir.",
        ),
    ] = None,
    db_prefix: Annotated[
        str, typer.Option("--db-prefix", help="First part of the Postgres databases' names")
    ] = DEFAULT_DB_PREFIX,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start from empty databases: drop and recreate the Postgres databases, "
            "or delete the SQLite files (hub keys are kept).",
        ),
    ] = False,
) -> None:
    """Start the broker (unless EHUB_KAFKA_BOOTSTRAP is set) and every hub's services."""
    server = None
    if postgres:
        try:
            server = PostgresServer.parse(postgres, db_prefix)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--postgres / --db-prefix") from None
    _run_network(_parse_hubs(hubs), var_dir, base_port, postgres=server, fresh=fresh)


@network_app.command("status")
def network_status(var_dir: VarDir = Path("var")) -> None:
    """Show each service of the running network: /readyz status, pid and restarts."""
    try:
        manifest, rows = status(var_dir)
    except FileNotFoundError:
        typer.echo(f"no network running ({var_dir / 'network.json'} not found)", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"broker {manifest['broker']['bootstrap']}")
    for r in rows:
        restarting = "  (restarting)" if r.state == "restarting" else ""
        typer.echo(
            f"{r.hub} {r.service:<10} {r.url:<28} readyz={r.readyz!s:<4} pid={r.pid!s:<8} "
            f"restarts={r.restarts}{restarting}"
        )
    if any(r.readyz != 200 for r in rows):
        raise typer.Exit(1)


@app.command()
def run(
    hub: Annotated[str, typer.Option(help="Hub id (ISO 3166-1 alpha-2)")] = "CN",
    var_dir: VarDir = Path("var"),
    base_port: Annotated[int, typer.Option(help="First port; 0 = any free")] = 8000,
) -> None:
    """Run one hub's four services (and the embedded broker unless one is configured)."""
    _run_network(_parse_hubs(hub), var_dir, base_port)


@app.command()
def broker(port: Annotated[int, typer.Option()] = 9092) -> None:
    """Run the embedded Kafka-protocol broker in the foreground (memory only)."""
    from ehub_core.broker import main as broker_main

    sys.exit(broker_main(["--port", str(port)]))


if __name__ == "__main__":  # pragma: no cover
    app()
