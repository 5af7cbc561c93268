"""Landed-cost quotes: engine, reverse mode and API schemas."""
