"""Carriers: the adapter contract, plugin registry, rate cards and simulators."""
