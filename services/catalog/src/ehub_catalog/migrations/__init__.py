"""Alembic migrations of the catalog service (applied at start-up)."""
