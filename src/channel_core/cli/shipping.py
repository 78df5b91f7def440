"""``channel ship``: tell a store an order shipped, through the notification ledger."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import click

from channel_core.cli.context import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    Context,
    Fail,
    errors,
    pass_context,
    set_option,
)
from channel_core.cli.output import print_notification
from channel_core.errors import InvalidShipmentError
from channel_core.hooktypes import Connection
from channel_core.models import NotificationStatus, Shipment, ShipmentItem
from channel_core.registry import Channel
from channel_core.sync import NotificationOutcome, Notifier, OrderStore


def shipment_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that describe a shipment, shared by ``ship`` and ``stores ship``."""
    for option in reversed(
        [
            click.option("--tracking", required=True, help="Tracking number."),
            click.option("--carrier", required=True, help="Carrier name as the buyer should see it."),
            click.option("--tracking-url", default=None),
            click.option("--service", default=None),
            click.option("--cost", default=None, help="Shipping cost."),
            click.option("--force", is_flag=True, help="Send it even though the store shows the order cancelled."),
            click.option(
                "--item",
                "items",
                multiple=True,
                metavar="LINE[:QTY]",
                help="A line (its id, or sku=SKU) and quantity in this package; repeat it. None: the whole order.",
            ),
            click.option("--package", default=None, help="Which parcel of the order this is (several packages)."),
            click.option(
                "--notify-buyer/--no-notify-buyer", default=None, help="Ask the store to e-mail the buyer (if it can)."
            ),
        ]
    ):
        command = option(command)
    return command


@click.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("order_id")
@shipment_options
@set_option
@pass_context
def ship(
    ctx: Context,
    channel_name: str,
    order_id: str,
    tracking: str,
    carrier: str,
    tracking_url: str | None,
    service: str | None,
    cost: str | None,
    force: bool,
    items: tuple[str, ...],
    package: str | None,
    notify_buyer: bool | None,
    overrides: tuple[str, ...],
) -> None:
    """Tell the store an order shipped (safe to repeat: a repeat is reported as already sent)."""
    shipment = shipment_from_options(
        order_id, tracking, carrier, tracking_url, service, cost, force, items, package, notify_buyer
    )
    channel, connection = ctx.connect(channel_name, overrides)
    with connection, ctx.store() as store:
        outcome = notify(channel, connection, store, shipment)
    print_notification(channel, order_id, outcome.result.status, outcome.result.fields_sent, outcome.result.message)
    sys.exit(EXIT_OK if outcome.result.status is not NotificationStatus.FAILED else EXIT_PARTIAL)


def shipment_from_options(
    order_id: str,
    tracking: str,
    carrier: str,
    tracking_url: str | None,
    service: str | None,
    cost: str | None,
    force: bool = False,
    items: tuple[str, ...] = (),
    package: str | None = None,
    notify_buyer: bool | None = None,
) -> Shipment:
    """The shipment the command's options describe; a bad value is an error naming its option."""
    parsed_items = tuple(_item(spec) for spec in items)
    try:
        amount = Decimal(cost.strip()) if cost is not None and cost.strip() else None
    except ArithmeticError:
        raise Fail(f"--cost must be an amount such as 6.90, got {cost!r}", EXIT_CONFIG) from None
    try:
        shipment = Shipment(
            order_id=order_id.strip(),
            tracking_number=tracking.strip(),
            carrier=carrier.strip(),
            tracking_url=tracking_url.strip() if tracking_url and tracking_url.strip() else None,
            service=service,
            shipping_cost=amount,
            ship_date=datetime.now(UTC),
            force=force,
            items=parsed_items,
            package_id=package,
            notify_buyer=notify_buyer,
        )
    except ValueError as exc:
        option = {"tracking_number": "--tracking", "carrier": "--carrier", "shipping_cost": "--cost"}
        message = str(exc)
        for field, flag in option.items():
            message = message.replace(f"Shipment.{field}", flag)
        raise Fail(f"invalid shipment: {message.replace('Shipment.', '')}", EXIT_CONFIG) from None
    return shipment


def notify(channel: Channel, connection: Connection, store: OrderStore, shipment: Shipment) -> NotificationOutcome:
    """Send ``shipment`` through the ledger; a shipment the channel cannot take is a configuration error."""
    try:
        channel.info().capabilities.check_shipment(shipment)
        with errors():
            return Notifier(channel, connection, store).notify(shipment)
    except InvalidShipmentError as exc:  # too long for the channel, or a cancelled order: the operator decides
        raise Fail(str(exc), EXIT_CONFIG) from None


def _item(spec: str) -> ShipmentItem:
    """``LINE``, ``LINE:QTY``, ``sku=SKU`` or ``sku=SKU:QTY`` as a shipment item."""
    line, _, quantity = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", "1")
    try:
        count = int(quantity)
    except ValueError:
        raise Fail(f"--item {spec!r}: the quantity after ':' must be a whole number", EXIT_CONFIG) from None
    if count < 1 or not line:
        raise Fail(f"--item {spec!r}: give a line id (or sku=SKU) and a quantity of at least 1", EXIT_CONFIG)
    if line.startswith("sku="):
        return ShipmentItem(sku=line[4:], quantity=count)
    return ShipmentItem(line_item_id=line, quantity=count)
