"""Customs declarations filed by the order saga (import and export), and their decisions."""
