"""The CSV store channel.

A store is a folder holding ``orders.csv``, one row per order line::

    order_id,status,created_at,updated_at,buyer_name,email,phone,address1,address2,city,postal_code,
    country,currency,sku,item_name,quantity,unit_price

Rows with the same ``order_id`` form one order. Timestamps are ISO 8601 (UTC when
they carry no offset). Shipments are appended to ``shipments.csv`` in the same
folder, once per order and tracking number.
"""

from __future__ import annotations

import contextlib
import csv
import random
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from channel_core import (
    Address,
    Buyer,
    Capabilities,
    ChannelInfo,
    ChannelSandbox,
    ConfigurationError,
    Connection,
    LineItem,
    NotificationResult,
    NotificationStatus,
    Order,
    OrderPage,
    OrderQuery,
    OrderStatus,
    RunningSandbox,
    SandboxOptions,
    SettingSpec,
    Shipment,
    SkippedOrder,
    StatusMapping,
    hookimpl,
)
from channel_csvstore import __version__

DEFAULT_MAPPING = {
    OrderStatus.AWAITING_PAYMENT: ("unpaid",),
    OrderStatus.AWAITING_SHIPMENT: ("paid",),
    OrderStatus.SHIPPED: ("shipped",),
    OrderStatus.CANCELLED: ("cancelled",),
    OrderStatus.ON_HOLD: ("hold",),
}
SHIPMENT_COLUMNS = ["order_id", "tracking_number", "carrier", "tracking_url", "sent_at"]


class CsvConnection(Connection):
    def __init__(self, folder: Path, mapping: StatusMapping) -> None:
        super().__init__(channel="csvstore", account_id=folder.name, status_mapping=mapping)
        self.folder = folder

    @property
    def shipments_file(self) -> Path:
        return self.folder / "shipments.csv"


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _order(rows: list[dict[str, str]], connection: CsvConnection) -> Order | SkippedOrder:
    first = rows[0]
    order_id = first["order_id"]
    try:
        items = tuple(
            LineItem(
                line_item_id=str(n),
                sku=row["sku"] or None,
                name=row["item_name"],
                quantity=int(row["quantity"]),
                unit_price=Decimal(row["unit_price"]),
            )
            for n, row in enumerate(rows, start=1)
        )
        created, updated = _utc(first["created_at"]), _utc(first["updated_at"])
    except (ValueError, InvalidOperation, KeyError) as exc:
        return SkippedOrder(order_id, f"invalid row: {exc}")
    ship_to = Address(
        name=first["buyer_name"] or None,
        line1=first["address1"] or None,
        line2=first["address2"] or None,
        city=first["city"] or None,
        postal_code=first["postal_code"] or None,
        country_code=first["country"] or None,
        phone=first["phone"] or None,
    )
    if ship_to.is_empty():
        return SkippedOrder(order_id, "no ship-to address")
    status = connection.status_mapping.status_for(first["status"])
    if status is None:
        connection.unmapped_statuses.record(first["status"])
        return SkippedOrder(order_id, f"unmapped status {first['status']!r}")
    return Order(
        channel="csvstore",
        order_id=order_id,
        order_number=order_id,
        status=status,
        channel_status=first["status"],
        created_at=created,
        modified_at=updated,
        ship_to=ship_to,
        currency=first["currency"] or None,
        buyer=Buyer(name=first["buyer_name"] or None, email=first["email"] or None, phone=first["phone"] or None),
        items=items,
    )


def _pages(connection: CsvConnection, query: OrderQuery) -> Iterator[OrderPage]:
    until = query.modified_until or datetime.now(UTC)
    with (connection.folder / "orders.csv").open(newline="", encoding="utf-8") as handle:
        grouped: dict[str, list[dict[str, str]]] = {}
        for row in csv.DictReader(handle):
            grouped.setdefault(row["order_id"], []).append(row)
    results = [_order(rows, connection) for rows in grouped.values()]
    orders = sorted(
        (r for r in results if isinstance(r, Order) and query.modified_since <= r.modified_at <= until),
        key=lambda o: (o.modified_at, o.order_id),
    )
    skipped = tuple(r for r in results if isinstance(r, SkippedOrder))
    yield OrderPage(orders=tuple(orders), skipped=skipped, checkpoint=None, window_until=until)


@hookimpl
def channel_info() -> ChannelInfo:
    return ChannelInfo(
        name="csvstore",
        display_name="CSV store",
        version=__version__,
        settings=(SettingSpec("folder", required=True, env="CSVSTORE_FOLDER", help="Folder holding orders.csv"),),
        capabilities=Capabilities(
            import_features=("customer_email", "customer_phone", "items"),
            notification_fields=("tracking_number", "carrier", "tracking_url"),
            notification_fields_not_sent=("service", "shipping_cost", "notes_to_buyer", "ship_date"),
        ),
        default_status_mapping=DEFAULT_MAPPING,
    )


@hookimpl
def connect(settings: Mapping[str, Any]) -> Connection:
    folder = Path(str(settings.get("folder") or ""))
    if not (folder / "orders.csv").is_file():
        raise ConfigurationError(f"setting 'folder' must be a folder holding orders.csv (got {str(folder)!r})")
    mapping = StatusMapping.merged(DEFAULT_MAPPING, settings.get("status_mapping") or {})
    return CsvConnection(folder, mapping)


@hookimpl
def fetch_orders(connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:
    assert isinstance(connection, CsvConnection)
    return _pages(connection, query)


@hookimpl
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    return connection.status_mapping.status_for(channel_status)


@hookimpl
def notify_shipment(connection: Connection, shipment: Shipment) -> NotificationResult:
    assert isinstance(connection, CsvConnection)
    path = connection.shipments_file
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if (row["order_id"], row["tracking_number"]) == (shipment.order_id, shipment.tracking_number):
                    return NotificationResult(NotificationStatus.ALREADY_SENT)
    new_file = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SHIPMENT_COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow(
            {
                "order_id": shipment.order_id,
                "tracking_number": shipment.tracking_number,
                "carrier": shipment.carrier,
                "tracking_url": shipment.tracking_url or "",
                "sent_at": datetime.now(UTC).isoformat(),
            }
        )
    sent = ("tracking_number", "carrier") + (("tracking_url",) if shipment.tracking_url else ())
    return NotificationResult(NotificationStatus.SENT, sent)


ORDER_COLUMNS = [
    "order_id", "status", "created_at", "updated_at", "buyer_name", "email", "phone", "address1", "address2",
    "city", "postal_code", "country", "currency", "sku", "item_name", "quantity", "unit_price",
]  # fmt: skip


class CsvSandbox:
    """A temporary folder with a generated ``orders.csv``: the CSV store's stand-in for `channel demo`."""

    def __init__(self, options: SandboxOptions) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="csvstore-sandbox-"))
        self.url = str(self.folder)
        self._stopped = threading.Event()
        rng = random.Random(options.seed)
        with (self.folder / "orders.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=ORDER_COLUMNS)
            writer.writeheader()
            for n in range(1, options.orders + 1):
                stamp = datetime(2026, 11, 1, tzinfo=UTC).replace(hour=n % 24).isoformat()
                for line in range(1, rng.randint(1, 3) + 1):
                    writer.writerow(
                        {
                            "order_id": f"S-{n:04d}", "status": rng.choice(("paid", "paid", "unpaid", "shipped")),
                            "created_at": stamp, "updated_at": stamp, "buyer_name": f"Buyer {n}",
                            "email": f"buyer{n}@example.com", "phone": "", "address1": f"{n} rue Neuve",
                            "address2": "", "city": "Lyon", "postal_code": "69001", "country": "FR", "currency": "EUR",
                            "sku": f"SKU-{line}", "item_name": f"Item {line}", "quantity": "1", "unit_price": "9.90",
                        }
                    )  # fmt: skip

    def connect_settings(self) -> dict[str, Any]:
        return {"folder": str(self.folder)}

    def start(self) -> None:
        """Nothing to serve: the folder is the store."""

    def serve_forever(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()
        shutil.rmtree(self.folder, ignore_errors=True)


def _make_sandbox(options: SandboxOptions) -> RunningSandbox:
    if options.options or options.faults:
        raise ConfigurationError("the CSV store sandbox takes no options or faults")
    return CsvSandbox(options)


@hookimpl
def channel_sandbox() -> ChannelSandbox:
    return ChannelSandbox(make=_make_sandbox, description="a temporary folder holding orders.csv")
