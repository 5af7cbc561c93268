"""Tracking: the canonical statuses, the state machine and the vocabulary mappings."""
