"""ehub hub-gateway: the public edge of a hub (partner API, orders, federation)."""
