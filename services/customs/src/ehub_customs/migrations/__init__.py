"""Alembic migrations of the customs service (applied at start-up)."""
