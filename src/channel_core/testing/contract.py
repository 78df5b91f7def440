"""The conformance kit: subclass :class:`ChannelContract` in your channel's tests.

Provide a few fixtures and inherit the standard checks::

    from channel_core.testing import ChannelContract

    class TestMyChannel(ChannelContract):
        channel_name = "mychannel"

        @pytest.fixture
        def channel_settings(self):          # settings that connect to a test store
            return {"path": "tests/store"}

        @pytest.fixture
        def shipment(self):                  # a shipment for an order of that store
            return Shipment(order_id="1001", tracking_number="T1", carrier="DPD")

Optional fixtures: ``bad_settings`` (credentials the store rejects; required when
the channel declares a secret setting), ``fetch_window`` (since, until),
``secret_values`` (strings that must never be logged), ``cassette_dir`` (where
your cassettes live, scanned for secrets), ``channel`` (how to build the
channel under test; defaults to the installed entry point).

Every failure message says what to fix in the plugin.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog

from channel_core.errors import AuthenticationError, ChannelError, InvalidShipmentError
from channel_core.hooktypes import Connection, OrderPage, OrderQuery
from channel_core.models import NotificationStatus, Order, OrderStatus, Shipment, ShipmentItem
from channel_core.registry import CHANNELS_GROUP, Channel, Channels, make_plugin_manager
from channel_core.secret import Secret
from channel_core.status import StatusMapping
from channel_core.sync.store import notification_id

__all__ = ["ChannelContract"]

SHIPMENT_FIELDS = frozenset(f.name for f in dataclasses.fields(Shipment))


def _money_values(order: Order) -> Iterator[tuple[str, Any]]:
    for index, item in enumerate(order.items):
        yield f"items[{index}].unit_price", item.unit_price
    for name in ("amount_paid", "shipping_amount", "tax_amount"):
        value = getattr(order.payment, name)
        if value is not None:
            yield f"payment.{name}", value
    for index, discount in enumerate(order.payment.discounts):
        yield f"payment.discounts[{index}].amount", discount.amount


def _secrets_in(settings: Mapping[str, Any]) -> list[str]:
    found = []
    for value in settings.values():
        if isinstance(value, Secret):
            found.append(value.reveal())
    return found


class ChannelContract:
    """Standard checks every channel must pass. Override the fixtures, not the tests."""

    channel_name: ClassVar[str]

    # ------------------------------------------------------------------ fixtures to provide

    @pytest.fixture
    def channel_settings(self) -> Mapping[str, Any]:
        raise NotImplementedError("override the channel_settings fixture: settings that connect to a test store")

    @pytest.fixture
    def shipment(self) -> Shipment:
        raise NotImplementedError("override the shipment fixture: a shipment for an order of the test store")

    @pytest.fixture
    def packages(self) -> Sequence[Shipment] | None:
        """Two or more shipments of one order, each carrying different items (``Shipment.items``), for channels
        declaring ``partial_shipments`` and ``multiple_packages``."""
        return None

    @pytest.fixture
    def bad_settings(self, channel_settings: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Settings with credentials the store rejects; ``None`` when the channel has none."""
        return None

    @pytest.fixture
    def fetch_window(self) -> tuple[datetime, datetime | None]:
        return datetime(2010, 1, 15, tzinfo=UTC), None

    @pytest.fixture
    def secret_values(self, channel: Channel, channel_settings: Mapping[str, Any]) -> list[str]:
        names = {s.name for s in channel.info().settings if s.secret}
        values = [v.reveal() if isinstance(v, Secret) else str(v) for k, v in channel_settings.items() if k in names]
        return [v for v in values if v] + _secrets_in(channel_settings)

    @pytest.fixture
    def cassette_dir(self) -> Path | None:
        return None

    @pytest.fixture
    def channel(self) -> Channel:
        channels = Channels.discover()
        if self.channel_name not in channels:
            failure = next((f for f in channels.failures if f.name == self.channel_name), None)
            reason = failure.error if failure else f"no entry point named {self.channel_name!r} in {CHANNELS_GROUP}"
            pytest.fail(f"channel {self.channel_name!r} did not load: {reason}")
        return channels[self.channel_name]

    # ------------------------------------------------------------------ helpers

    @pytest.fixture
    def connection(self, channel: Channel, channel_settings: Mapping[str, Any]) -> Iterator[Connection]:
        connection = channel.connect(channel_settings)
        try:
            yield connection
        finally:
            connection.close()

    @pytest.fixture
    def pages(
        self, channel: Channel, connection: Connection, fetch_window: tuple[datetime, datetime | None]
    ) -> list[OrderPage]:
        since, until = fetch_window
        return list(channel.fetch_orders(connection, OrderQuery(modified_since=since, modified_until=until)))

    # ------------------------------------------------------------------ the checks

    def test_plugin_is_advertised_and_loads(self) -> None:
        channels = Channels.discover()
        failure = next((f for f in channels.failures if f.name == self.channel_name), None)
        assert failure is None, f"channel {self.channel_name!r} failed to load: {failure and failure.error}"
        assert self.channel_name in channels.names(), (
            f"no entry point named {self.channel_name!r} in the group {CHANNELS_GROUP!r}: add "
            f'[project.entry-points."{CHANNELS_GROUP}"] {self.channel_name} = "your_package.plugin" to pyproject.toml'
        )

    def test_hooks_match_the_specs(self, channel: Channel) -> None:
        plugin = channel.plugin
        make_plugin_manager(channel.name, plugin)  # raises PluginError naming missing or misspelt hooks
        fetch = getattr(plugin, "fetch_orders", None)
        assert fetch is not None and not inspect.isgeneratorfunction(fetch), (
            "fetch_orders must return an iterator, not be a generator function: write "
            "`return iter_pages(...)` so argument errors surface when the host calls it"
        )

    def test_channel_info_is_consistent(self, channel: Channel) -> None:
        info = channel.info()
        assert info.name == self.channel_name, f"channel_info().name is {info.name!r}, expected {self.channel_name!r}"
        names = [s.name for s in info.settings]
        assert len(names) == len(set(names)), f"channel_info().settings repeats a name: {names}"
        for spec in info.settings:
            if any(word in spec.name.lower() for word in ("token", "password", "secret", "api_key", "apikey")):
                assert spec.secret, f"setting {spec.name!r} looks like a credential: declare it with secret=True"
        caps = info.capabilities
        sent, not_sent = set(caps.notification_fields), set(caps.notification_fields_not_sent)
        unknown = (sent - {"status"}) - SHIPMENT_FIELDS
        assert not unknown, f"capabilities.notification_fields names fields Shipment does not have: {sorted(unknown)}"
        assert not_sent <= SHIPMENT_FIELDS, (
            f"notification_fields_not_sent names unknown Shipment fields: {sorted(not_sent - SHIPMENT_FIELDS)}"
        )
        assert not sent & not_sent, f"fields declared both sent and not sent: {sorted(sent & not_sent)}"
        assert all(isinstance(k, OrderStatus) for k in info.default_status_mapping), (
            "default_status_mapping keys must be OrderStatus members"
        )
        StatusMapping.merged(info.default_status_mapping)  # raises if a code maps to two statuses

    def test_connect_rejects_bad_credentials(self, channel: Channel, bad_settings: Mapping[str, Any] | None) -> None:
        secrets = [s.name for s in channel.info().settings if s.secret]
        if not secrets:
            pytest.skip("the channel declares no credentials")
        assert bad_settings is not None, "override the bad_settings fixture with credentials the store rejects"
        with pytest.raises(AuthenticationError):
            channel.connect(bad_settings).close()

    def test_fetch_orders_streams_valid_canonical_orders(self, pages: list[OrderPage]) -> None:
        assert pages, "fetch_orders yielded no page at all; yield at least one (possibly empty) page"
        orders = [o for p in pages for o in p.orders]
        assert orders, "the test store returned no order: point channel_settings at a store with orders"
        for order in orders:
            where = f"order {order.order_id}"
            for name in ("created_at", "modified_at", "paid_at"):
                value = getattr(order, name)
                if value is not None:
                    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (
                        f"{where}: {name} must be an aware UTC datetime, got {value!r}"
                    )
            for name, value in _money_values(order):
                assert isinstance(value, Decimal), f"{where}: {name} must be a Decimal, got {type(value).__name__}"
            assert isinstance(order.order_id, str), f"{where}: order_id must be a string"
            assert not order.ship_to.is_empty(), (
                f"{where}: has no ship-to address; return SkippedOrder(order_id, 'no ship-to address') instead"
            )
        for page in pages[:-1]:
            assert page.checkpoint is not None, "every page but the last needs a checkpoint the host can resume from"
        for page in pages:
            for skipped in page.skipped:
                assert skipped.reason, f"skipped order {skipped.order_id} needs a reason"

    def test_future_window_yields_nothing(self, channel: Channel, connection: Connection) -> None:
        future = datetime.now(UTC) + timedelta(days=3650)
        query = OrderQuery(modified_since=future, modified_until=future + timedelta(days=1))
        orders = [o for page in channel.fetch_orders(connection, query) for o in page.orders]
        assert orders == [], "a window in the future must yield no orders"

    def test_map_status_maps_every_default_code_and_reports_unknown_ones(
        self, channel: Channel, connection: Connection
    ) -> None:
        for status, codes in channel.info().default_status_mapping.items():
            for code in codes:
                assert channel.map_status(connection, code) is status, f"map_status({code!r}) should be {status}"
        assert channel.map_status(connection, "--no-such-status--") is None, (
            "map_status must return None for an unknown code, not guess"
        )
        assert connection.unmapped_statuses.counts().get("--no-such-status--") == 1

    def test_notify_shipment_is_idempotent_and_declares_what_it_sends(
        self, channel: Channel, connection: Connection, shipment: Shipment
    ) -> None:
        first = channel.notify_shipment(connection, shipment)
        assert first.status in (NotificationStatus.SENT, NotificationStatus.ALREADY_SENT), (
            f"notify_shipment failed: {first.message}"
        )
        declared = set(channel.info().capabilities.notification_fields)
        assert set(first.fields_sent) <= declared, (
            f"fields_sent {sorted(set(first.fields_sent) - declared)} are not declared in "
            "capabilities.notification_fields"
        )
        second = channel.notify_shipment(connection, shipment)
        assert second.status is NotificationStatus.ALREADY_SENT, (
            "notifying the same shipment twice must return already_sent (read the store's state before writing), "
            f"got {second.status.value}"
        )

    def test_each_package_of_an_order_is_sent_once(
        self, channel: Channel, connection: Connection, packages: Sequence[Shipment] | None
    ) -> None:
        capabilities = channel.info().capabilities
        if not (capabilities.partial_shipments and capabilities.multiple_packages):
            pytest.skip("the channel declares no partial shipments and packages")
        assert packages is not None and len(packages) >= 2, "override the packages fixture: 2+ shipments of one order"
        assert len({p.order_id for p in packages}) == 1 and all(p.items for p in packages), (
            "packages must be shipments of one order, each naming its items"
        )
        ids = {notification_id(channel.name, connection.account_id, p) for p in packages}
        assert len(ids) == len(packages), "each package must be its own notification"
        for package in packages:
            result = channel.notify_shipment(connection, package)
            assert result.status is NotificationStatus.SENT, f"package {package.tracking_number}: {result.message}"
            assert "items" in result.fields_sent
        for package in packages:
            again = channel.notify_shipment(connection, package)
            assert again.status is NotificationStatus.ALREADY_SENT, (
                f"package {package.tracking_number} sent twice: read the store's fulfillments before writing"
            )

    def test_an_item_list_is_refused_by_a_channel_that_ships_whole_orders(
        self, channel: Channel, connection: Connection, shipment: Shipment
    ) -> None:
        capabilities = channel.info().capabilities
        if capabilities.partial_shipments or "items" in capabilities.notification_fields_not_sent:
            pytest.skip("the channel accepts item lists")
        partial = dataclasses.replace(shipment, items=(ShipmentItem(sku="ANY", quantity=1),))
        with pytest.raises(InvalidShipmentError, match="whole orders"):
            channel.notify_shipment(connection, partial)

    def test_no_secret_in_logs_reprs_or_errors(
        self,
        channel: Channel,
        channel_settings: Mapping[str, Any],
        bad_settings: Mapping[str, Any] | None,
        fetch_window: tuple[datetime, datetime | None],
        secret_values: list[str],
    ) -> None:
        if not secret_values:
            pytest.skip("the channel has no secret settings")
        texts: list[str] = []
        with structlog.testing.capture_logs() as logs:
            connection = channel.connect(channel_settings)
            texts.append(repr(connection))
            since, until = fetch_window
            for page in channel.fetch_orders(connection, OrderQuery(modified_since=since, modified_until=until)):
                texts.append(repr(page.failed))
            connection.close()
            if bad_settings is not None:
                try:
                    channel.connect(bad_settings).close()
                except ChannelError as exc:
                    texts += [str(exc), repr(exc)]
        texts.append(repr(logs))
        blob = "\n".join(texts)
        for secret in secret_values:
            assert secret not in blob, (
                "a secret setting appeared in logs, a repr or an error message: wrap it in channel_core.Secret and "
                "call .reveal() only where the request is built"
            )

    def test_cassettes_hold_no_secret(self, cassette_dir: Path | None, secret_values: list[str]) -> None:
        if cassette_dir is None:
            pytest.skip("no cassette_dir fixture")
        files = sorted(Path(cassette_dir).rglob("*.yaml"))
        for path in files:
            text = path.read_text(encoding="utf-8")
            for secret in secret_values:
                assert secret not in text, f"{path.name} contains a secret: scrub it (channel_core.testing.cassettes)"
            for marker in ("127.0.0.1", "localhost", "Authorization: Bearer"):
                assert marker not in text, f"{path.name} contains {marker!r}: record through cassette_config()"
