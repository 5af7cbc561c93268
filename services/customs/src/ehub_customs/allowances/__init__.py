"""Person-year allowance ledger for quota regimes (China's cross-border retail limit)."""
