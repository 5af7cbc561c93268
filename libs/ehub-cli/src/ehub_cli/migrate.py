"""``python -m ehub_cli.migrate SERVICE``: apply one service's migrations to its database
(``EHUB_DATABASE_URL``, like ``ehub serve``) and exit.

What a deployment runs once per release, before the replicas start with
``EHUB_MIGRATE_ON_START=false``, so that no two replicas migrate one database at once
(deploy/helm/ehub/templates/migrations.yaml). Exit 0 with the revision reached, 2 for an
unknown service or bad settings (naming the variable), 1 when the database refused.
"""

from __future__ import annotations

import asyncio
import sys

from ehub_cli.services import SERVICES, ServiceSpec
from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade


def migrations_package(spec: ServiceSpec) -> str:
    """``ehub_catalog.migrations`` for the catalog: beside the service's app module."""
    return spec.app_factory.split(".", 1)[0] + ".migrations"


async def migrate(spec: ServiceSpec) -> str:
    """Upgrade ``spec``'s database to the newest revision; return that revision."""
    settings = spec.load_settings()  # exits 2 naming the variable on a bad value
    db = Database(settings.resolved_database_url)
    try:
        await upgrade(db, migrations_package(spec))
        return str(await current_revision(db))
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in SERVICES:
        print(f"usage: python -m ehub_cli.migrate {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    spec = SERVICES[args[0]]
    try:
        revision = asyncio.run(migrate(spec))
    except Exception as exc:  # the database's own words: unreachable, refused, ...
        print(f"ehub migrate {spec.name}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"ehub migrate {spec.name}: at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
