"""``channel orders``: list or export what was imported."""

from __future__ import annotations

import csv
import json
import sys

import click
from rich.table import Table

from channel_core.cli.context import (
    Context,
    out,
    pass_context,
)
from channel_core.cli.output import flat, flat_fields
from channel_core.models import OrderStatus, to_dict


@click.command()
@click.option("--channel", "channel_name", default=None, help="Only this channel.")
@click.option("--status", default=None, type=click.Choice([s.value for s in OrderStatus]))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table")
@pass_context
def orders(ctx: Context, channel_name: str | None, status: str | None, fmt: str) -> None:
    """List or export imported orders (JSON lines hold the full canonical order)."""
    with ctx.store() as store:
        rows = [to_dict(s.order) for s in store.iter_orders(channel_name) if status in (None, s.order.status.value)]
    if fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(flat_fields()))
        writer.writeheader()
        writer.writerows(flat(r) for r in rows)
    else:
        table = Table(title=f"{len(rows)} orders", title_justify="left")
        for column in ("order", "status", "created (UTC)", "buyer", "ship to", "service", "items"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["order_number"],
                row["status"],
                row["created_at"][:16].replace("T", " "),
                row["buyer"]["email"] or "-",
                f"{row['ship_to']['postal_code'] or ''} {row['ship_to']['city'] or ''}".strip(),
                row["shipping"]["requested_service"] or "-",
                str(len(row["items"])),
            )
        out.print(table)
