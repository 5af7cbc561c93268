"""ehub gateway service: the only public edge of a hub: partner REST API, order orchestration and federation with peer hubs."""
