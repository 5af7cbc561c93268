"""The gateway service's ORM base (its own metadata; core tables live in ehub_core.models)."""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
