"""Sellers endpoints."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ehub_catalog.catalog import service
from ehub_catalog.catalog.schemas import SellerCreate, SellerRead
from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.idempotency import IdempotencyKey, respond_once

router = APIRouter(prefix="/v1/sellers", tags=["sellers"])


@router.post("", status_code=201, response_model=SellerRead)
async def create_seller(
    data: SellerCreate, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    async def create() -> SellerRead:
        return SellerRead.model_validate(await service.create_seller(session, data=data))

    return await respond_once(
        session, scope="POST /v1/sellers", key=idempotency_key, request=data, create=create
    )


@router.get("/{seller_id}", response_model=SellerRead)
async def get_seller(seller_id: str, session: ReadSessionDep) -> SellerRead:
    return SellerRead.model_validate(await service.get_seller(session, seller_id=seller_id))
