"""Dependencies of the logistics routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ehub_logistics.shipments.service import Publishing

SHIPMENTS_STREAM = "shipments"


async def get_publishing(request: Request) -> Publishing:
    settings = request.app.state.ctx.settings
    return Publishing(topic=settings.topic(SHIPMENTS_STREAM))


PublishingDep = Annotated[Publishing, Depends(get_publishing)]
