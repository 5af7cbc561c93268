"""Shipments: booking, labels, the timeline and its events."""
