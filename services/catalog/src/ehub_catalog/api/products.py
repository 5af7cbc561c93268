"""Products endpoints: create, read, and search (the hub's listings with landed cost for
a buyer's country, or a partner's own products; docs/catalog.md)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ehub_catalog.api.deps import CatalogReader, CatalogWriter
from ehub_catalog.catalog import search, service
from ehub_catalog.catalog.query import Filters, refuse_unknown, terms_of
from ehub_catalog.catalog.schemas import (
    CountryCode,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductUpdate,
)
from ehub_catalog.catalog.search_schemas import ListingPage
from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.idempotency import IdempotencyKey, respond_once
from ehub_core.money import Amount, CurrencyCode
from ehub_core.partners import GuardedRoute

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=GuardedRoute)


@router.post("", status_code=201, response_model=ProductRead, summary="List a product")
async def create_product(
    request: Request,
    data: ProductCreate,
    session: SessionDep,
    caller: CatalogWriter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Lists a product of one of the caller's sellers (price, HS code, origin, weight, stock).
    Takes an `Idempotency-Key`."""

    async def create() -> ProductRead:
        product = await service.create_product(
            session, data=data, hub=request.app.state.settings.hub_id, visible_to=caller.visible_to
        )
        return ProductRead.model_validate(product)

    return await respond_once(
        session,
        scope=caller.idempotency_scope("POST /v1/products"),
        key=idempotency_key,
        request=data,
        create=create,
    )


@router.patch("/{product_id}", response_model=ProductRead, summary="Change a product")
async def update_product(
    request: Request,
    product_id: str,
    data: ProductUpdate,
    session: SessionDep,
    caller: CatalogWriter,
) -> ProductRead:
    """Changes a product of the caller's (title, description, price, stock, markets); the
    hubs of its markets are sent the change (`ProductUpdated`), hubs added the listing
    (`ProductListed`), hubs left out a delisting (`ProductDelisted`), over the federation.
    The version goes up by one."""
    product = await service.update_product(
        session,
        product_id=product_id,
        data=data,
        hub=request.app.state.settings.hub_id,
        visible_to=caller.visible_to,
    )
    return ProductRead.model_validate(product)


@router.get("/{product_id}", response_model=ProductRead, summary="A product")
async def get_product(
    product_id: str, session: ReadSessionDep, caller: CatalogReader
) -> ProductRead:
    """One product of the caller's."""
    product = await service.get_product(
        session, product_id=product_id, visible_to=caller.visible_to
    )
    return ProductRead.model_validate(product)


KNOWN_PARAMS = {
    "q",
    "seller_id",
    "hs_prefix",
    "hs_chapter",
    "origin",
    "min_price",
    "max_price",
    "price_currency",
    "verified_sme",
    "ship_to",
    "currency",
    "importable_only",
    "ewtp_lane",
    "cursor",
    "limit",
}


@router.get(
    "",
    response_model=ProductPage | ListingPage,
    summary="Search: the hub's listings for a buyer (with ship_to), or one's own products",
    description="With `ship_to`: every listing of the hub matching the words and filters, "
    "best first, each with its landed cost in the buyer's `currency` (default: ship_to's "
    "own) from customs, one batch per page; without it: the caller's own products "
    "(a ProductPage). Unknown parameters, search syntax in `q` and a cursor of another "
    "search are 422 (docs/catalog.md).",
)
async def search_products(
    request: Request,
    session: ReadSessionDep,
    caller: CatalogReader,
    q: Annotated[str | None, Query(max_length=200, description="Words (all must match)")] = None,
    seller_id: Annotated[str | None, Query(max_length=40)] = None,
    hs_prefix: Annotated[str | None, Query(pattern=r"^\d{2,10}$")] = None,
    hs_chapter: Annotated[str | None, Query(pattern=r"^\d{2}$", description="HS chapter")] = None,
    origin: Annotated[CountryCode | None, Query(description="Country of origin")] = None,
    min_price: Annotated[Amount | None, Query(description="In price_currency")] = None,
    max_price: Annotated[Amount | None, Query(description="In price_currency")] = None,
    price_currency: Annotated[
        CurrencyCode | None, Query(description="Only listings priced in it (price range)")
    ] = None,
    verified_sme: Annotated[bool | None, Query(description="Seller is a verified SME")] = None,
    ship_to: Annotated[
        CountryCode | None, Query(description="The buyer's country: search the listings")
    ] = None,
    currency: Annotated[
        CurrencyCode | None, Query(description="The buyer's currency (default: ship_to's)")
    ] = None,
    importable_only: Annotated[bool, Query(description="Leave out prohibited goods")] = False,
    ewtp_lane: Annotated[bool, Query(description="Only hits an eWTP lane applies to")] = False,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Full-text and filtered search over the hub's listings, paged with `cursor`."""
    refuse_unknown(request.query_params.keys(), KNOWN_PARAMS)
    filters = Filters(
        terms=terms_of(q),
        seller_id=seller_id,
        hs_prefix=hs_prefix,
        hs_chapter=hs_chapter,
        origin=origin,
        min_price=min_price,
        max_price=max_price,
        price_currency=price_currency,
        verified_sme=verified_sme,
    )
    found = await search.search_products(
        session,
        filters=filters,
        ship_to=ship_to,
        currency=currency,
        importable_only=importable_only,
        ewtp_lane=ewtp_lane,
        cursor=cursor,
        limit=limit,
        visible_to=caller.visible_to,
        hub=request.app.state.settings.hub_id,
        key=request.app.state.cursor_key,
        customs=request.app.state.customs,
    )
    # Built and checked already: serialised once, not validated again against the union.
    return Response(found.model_dump_json(), media_type="application/json")
