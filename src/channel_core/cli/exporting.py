"""``channel orders``: list or export what was imported."""

from __future__ import annotations

import csv
import json
import sys

import click

from channel_core.cli.context import (
    EXIT_CONFIG,
    Context,
    Fail,
    out,
    pass_context,
)
from channel_core.cli.output import flat, flat_fields
from channel_core.cli.tables import Column, fitted_table
from channel_core.models import OrderStatus, to_dict


@click.command()
@click.option("--channel", "channel_name", default=None, help="Only this channel.")
@click.option("--status", default=None, type=click.Choice([s.value for s in OrderStatus]))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table")
@pass_context
def orders(ctx: Context, channel_name: str | None, status: str | None, fmt: str) -> None:
    """List or export imported orders (JSON lines hold the full canonical order; CSV and the table add tracking)."""
    if channel_name is not None and channel_name not in ctx.channels.names():
        installed = ", ".join(ctx.channels.names()) or "none"
        raise Fail(f"no channel named {channel_name!r} is installed (installed: {installed})", EXIT_CONFIG)
    with ctx.store(must_exist=True) as store:
        stored = [s for s in store.iter_orders(channel_name) if status in (None, s.order.status.value)]
        found = store.latest_shipments(channel_name)
    rows = [to_dict(s.order) for s in stored]
    shipments = {(s.order.channel, s.order.order_id): found.get((s.order.channel, s.account_id, s.order.order_id))
                 for s in stored}  # fmt: skip
    if fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(flat_fields()))
        writer.writeheader()
        writer.writerows(flat(r, shipments.get((r["channel"], r["order_id"]))) for r in rows)
    else:
        columns = (
            Column("order", keep=9),
            Column("status", keep=8),
            Column("created (UTC)", keep=4),
            Column("buyer", keep=3, wrap=True),
            Column("ship to", keep=6, wrap=True),
            Column("service", keep=2, wrap=True),
            Column("items", keep=5),
            Column("tracking", keep=7, wrap=True),
        )
        cells = []
        for row in rows:
            shipment = shipments.get((row["channel"], row["order_id"]))
            cells.append(
                (
                    row["order_number"],
                    row["status"],
                    row["created_at"][:16].replace("T", " "),
                    row["buyer"]["email"] or "-",
                    f"{row['ship_to']['postal_code'] or ''} {row['ship_to']['city'] or ''}".strip(),
                    row["shipping"]["requested_service"] or "-",
                    str(len(row["items"])),
                    f"{shipment.carrier} {shipment.tracking_number}" if shipment else "-",
                )
            )
        out.print(fitted_table(f"{len(rows)} orders", columns, cells, out.width))
