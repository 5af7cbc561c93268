from types import SimpleNamespace

import pytest
from sqlalchemy import text

from ehub_catalog.app import create_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process

TOKEN = "catalog-test-internal-token"


@pytest.fixture
async def client(database_url, tmp_path):
    app = create_app(CatalogSettings(database_url=database_url, var_dir=tmp_path))
    async with serve_in_process(app) as c:
        yield c


@pytest.fixture
async def secured(database_url, tmp_path):
    """The catalog with the hub's internal credential set: partners only via the gateway.
    ``client``, ``app`` and ``counts()`` (rows of sellers, products, idempotency records)."""
    app = create_app(
        CatalogSettings(database_url=database_url, var_dir=tmp_path, internal_token=TOKEN)
    )

    async def counts() -> dict[str, int]:
        out = {}
        async with app.state.ctx.db.engine.connect() as conn:
            for table in ("sellers", "products", "ehub_idempotency"):
                out[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
        return out

    async with serve_in_process(app) as c:
        yield SimpleNamespace(client=c, app=app, counts=counts)
