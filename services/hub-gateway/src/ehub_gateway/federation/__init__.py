"""Federation with peer hubs: trust, signed ingest, receipts, delivery and the backbone."""
