from __future__ import annotations

import importlib.metadata
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from channel_core import (
    ChannelNotFound,
    Channels,
    OrderQuery,
    OrderStatus,
    PluginError,
    Shipment,
    hookimpl,
)
from channel_core.registry import CHANNELS_GROUP, EXTENSIONS_GROUP


def test_discovery_loads_working_plugins_through_real_entry_points() -> None:
    channels = Channels.discover()
    assert "memory" in channels.names()
    assert "oxatis" in channels.names()
    assert channels["memory"].version == "0.0.1"


def test_broken_plugins_are_reported_by_name_and_do_not_stop_the_others() -> None:
    channels = Channels.discover()
    failures = {f.name: f.error for f in channels.failures}
    assert "does not implement" in failures["missing-hook"]
    assert "notify_shipment" in failures["missing-hook"]
    assert "api_key" in failures["bad-signature"]
    assert "ModuleNotFoundError" in failures["unimportable"]
    assert not {"missing-hook", "bad-signature", "unimportable"} & set(channels.names())


def test_unknown_channel_error_lists_installed_channels() -> None:
    channels = Channels.discover()
    with pytest.raises(ChannelNotFound) as info:
        channels["woocommerce"]
    assert "'woocommerce'" in str(info.value)
    assert "memory" in str(info.value) and "oxatis" in str(info.value) and "shopify" in str(info.value)


def test_blocked_channels_are_not_loaded() -> None:
    channels = Channels.discover(blocked=["memory"])
    assert "memory" not in channels.names()


def test_extension_is_registered_on_every_channel_and_runs_first() -> None:
    channels = Channels.discover()
    memory = channels["memory"]
    connection = memory.connect({})
    assert memory.map_status(connection, "hold") is OrderStatus.ON_HOLD
    assert memory.map_status(connection, "open") is OrderStatus.AWAITING_SHIPMENT


def test_unmapped_status_is_counted_not_guessed() -> None:
    memory = Channels.discover()["memory"]
    connection = memory.connect({})
    assert memory.map_status(connection, "mystery") is None
    assert memory.map_status(connection, "mystery") is None
    assert connection.unmapped_statuses.counts() == {"mystery": 2}


def test_facade_calls_every_hook() -> None:
    memory = Channels.discover()["memory"]
    info = memory.info()
    assert info.name == "memory"
    connection = memory.connect({"count": 2})
    pages = list(memory.fetch_orders(connection, OrderQuery(modified_since=datetime(2020, 1, 1, tzinfo=UTC))))
    assert [o.order_id for o in pages[0].orders] == ["1", "2"]
    shipment = Shipment(order_id="1", tracking_number="T1", carrier="colissimo")
    assert memory.notify_shipment(connection, shipment).status == "sent"
    assert memory.notify_shipment(connection, shipment).status == "already_sent"


def test_entry_point_discovery_with_explicit_entry_points_reports_import_errors() -> None:
    eps = [
        importlib.metadata.EntryPoint("ghost", "no_such_module_xyz", CHANNELS_GROUP),
        importlib.metadata.EntryPoint("memory", "channel_testplugins.memory", CHANNELS_GROUP),
        importlib.metadata.EntryPoint("bad-ext", "no_such_ext_xyz", EXTENSIONS_GROUP),
    ]
    channels = Channels.discover(entry_points=eps)
    assert channels.names() == ["memory"]
    assert {f.name for f in channels.failures} == {"ghost", "bad-ext"}


def test_plugin_returning_wrong_type_is_a_plugin_error() -> None:
    class Liar:
        @hookimpl
        def channel_info(self) -> object:
            return "not info"

        @hookimpl
        def connect(self, settings: object) -> object:
            return None

        @hookimpl
        def fetch_orders(self, connection: object, query: object) -> object:
            return ["not an iterator"]

        @hookimpl
        def map_status(self, connection: object, channel_status: str) -> object:
            return None

        @hookimpl
        def notify_shipment(self, connection: object, shipment: object) -> object:
            return None

    channel = Channels.from_plugins({"liar": Liar()})["liar"]
    with pytest.raises(PluginError, match="ChannelInfo"):
        channel.info()
    with pytest.raises(PluginError, match="returned nothing"):
        channel.connect({})
    with pytest.raises(PluginError, match="iterator"):
        channel.fetch_orders(SimpleNamespace(), OrderQuery(modified_since=datetime(2020, 1, 1, tzinfo=UTC)))  # type: ignore[arg-type]


def test_misspelt_hook_is_rejected() -> None:
    class Typo:
        @hookimpl
        def fetch_order(self) -> None:  # missing "s"
            return None

    with pytest.raises(PluginError):
        Channels.from_plugins({"typo": Typo()})


def test_extension_status_override_applies_to_imported_orders() -> None:
    memory = Channels.discover()["memory"]
    since = OrderQuery(modified_since=datetime(2020, 1, 1, tzinfo=UTC))
    held = memory.connect({"count": 2, "status_code": "hold"})
    assert {o.status for p in memory.fetch_orders(held, since) for o in p.orders} == {OrderStatus.ON_HOLD}
    plain = memory.connect({"count": 2, "status_code": "open"})
    assert {o.status for p in memory.fetch_orders(plain, since) for o in p.orders} == {OrderStatus.AWAITING_SHIPMENT}
    without_extension = Channels.discover(blocked=["hold-override"])["memory"]
    again = without_extension.connect({"count": 1, "status_code": "hold"})
    assert {o.status for p in without_extension.fetch_orders(again, since) for o in p.orders} == {
        OrderStatus.AWAITING_SHIPMENT
    }


def test_wrapper_extension_sees_every_call_of_every_channel() -> None:
    from collections.abc import Generator

    from channel_testplugins import memory as memory_plugin

    audit: list[tuple[str, str]] = []

    class Audit:
        @hookimpl(wrapper=True)
        def notify_shipment(self, connection: object, shipment: Shipment) -> Generator[None, object, object]:
            result = yield
            audit.append((shipment.order_id, getattr(result, "status", "?")))
            return result

    channels = Channels.from_plugins({"memory": memory_plugin, "other": memory_plugin}, extensions={"audit": Audit()})
    for name in ("memory", "other"):
        channel = channels[name]
        channel.notify_shipment(channel.connect({}), Shipment(order_id=name, tracking_number="T", carrier="X"))
    assert audit == [("memory", "sent"), ("other", "sent")]


class _BadSignatureExtension:
    @hookimpl
    def map_status(self, connection: object, channel_status: str, colour: str) -> None:  # an argument no spec has
        return None


bad_signature_extension = _BadSignatureExtension()


def test_a_broken_extension_is_reported_and_every_channel_still_loads() -> None:
    bad = importlib.metadata.EntryPoint("bad-ext", f"{__name__}:bad_signature_extension", EXTENSIONS_GROUP)
    eps = [*importlib.metadata.entry_points(group=CHANNELS_GROUP), bad]
    channels = Channels.discover(entry_points=eps)
    assert {"memory", "oxatis"} <= set(channels.names())
    failures = {f.name: f for f in channels.failures}
    assert failures["bad-ext"].group == EXTENSIONS_GROUP
    assert "colour" in failures["bad-ext"].error
