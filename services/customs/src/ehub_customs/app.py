"""Customs service application."""

from fastapi import FastAPI

from ehub_core.app import ServiceContext, create_service_app
from ehub_core.partners import warn_if_open
from ehub_core.settings import load_settings
from ehub_customs.api import routers
from ehub_customs.consumers import start_consumers
from ehub_customs.screening.data import load_screening
from ehub_customs.screening.service import Screener
from ehub_customs.settings import CustomsSettings
from ehub_customs.tariffs.loader import load_rulebook


async def _load_rules(app: FastAPI, ctx: ServiceContext) -> None:
    """Load and validate every rule file and the screening data; a bad one stops
    start-up (file:line: reason)."""
    settings = ctx.settings
    assert isinstance(settings, CustomsSettings)
    app.state.rulebook = load_rulebook(settings.tariff_dir)
    app.state.screening = load_screening(settings.screening_dir, settings.screening_lists_dir)
    app.state.screener = Screener(
        app.state.screening, app.state.rulebook, settings.screening_restricted
    )


def create_app(settings: CustomsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(CustomsSettings)
    return create_service_app(
        settings,
        title=f"ehub customs ({settings.hub_id})",
        description="Landed cost (duty, VAT/GST, de minimis), declarations, risk and clearance.",
        migrations_package="ehub_customs.migrations",
        routers=routers,
        on_startup=[warn_if_open, _load_rules, start_consumers],
    )
