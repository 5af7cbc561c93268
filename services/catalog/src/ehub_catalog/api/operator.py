"""Operator routes (``Authorization: Bearer <EHUB_INTERNAL_TOKEN>``): the hub's own
operations on any seller or product, whoever owns it (docs/partners.md)."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ehub_catalog.catalog import service
from ehub_catalog.catalog.schemas import (
    OperatorSellerCreate,
    ProductRead,
    SellerRead,
    SellerVerification,
)
from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.idempotency import IdempotencyKey, respond_once
from ehub_core.partners import GuardedRoute, authenticate_operator

router = APIRouter(
    prefix="/operator/v1",
    tags=["operator"],
    route_class=GuardedRoute,
    dependencies=[Depends(authenticate_operator)],
)


@router.post(
    "/sellers",
    status_code=201,
    response_model=SellerRead,
    summary="Create a seller on behalf of a partner, with its SME verification",
)
async def create_seller(
    data: OperatorSellerCreate, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """The operator creates a seller owned by the partner named in `owner`, with its SME
    verification. Takes an `Idempotency-Key`."""

    async def create() -> SellerRead:
        seller = await service.create_seller(
            session, data=data, owner=data.owner, sme_verified=data.sme_verified
        )
        return SellerRead.model_validate(seller)

    return await respond_once(
        session,
        scope="POST /operator/v1/sellers",
        key=idempotency_key,
        request=data,
        create=create,
    )


@router.post(
    "/sellers/{seller_id}/verification",
    response_model=SellerRead,
    summary="Set whether the seller is a verified SME (the operator's call only)",
)
async def verify_seller(
    seller_id: str, data: SellerVerification, session: SessionDep
) -> SellerRead:
    """Sets or clears the seller's verified-SME flag; only the operator may."""
    seller = await service.set_verification(
        session, seller_id=seller_id, sme_verified=data.sme_verified
    )
    return SellerRead.model_validate(seller)


@router.get("/sellers/{seller_id}", response_model=SellerRead, summary="Any seller")
async def get_seller(seller_id: str, session: ReadSessionDep) -> SellerRead:
    """Any seller of this hub, whichever partner owns it."""
    return SellerRead.model_validate(await service.get_seller(session, seller_id=seller_id))


@router.get("/products/{product_id}", response_model=ProductRead, summary="Any product")
async def get_product(product_id: str, session: ReadSessionDep) -> ProductRead:
    """Any product of this hub, whichever partner owns it."""
    return ProductRead.model_validate(await service.get_product(session, product_id=product_id))
