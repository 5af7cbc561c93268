"""Dependencies of the logistics routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ehub_core.partners import Caller, require_scope
from ehub_core.streams import TRACKING, hub_topic
from ehub_logistics.shipments.service import Publishing

TRACKING_STREAM = TRACKING  # the name lives in ehub_core.streams


async def get_publishing(request: Request) -> Publishing:
    settings = request.app.state.ctx.settings
    return Publishing(topic=hub_topic(settings.hub_id, TRACKING))


PublishingDep = Annotated[Publishing, Depends(get_publishing)]


# Partner routes, by scope (docs/partners.md). Carrier webhooks use none of these: they
# are signed by the carrier and never come through the gateway.
RatesReader = Annotated[Caller, require_scope("rates:read")]
ShipmentsReader = Annotated[Caller, require_scope("shipments:read")]
ShipmentsWriter = Annotated[Caller, require_scope("shipments:write")]
