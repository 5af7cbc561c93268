"""ehub catalog service: sellers, products with HS codes, and search."""
