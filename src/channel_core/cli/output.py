"""How the ``channel`` command prints connections, import summaries, notifications and orders."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from channel_core.cli.context import (
    out,
)
from channel_core.hooktypes import Connection
from channel_core.models import NotificationStatus, OrderStatus, Shipment
from channel_core.registry import Channel
from channel_core.sync import ImportSummary


def print_connection(channel: Channel, connection: Connection) -> None:
    out.print(f"[green]Connected[/] to {channel.name} store {connection.account_id}")
    table = Table(title="Store statuses", title_justify="left")
    table.add_column("Code")
    table.add_column("Name")
    table.add_column("Maps to")
    for status in connection.store_statuses:
        mapped = connection.status_mapping.status_for(status.code)
        table.add_row(status.code, status.name, mapped.value if mapped else "[yellow]not mapped[/]")
    out.print(table)
    mapping = Table(title="Status mapping", title_justify="left")
    mapping.add_column("Canonical status")
    mapping.add_column("Channel codes")
    for canonical in OrderStatus:
        mapping.add_row(canonical.value, ", ".join(connection.status_mapping.codes_for(canonical)) or "-")
    out.print(mapping)


def print_summary(summary: ImportSummary) -> None:
    table = Table(title="Import summary", title_justify="left")
    table.add_column("")
    table.add_column("Orders", justify="right")
    for label, value in (
        ("imported", summary.imported),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("skipped", summary.skipped),
        ("failed", summary.failed),
        ("parked", summary.parked),
    ):
        table.add_row(label, str(value))
    out.print(table)
    for reason, count in summary.skip_reasons.most_common():
        out.print(f"  skipped {count}: {escape(reason)}")
    for order_id, error in list(summary.failures.items())[:10]:
        out.print(f"  [red]failed[/] {escape(order_id)}: {escape(error)}")
    if summary.parked:
        out.print(f"  {summary.parked} orders parked after repeated failures: see `channel failures`")
    detail = f" ({escape(summary.stop_error)})" if summary.stop_error else ""
    if summary.stopped == "quota":
        reason = escape(summary.stop_error) if summary.stop_error else "the daily quota is spent"
        out.print(f"[yellow]Stopped: {reason}. The next run resumes from the last stored page.[/]")
    elif summary.stopped == "interrupted":
        out.print("[yellow]Interrupted after a stored page; the next run resumes from there.[/]")
    elif summary.stopped == "inconsistent":
        out.print(f"[yellow]Stopped: the store changed under the listing{detail}. The next run reads it again.[/]")
    elif summary.stopped:
        out.print(f"[yellow]Stopped early{detail}; the next run resumes from the last stored page.[/]")


def print_notification(
    channel: Channel, order_id: str, status: NotificationStatus, fields: tuple[str, ...], message: str | None
) -> None:
    colour = {"sent": "green", "already_sent": "cyan", "failed": "red"}[status.value]
    out.print(f"Order {order_id}: [{colour}]{status.value}[/]" + (f" ({message})" if message else ""))
    if fields:
        out.print(f"  fields sent: {', '.join(fields)}")
    not_sent = channel.info().capabilities.notification_fields_not_sent
    if not_sent:
        out.print(f"  never sent to {channel.name}: {', '.join(not_sent)}")


def flat(order: dict[str, Any], shipment: Shipment | None = None) -> dict[str, Any]:
    """One CSV row: the order's main fields, and the last shipment the store accepted for it."""
    ship_to = order["ship_to"]
    return {
        "channel": order["channel"],
        "order_id": order["order_id"],
        "order_number": order["order_number"],
        "status": order["status"],
        "channel_status": order["channel_status"],
        "created_at": order["created_at"],
        "modified_at": order["modified_at"],
        "currency": order["currency"],
        "amount_paid": order["payment"]["amount_paid"],
        "buyer_email": order["buyer"]["email"],
        "ship_to_name": ship_to["name"],
        "ship_to_postal_code": ship_to["postal_code"],
        "ship_to_city": ship_to["city"],
        "ship_to_country_code": ship_to["country_code"],
        "requested_service": order["shipping"]["requested_service"],
        "items": len(order["items"]),
        "tracking_number": shipment.tracking_number if shipment else None,
        "carrier": shipment.carrier if shipment else None,
        "tracking_url": shipment.tracking_url if shipment else None,
    }


def flat_fields() -> tuple[str, ...]:
    return (
        "channel",
        "order_id",
        "order_number",
        "status",
        "channel_status",
        "created_at",
        "modified_at",
        "currency",
        "amount_paid",
        "buyer_email",
        "ship_to_name",
        "ship_to_postal_code",
        "ship_to_city",
        "ship_to_country_code",
        "requested_service",
        "items",
        "tracking_number",
        "carrier",
        "tracking_url",
    )
