"""Products endpoints: create, read, search (a partner's own products)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ehub_catalog.api.deps import CatalogReader, CatalogWriter
from ehub_catalog.catalog import service
from ehub_catalog.catalog.schemas import ProductCreate, ProductPage, ProductRead
from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.idempotency import IdempotencyKey, respond_once
from ehub_core.partners import GuardedRoute

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=GuardedRoute)


@router.post("", status_code=201, response_model=ProductRead)
async def create_product(
    data: ProductCreate,
    session: SessionDep,
    caller: CatalogWriter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> ProductRead:
        product = await service.create_product(session, data=data, visible_to=caller.visible_to)
        return ProductRead.model_validate(product)

    return await respond_once(
        session,
        scope=caller.idempotency_scope("POST /v1/products"),
        key=idempotency_key,
        request=data,
        create=create,
    )


@router.get("/{product_id}", response_model=ProductRead)
async def get_product(
    product_id: str, session: ReadSessionDep, caller: CatalogReader
) -> ProductRead:
    product = await service.get_product(
        session, product_id=product_id, visible_to=caller.visible_to
    )
    return ProductRead.model_validate(product)


@router.get("", response_model=ProductPage)
async def search_products(
    session: ReadSessionDep,
    caller: CatalogReader,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in title or description")
    ] = None,
    seller_id: Annotated[str | None, Query(max_length=40)] = None,
    hs_prefix: Annotated[str | None, Query(pattern=r"^\d{2,10}$")] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductPage:
    items = await service.search_products(
        session,
        q=q,
        seller_id=seller_id,
        hs_prefix=hs_prefix,
        after=cursor,
        limit=limit + 1,
        visible_to=caller.visible_to,
    )
    page = [ProductRead.model_validate(p) for p in items[:limit]]
    next_cursor = page[-1].id if len(items) > limit else None
    return ProductPage(items=page, next_cursor=next_cursor)
