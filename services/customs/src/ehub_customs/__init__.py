"""ehub customs service: landed cost, rules with sources, declarations and clearance."""
