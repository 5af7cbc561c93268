"""Alembic migrations of the gateway service (applied at start-up)."""
