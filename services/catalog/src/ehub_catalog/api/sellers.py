"""Sellers endpoints: a partner creates and reads its own sellers."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ehub_catalog.api.deps import CatalogReader, CatalogWriter
from ehub_catalog.catalog import service
from ehub_catalog.catalog.schemas import SellerCreate, SellerRead
from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.idempotency import IdempotencyKey, respond_once
from ehub_core.partners import GuardedRoute

router = APIRouter(prefix="/v1/sellers", tags=["sellers"], route_class=GuardedRoute)


@router.post("", status_code=201, response_model=SellerRead, summary="Create a seller")
async def create_seller(
    data: SellerCreate,
    session: SessionDep,
    caller: CatalogWriter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Creates a seller owned by the calling partner (not SME-verified: the operator verifies).
    Takes an `Idempotency-Key`."""

    async def create() -> SellerRead:
        seller = await service.create_seller(session, data=data, owner=caller.partner_id)
        return SellerRead.model_validate(seller)

    return await respond_once(
        session,
        scope=caller.idempotency_scope("POST /v1/sellers"),
        key=idempotency_key,
        request=data,
        create=create,
    )


@router.get("/{seller_id}", response_model=SellerRead, summary="A seller")
async def get_seller(seller_id: str, session: ReadSessionDep, caller: CatalogReader) -> SellerRead:
    """One seller of the caller's."""
    seller = await service.get_seller(session, seller_id=seller_id, visible_to=caller.visible_to)
    return SellerRead.model_validate(seller)
