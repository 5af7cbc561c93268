"""Alembic migrations of the logistics service (applied at start-up)."""
