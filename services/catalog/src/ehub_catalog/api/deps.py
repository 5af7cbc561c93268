"""Who may call the catalog API: partners through the gateway, by scope (docs/partners.md)."""

from __future__ import annotations

from typing import Annotated

from ehub_core.partners import Caller, require_scope

CatalogReader = Annotated[Caller, require_scope("catalog:read")]
CatalogWriter = Annotated[Caller, require_scope("catalog:write")]
