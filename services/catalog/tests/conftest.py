import pytest

from ehub_catalog.app import create_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process


@pytest.fixture
async def client(database_url, tmp_path):
    app = create_app(CatalogSettings(database_url=database_url, var_dir=tmp_path))
    async with serve_in_process(app) as c:
        yield c
