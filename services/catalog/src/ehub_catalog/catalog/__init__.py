"""Sellers and their products."""
