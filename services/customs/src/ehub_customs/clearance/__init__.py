"""The officer's clearance queue: held declarations claimed and decided by a person."""
