"""Risk screening of declarations: prohibited and restricted goods, denied parties,
undervaluation and split consignments (docs/customs.md, "Risk screening")."""
