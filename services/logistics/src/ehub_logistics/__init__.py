"""ehub logistics service: carriers, rates, shipments, labels and tracking."""
