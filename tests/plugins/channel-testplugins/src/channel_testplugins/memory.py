"""An in-memory channel: a working plugin for discovery tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channel_core import (
    Address,
    Capabilities,
    ChannelInfo,
    ConfigurationError,
    Connection,
    LineItem,
    NotificationResult,
    NotificationStatus,
    Order,
    OrderPage,
    OrderQuery,
    OrderStatus,
    SettingSpec,
    Shipment,
    StatusMapping,
    hookimpl,
)

DEFAULTS = {OrderStatus.AWAITING_SHIPMENT: ("open",), OrderStatus.SHIPPED: ("done",)}


class MemoryConnection(Connection):
    def __init__(self, count: int, status_code: str) -> None:
        super().__init__(channel="memory", account_id="memory", status_mapping=StatusMapping.merged(DEFAULTS))
        self.count = count
        self.status_code = status_code
        self.sent: set[str] = set()


@hookimpl
def channel_info() -> ChannelInfo:
    return ChannelInfo(
        name="memory",
        display_name="Memory",
        version="0.0.1",
        settings=(SettingSpec("count", type="int", default=3), SettingSpec("status_code", default="open")),
        capabilities=Capabilities(("items",), ("tracking_number", "carrier"), ()),
        default_status_mapping=DEFAULTS,
    )


@hookimpl
def connect(settings: Mapping[str, Any]) -> Connection:
    count = settings.get("count", 3)
    if not isinstance(count, int) or count < 0:
        raise ConfigurationError("setting 'count' must be a non-negative integer")
    return MemoryConnection(count, str(settings.get("status_code", "open")))


@hookimpl
def fetch_orders(connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:
    assert isinstance(connection, MemoryConnection)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    orders = tuple(
        Order(
            channel="memory",
            order_id=str(n),
            order_number=f"M{n:04d}",
            status=OrderStatus.AWAITING_SHIPMENT,
            channel_status=connection.status_code,
            created_at=when,
            modified_at=when,
            ship_to=Address(name="A", line1="1 rue", city="Paris", postal_code="75001", country_code="FR"),
            items=(LineItem("1", "SKU", "Thing", 1, Decimal("1.00")),),
        )
        for n in range(1, connection.count + 1)
        if when >= query.modified_since
    )
    return iter([OrderPage(orders=orders, checkpoint="done")])


@hookimpl
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    return connection.status_mapping.status_for(channel_status)


@hookimpl
def notify_shipment(connection: Connection, shipment: Shipment) -> NotificationResult:
    assert isinstance(connection, MemoryConnection)
    if shipment.order_id in connection.sent:
        return NotificationResult(NotificationStatus.ALREADY_SENT)
    connection.sent.add(shipment.order_id)
    return NotificationResult(NotificationStatus.SENT, ("tracking_number", "carrier"))
