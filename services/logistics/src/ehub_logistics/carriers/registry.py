"""Carrier plugins, discovered through the ``ehub.carriers`` entry-point group.

A package that ships an adapter declares, in its ``pyproject.toml``::

    [project.entry-points."ehub.carriers"]
    acme = "acme_ehub.adapter:create"

where ``create(settings) -> CarrierAdapter``. The service is never edited to add a
carrier: install the package, restart, and it appears in rate shopping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any

from fastapi import Depends, Request

from ehub_core.errors import NotFoundError
from ehub_logistics.carriers.base import CarrierAdapter

ENTRY_POINT_GROUP = "ehub.carriers"
log = logging.getLogger("ehub.logistics.carriers")


class CarrierPluginError(RuntimeError):
    """A carrier plugin is missing, broken or inconsistent; stops start-up."""


class CarrierRegistry:
    """The carriers this hub offers, by name. Built once at start-up."""

    def __init__(self, adapters: Iterable[CarrierAdapter]) -> None:
        self._by_name: dict[str, CarrierAdapter] = {}
        for adapter in adapters:
            if adapter.name in self._by_name:
                raise CarrierPluginError(f"two carrier plugins are named {adapter.name!r}")
            self._by_name[adapter.name] = adapter

    def __iter__(self) -> Iterator[CarrierAdapter]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> CarrierAdapter:
        """The adapter named ``name``; :class:`NotFoundError` (404) if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"No carrier {name!r} on this hub", carriers=self.names) from None


def _load_one(ep: EntryPoint, settings: Any) -> CarrierAdapter:
    try:
        factory = ep.load()
        adapter = factory(settings)
    except Exception as exc:
        raise CarrierPluginError(f"carrier plugin {ep.name!r} ({ep.value}) failed: {exc}") from exc
    if not isinstance(adapter, CarrierAdapter):
        raise CarrierPluginError(
            f"carrier plugin {ep.name!r} ({ep.value}) returned {type(adapter).__name__}, "
            "not a CarrierAdapter"
        )
    if adapter.name != ep.name:
        raise CarrierPluginError(
            f"carrier plugin {ep.name!r} built an adapter named {adapter.name!r}"
        )
    return adapter


def load_carriers(settings: Any, *, plugins: Iterable[EntryPoint] | None = None) -> CarrierRegistry:
    """Build every installed carrier plugin (or those listed in ``settings.carriers``).

    Raises :class:`CarrierPluginError` naming the plugin when one fails to load, when
    a configured carrier is not installed, or when no carrier is available at all.
    """
    found = {ep.name: ep for ep in (plugins or entry_points(group=ENTRY_POINT_GROUP))}
    wanted = getattr(settings, "carriers", None)
    if wanted:
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise CarrierPluginError(
                f"configured carriers {missing} are not installed (installed: {sorted(found)})"
            )
        found = {name: ep for name, ep in found.items() if name in wanted}
    if not found:
        raise CarrierPluginError(
            f"no carrier plugins in entry-point group {ENTRY_POINT_GROUP!r}; "
            "is ehub-logistics installed (uv sync)?"
        )
    registry = CarrierRegistry(_load_one(ep, settings) for _, ep in sorted(found.items()))
    log.info("carriers loaded: %s", ", ".join(registry.names))
    return registry


async def get_carriers(request: Request) -> CarrierRegistry:
    registry: CarrierRegistry = request.app.state.carriers
    return registry


CarriersDep = Annotated[CarrierRegistry, Depends(get_carriers)]
