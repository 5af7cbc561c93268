"""Carrier plugins are discovered through the ehub.carriers entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pytest

from ehub_core.errors import NotFoundError
from ehub_logistics.carriers.registry import (
    ENTRY_POINT_GROUP,
    CarrierPluginError,
    load_carriers,
)
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def broken_factory(settings):
    raise RuntimeError("no API key configured")


def not_an_adapter(settings):
    return object()


def test_the_three_simulators_are_installed_as_plugins():
    registry = load_carriers(SimpleNamespace())
    assert registry.names == ["consolidator", "express", "postal"]
    assert all(isinstance(a, SimulatorAdapter) for a in registry)


def test_settings_can_choose_which_carriers_a_hub_offers():
    registry = load_carriers(SimpleNamespace(carriers=["postal"]))
    assert registry.names == ["postal"]
    with pytest.raises(
        CarrierPluginError, match=r"configured carriers \['dhl'\] are not installed"
    ):
        load_carriers(SimpleNamespace(carriers=["postal", "dhl"]))


def test_a_new_carrier_drops_in_as_an_entry_point():
    plugin = ep("express", "ehub_logistics.carriers.simulators.express:create")
    assert load_carriers(SimpleNamespace(), plugins=[plugin]).names == ["express"]


def test_a_broken_plugin_stops_start_up_with_its_name():
    plugin = ep("acme", f"{__name__}:broken_factory")
    with pytest.raises(CarrierPluginError, match=r"carrier plugin 'acme' .* no API key configured"):
        load_carriers(SimpleNamespace(), plugins=[plugin])
    with pytest.raises(CarrierPluginError, match="returned object, not a CarrierAdapter"):
        load_carriers(SimpleNamespace(), plugins=[ep("acme", f"{__name__}:not_an_adapter")])
    misnamed = ep("acme", "ehub_logistics.carriers.simulators.postal:create")
    with pytest.raises(CarrierPluginError, match="built an adapter named 'postal'"):
        load_carriers(SimpleNamespace(), plugins=[misnamed])


def test_an_unknown_carrier_is_a_404_problem():
    registry = load_carriers(SimpleNamespace())
    with pytest.raises(NotFoundError) as err:
        registry.get("dhl")
    assert err.value.status == 404
