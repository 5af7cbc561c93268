"""Full-text search over the listings read model, on SQLite (FTS5) and Postgres (tsvector).

Ranking: SQLite's ``bm25`` (title weighted 10, description 1; lower is better) and
Postgres' ``ts_rank_cd`` over the weighted vector (A: title, B: description; higher is
better); ties, and searches without words, go by listing id (creation order). The words
are plain terms ANDed together: quoted one by one for FTS5, ``plainto_tsquery`` on
Postgres, so nothing a caller types is parsed as syntax by the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    false,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.models import Listing, Product
from ehub_catalog.catalog.pricing import HOME_CURRENCY, CustomsLink, price_page
from ehub_catalog.catalog.query import (
    MAX_OFFSET,
    Filters,
    Search,
    check_price_range,
    decode_cursor,
    encode_cursor,
)
from ehub_catalog.catalog.schemas import ProductPage, ProductRead
from ehub_catalog.catalog.search_schemas import ListingPage, Pricing, hit_of
from ehub_core.errors import UnprocessableError, field_error

FTS = table("listings_fts", column("rowid"))


def _conditions(f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Listing.withdrawn.is_(false())]  # a peer delisted it
    if f.seller_id:
        out.append(Listing.seller_id == f.seller_id)
    if f.hs_prefix:
        out.append(Listing.hs_code.startswith(f.hs_prefix, autoescape=True))
    if f.hs_chapter:
        out.append(Listing.hs_code.startswith(f.hs_chapter, autoescape=True))
    if f.origin:
        out.append(Listing.origin_country == f.origin)
    if f.price_currency:
        out.append(Listing.currency == f.price_currency)
    if f.min_price is not None:
        out.append(Listing.price >= f.min_price)
    if f.max_price is not None:
        out.append(Listing.price <= f.max_price)
    if f.verified_sme is not None:
        out.append(Listing.seller_sme_verified == f.verified_sme)
    return out


def _ranked(stmt: Select[Any], terms: Sequence[str], dialect: str) -> Select[Any]:
    """``stmt`` narrowed to listings matching every word, best first."""
    if not terms:
        return stmt.order_by(Listing.id)
    if dialect == "sqlite":
        match = " ".join(f'"{t}"' for t in terms)  # terms are letters and digits only
        return (
            stmt.join(FTS, FTS.c.rowid == Listing.seq)
            .where(text("listings_fts MATCH :match").bindparams(match=match))
            .order_by(literal_column("bm25(listings_fts, 10.0, 1.0)"), Listing.id)
        )
    query = func.plainto_tsquery("english", " ".join(terms))
    vector: ColumnElement[Any] = literal_column("listings.search")
    return stmt.where(vector.op("@@")(query)).order_by(
        func.ts_rank_cd(vector, query).desc(), Listing.id
    )


async def find_listings(
    session: AsyncSession, *, filters: Filters, offset: int, limit: int
) -> list[Listing]:
    """One page of listings (every hub's and seller's) matching ``filters``."""
    stmt = select(Listing).where(and_(True, *_conditions(filters)))
    stmt = _ranked(stmt, filters.terms, session.bind.dialect.name)
    return list((await session.scalars(stmt.offset(offset).limit(limit))).all())


async def find_own_products(
    session: AsyncSession,
    *,
    filters: Filters,
    hub: str,
    offset: int,
    limit: int,
    visible_to: str | None,
) -> list[Product]:
    """One page of this hub's products matching ``filters``; only ``visible_to``'s own
    when given (the partner's own list, as before listings existed)."""
    stmt = (
        select(Product)
        .join(Listing, and_(Listing.product_id == Product.id, Listing.source_hub == hub))
        .where(and_(True, *_conditions(filters)))
    )
    if visible_to is not None:
        stmt = stmt.where(Product.owner == visible_to)
    stmt = _ranked(stmt, filters.terms, session.bind.dialect.name)
    return list((await session.scalars(stmt.offset(offset).limit(limit))).all())


async def search_listings(
    session: AsyncSession,
    *,
    search: Search,
    key: bytes,
    cursor: str | None,
    limit: int,
    customs: CustomsLink,
) -> ListingPage:
    """A page of listings for a buyer in ``search.ship_to``, each hit priced by customs
    (one batch call for the page), filtered by importability or lane when asked."""
    assert search.ship_to is not None and search.currency is not None
    offset = decode_cursor(key, search, cursor)
    rows = await find_listings(session, filters=search.filters, offset=offset, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    priced = await price_page(
        customs, hits=page, destination=search.ship_to, currency=search.currency
    )
    hits = [hit_of(row, priced.quotes.get(row.id), search.currency) for row in page]
    unapplied: list[str] = []
    if priced.available:
        if search.importable_only:
            hits = [h for h in hits if h.importable is not False]
        if search.ewtp_lane:
            hits = [h for h in hits if h.landed_cost is not None and h.landed_cost.lane]
    else:
        unapplied = [n for n in ("importable_only", "ewtp_lane") if getattr(search, n)]
    next_offset = offset + len(page)
    return ListingPage(
        ship_to=search.ship_to,
        items=hits,
        next_cursor=encode_cursor(key, search, next_offset)
        if more and next_offset <= MAX_OFFSET
        else None,
        pricing=Pricing(
            available=priced.available,
            currency=search.currency,
            reason=priced.reason,
            unapplied_filters=unapplied,
        ),
    )


async def search_own_products(
    session: AsyncSession,
    *,
    search: Search,
    key: bytes,
    cursor: str | None,
    limit: int,
    hub: str,
) -> tuple[list[Product], str | None]:
    """A page of the caller's own products (everyone's for the operator) and the cursor
    of the next page."""
    offset = decode_cursor(key, search, cursor)
    rows = await find_own_products(
        session,
        filters=search.filters,
        hub=hub,
        offset=offset,
        limit=limit + 1,
        visible_to=search.visible_to,
    )
    next_offset = offset + limit
    more = len(rows) > limit and next_offset <= MAX_OFFSET
    return rows[:limit], encode_cursor(key, search, next_offset) if more else None


def _needs(field: str, msg: str) -> UnprocessableError:
    return UnprocessableError(
        f"{field}: {msg}",
        errors=[field_error(field, msg, "missing", where="query")],
    )


async def search_products(
    session: AsyncSession,
    *,
    filters: Filters,
    ship_to: str | None,
    currency: str | None,
    importable_only: bool,
    ewtp_lane: bool,
    cursor: str | None,
    limit: int,
    visible_to: str | None,
    hub: str,
    key: bytes,
    customs: CustomsLink,
) -> ProductPage | ListingPage:
    """``GET /v1/products``: with ``ship_to``, the hub's listings priced for that buyer
    (every partner's: listings are public); without, ``visible_to``'s own products."""
    check_price_range(filters)
    if ship_to is None:
        for name, given in (
            ("currency", currency is not None),
            ("importable_only", importable_only),
            ("ewtp_lane", ewtp_lane),
        ):
            if given:
                raise _needs(name, "needs ship_to (the buyer's country)")
        own = Search(filters=filters, visible_to=visible_to)
        items, next_cursor = await search_own_products(
            session, search=own, key=key, cursor=cursor, limit=limit, hub=hub
        )
        page = [ProductRead.model_validate(p) for p in items]
        return ProductPage(items=page, next_cursor=next_cursor)
    buyer_currency = currency or HOME_CURRENCY.get(ship_to)
    if buyer_currency is None:
        raise _needs("currency", f"required: no default currency for ship_to {ship_to}")
    listings = Search(
        filters=filters,
        visible_to=None,
        ship_to=ship_to,
        currency=buyer_currency,
        importable_only=importable_only,
        ewtp_lane=ewtp_lane,
    )
    return await search_listings(
        session, search=listings, key=key, cursor=cursor, limit=limit, customs=customs
    )
