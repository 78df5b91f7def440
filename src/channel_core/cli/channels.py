"""``channel list`` and ``channel connect``: what is installed, and does a store answer."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from channel_core.cli.context import (
    Context,
    err,
    out,
    pass_context,
    set_option,
)
from channel_core.cli.output import print_connection


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def list_channels(ctx: Context, as_json: bool) -> None:
    """Installed channels, their versions and capabilities."""
    rows: list[dict[str, Any]] = []
    for name in ctx.channels.names():
        info = ctx.channels[name].info()
        rows.append(
            {
                "name": name,
                "version": ctx.channels[name].version or info.version,
                "display_name": info.display_name,
                "import_features": list(info.capabilities.import_features),
                "notification_fields": list(info.capabilities.notification_fields),
                "notification_fields_not_sent": list(info.capabilities.notification_fields_not_sent),
                "settings": [s.name for s in info.settings],
                "description": info.description,
                "shipments": [
                    label
                    for label, flag in (
                        ("partial shipments", info.capabilities.partial_shipments),
                        ("several packages", info.capabilities.multiple_packages),
                        ("notify the buyer", info.capabilities.notify_buyer),
                    )
                    if flag
                ],
                "defaults": {s.name: s.default for s in info.settings if s.default not in (None, "", {}, False)},
            }
        )
    broken = [{"name": f.name, "group": f.group, "error": f.error} for f in ctx.channels.failures]
    if as_json:
        click.echo(json.dumps({"channels": rows, "not_loaded": broken}, indent=2))
        return
    for row in rows:
        table = Table(title=f"{row['display_name']} ({row['name']} {row['version']})", title_justify="left")
        table.add_column("Data sent with the shipment notification")
        table.add_column("Sent", justify="center")
        for fld in row["notification_fields"]:
            table.add_row(fld, "yes")
        for fld in row["notification_fields_not_sent"]:
            table.add_row(fld, "no")
        out.print(table)
        if row["description"]:
            out.print(f"  {row['description']}", markup=False)
        out.print(f"  imports: {', '.join(row['import_features']) or '-'}")
        out.print(f"  shipments: {', '.join(row['shipments']) or 'whole orders, one package'}")
        pinned = {k: v for k, v in row["defaults"].items() if k in ("api_version", "base_url")}
        out.print(
            f"  settings: {', '.join(row['settings'])}"
            + "".join(f"\n  {name}: {value}" for name, value in pinned.items())
            + "\n",
            markup=False,
        )
    for item in broken:
        err.print(f"[yellow]not loaded:[/] {item['name']}: {item['error']}")


@click.command()
@click.argument("channel_name", metavar="CHANNEL")
@set_option
@pass_context
def connect(ctx: Context, channel_name: str, overrides: tuple[str, ...]) -> None:
    """Check a store: prove the credentials, show its statuses and the status mapping."""
    channel = ctx.channel(channel_name)
    table = Table(title="Settings", title_justify="left", box=box.SIMPLE)
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for name, value, source in ctx.effective_settings(channel, overrides):
        table.add_row(name, escape("" if value is None else str(value)), source)
    out.print(table)
    channel, connection = ctx.connect(channel_name, overrides)
    with connection:
        print_connection(channel, connection)
