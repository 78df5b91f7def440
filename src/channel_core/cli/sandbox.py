"""``channel sandbox`` and ``channel demo``: the Oxatis sandbox store, and the whole job against it."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from channel_core.cli.context import (
    EXIT_CONFIG,
    EXIT_PARTIAL,
    Context,
    Fail,
    errors,
    out,
    pass_context,
)
from channel_core.cli.importing import import_exit_code, run_import
from channel_core.cli.output import print_connection, print_notification, print_summary
from channel_core.models import OrderStatus, Shipment
from channel_core.registry import Channels
from channel_core.sync import Notifier, SQLiteStore


def _sandbox_module() -> Any:
    try:
        from channel_oxatis import sandbox
    except ImportError:  # pragma: no cover - only without channel_oxatis installed
        raise Fail("the Oxatis sandbox needs channel_oxatis installed", EXIT_CONFIG) from None
    return sandbox


@click.command()
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--orders", "count", type=int, default=200, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--token", default="sandbox-token", show_default=True)
@click.option("--latency", type=float, default=0.0, help="Seconds added to every call.")
@click.option("--no-shipped-state", is_flag=True, help="A store without SST-SHIPPED.")
@click.option("--quota-after", type=int, default=None, help="Reply 504 after N calls.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:TIMES]",
    help="Inject a fault (see --help of the module).",
)
def sandbox(
    port: int,
    count: int,
    seed: int,
    token: str,
    latency: float,
    no_shipped_state: bool,
    quota_after: int | None,
    faults: tuple[str, ...],
) -> None:
    """Run the Oxatis sandbox store on loopback until Ctrl-C."""
    module = _sandbox_module()
    fault_list = [module.Fault("quota", times=-1, after=quota_after)] if quota_after is not None else []
    for spec in faults:
        kind, _, times = spec.partition(":")
        try:
            fault_list.append(module.Fault(kind, times=int(times or 1)))
        except ValueError as exc:
            raise Fail(str(exc), EXIT_CONFIG) from None
    config = module.SandboxConfig(
        count=count,
        seed=seed,
        token=token,
        latency=latency,
        with_shipped_state=not no_shipped_state,
        faults=fault_list,
    )
    server = module.SandboxServer(config, port=port)
    out.print(
        f"Oxatis sandbox on {server.url} ({count} orders). Connect with:\n"
        f"  channel connect oxatis --set base_url={server.url} --set store_timezone=Europe/Paris "
        f"(token from OXATIS_TOKEN={token})\nCtrl-C stops it."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@click.command()
@click.option("--orders", "count", type=int, default=200, show_default=True, help="Orders in the sandbox store.")
@pass_context
def demo(ctx: Context, count: int) -> None:
    """Start the sandbox, connect, import into a fresh SQLite file, ship one order, print the summary.

    The database is ``--db`` when given (overwritten), else a new temporary file.
    """
    module = _sandbox_module()
    path = Path(ctx.db_path) if ctx.db_path else Path(tempfile.mkdtemp(prefix="channel-demo-")) / "orders.sqlite3"
    if path.exists():
        path.unlink()
    channels = Channels.discover()
    with module.SandboxServer(module.SandboxConfig(count=count, latency=0.005)) as server:
        out.print(f"[bold]1. Sandbox[/] Oxatis store with {count} orders at {server.url}")
        channel = channels["oxatis"]
        settings = {
            "token": server.config.token,
            "base_url": server.url,
            "store_timezone": "Europe/Paris",
            "stock_location_characteristic": "Emplacement",
            "requests_per_second": 200,
            "status_mapping": {"awaiting_shipment": ["PRECOMMANDE"]},
        }
        with errors():
            connection = channel.connect(settings)
        with connection, SQLiteStore(path) as store:
            out.print("[bold]2. Connect[/]")
            print_connection(channel, connection)
            out.print("[bold]3. Import[/]")
            started = time.perf_counter()
            summary = run_import(channel, connection, store, since=None)
            print_summary(summary)
            out.print(f"  {summary.pages} pages in {time.perf_counter() - started:.1f}s")
            target = next(
                (s.order for s in store.iter_orders("oxatis") if s.order.status is OrderStatus.AWAITING_SHIPMENT),
                None,
            )
            if target is None:
                raise Fail("no order awaiting shipment was imported", EXIT_PARTIAL)
            out.print(f"[bold]4. Ship[/] order {target.order_id} to {target.ship_to.city}")
            shipment = Shipment(
                order_id=target.order_id,
                tracking_number="6A00000000001",
                carrier="Colissimo",
                tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A00000000001",
                ship_date=datetime.now(UTC),
            )
            notifier = Notifier(channel, connection, store)
            first = notifier.notify(shipment).result
            print_notification(channel, target.order_id, first.status, first.fields_sent, first.message)
            again = notifier.notify(shipment).result
            print_notification(channel, target.order_id, again.status, again.fields_sent, again.message)
            out.print(f"  sandbox now shows {server.store.shipped_entries(int(target.order_id))} shipped state entry")
            total = store.count_orders()
    out.print(f"[bold]Done.[/] {total} orders in {path}")
    out.print(f"  try: channel --db {path} orders --format jsonl | head -1")
    sys.exit(import_exit_code(summary))
