"""ehub customs service: landed cost (duty, VAT/GST, de minimis), declarations, risk screening and clearance decisions."""
