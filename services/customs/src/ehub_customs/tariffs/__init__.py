"""Tariff rule data: file schema, loader and the compiled rule book."""
