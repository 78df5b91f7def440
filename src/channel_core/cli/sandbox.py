"""``channel sandbox`` and ``channel demo``: a channel's sandbox store, and the whole job against it.

Any channel that implements the ``channel_sandbox`` hook has both; the core
knows no channel by name.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

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
from channel_core.hooktypes import ChannelSandbox, RunningSandbox, SandboxOptions
from channel_core.models import OrderStatus, Shipment
from channel_core.registry import Channel
from channel_core.sync import Notifier, SQLiteStore

DEFAULT_CHANNEL = "oxatis"


def _sandbox_of(ctx: Context, name: str) -> tuple[Channel, ChannelSandbox]:
    channel = ctx.channel(name)
    with errors():
        sandbox = channel.sandbox()
    if sandbox is None:
        have = [n for n in ctx.channels.names() if ctx.channels[n].sandbox() is not None]
        raise Fail(f"channel {name!r} ships no sandbox (channels with one: {', '.join(have) or 'none'})", EXIT_CONFIG)
    return channel, sandbox


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise Fail(f"--set must look like key=value, got {pair!r}", EXIT_CONFIG)
        options[key.strip()] = value.strip()
    return options


def _make(sandbox: ChannelSandbox, options: SandboxOptions) -> RunningSandbox:
    try:
        with errors():
            return sandbox.make(options)
    except OSError as exc:  # a busy port, say
        raise Fail(f"the sandbox could not start: {exc.strerror or exc}", EXIT_CONFIG) from None


@click.command()
@click.argument("channel_name", metavar="[CHANNEL]", default=DEFAULT_CHANNEL)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--orders", "count", type=click.IntRange(0), default=200, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--latency", type=click.FloatRange(0), default=0.0, help="Seconds added to every call.")
@click.option("--fault", "faults", multiple=True, metavar="KIND[:TIMES]", help="Inject a fault the channel knows.")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="A channel-specific sandbox option.")
@click.option(
    "--stores",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Host N merchants' stores; prints each one's credentials and a ready `channel stores add` line.",
)
@pass_context
def sandbox(
    ctx: Context,
    channel_name: str,
    port: int,
    count: int,
    seed: int,
    latency: float,
    faults: tuple[str, ...],
    pairs: tuple[str, ...],
    stores: int,
) -> None:
    """Run a channel's sandbox store (default: oxatis) until Ctrl-C."""
    channel, spec = _sandbox_of(ctx, channel_name)
    options = SandboxOptions(
        port=port, orders=count, seed=seed, latency=latency, faults=faults, options=_options(pairs), stores=stores
    )
    running = _make(spec, options)
    if stores == 1:
        settings = running.connect_settings()
        shown = " ".join(f"--set {k}={v}" for k, v in settings.items())
        out.print(
            f"{channel.name} sandbox ({spec.description or 'a local store'}) at {running.url}, {count} orders.\n"
            f"Connect with:\n  channel connect {channel.name} {shown}\nCtrl-C stops it.",
            markup=False,
        )
    else:
        _print_stores(channel, running, stores, count)
    running.serve_forever()


def _print_stores(channel: Channel, running: RunningSandbox, stores: int, count: int) -> None:
    """Each hosted store's credentials, as the environment variables and ``stores add`` line of the fleet."""
    store_settings = getattr(running, "store_settings", None)
    if store_settings is None:
        running.stop()
        raise Fail(f"the {channel.name} sandbox hosts a single store; leave out --stores", EXIT_CONFIG)
    secret = {spec.name for spec in channel.info().settings if spec.secret}
    lines = [f"{channel.name} sandbox at {running.url}: {stores} stores of {count} orders each."]
    for n, settings in enumerate(store_settings(), start=1):
        key, prefix = f"shop{n}", f"SHOP{n}"
        exports = " ".join(f"{prefix}_{name.upper()}={settings[name]}" for name in sorted(secret & set(settings)))
        public = " ".join(f"--set {k}={v}" for k, v in settings.items() if k not in secret)
        lines += [
            f"Store {n}:",
            f"  export {exports}",
            f"  channel stores add {key} {channel.name} --credentials env:{prefix} --every 1m {public}",
        ]
    lines.append("Then: channel worker (with those variables exported). Ctrl-C stops the sandbox.")
    out.print("\n".join(lines), markup=False)


def _fresh_database(ctx: Context) -> Path:
    """The demo's database: a new temporary file, or an empty one the user named; never theirs."""
    if not ctx.db_path:
        return Path(tempfile.mkdtemp(prefix="channel-demo-")) / "orders.sqlite3"
    path = Path(ctx.db_path)
    if path.exists() and path.stat().st_size > 0:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        except sqlite3.DatabaseError:
            tables = 1
        if tables:
            raise Fail(
                f"the demo never writes into an existing database, and {path} is not empty; "
                "leave out --db (the demo makes its own) or name a new file",
                EXIT_CONFIG,
            )
    return path


@click.command()
@click.argument("channel_name", metavar="[CHANNEL]", default=DEFAULT_CHANNEL)
@click.option("--orders", "count", type=click.IntRange(1), default=200, show_default=True, help="Orders in the store.")
@pass_context
def demo(ctx: Context, channel_name: str, count: int) -> None:
    """Start a sandbox, connect, import into a new SQLite file, ship one order, print the summary.

    The database is a new temporary file, or ``--db`` when it names a new or empty file.
    """
    channel, spec = _sandbox_of(ctx, channel_name)
    path = _fresh_database(ctx)
    running = _make(spec, SandboxOptions(orders=count, latency=0.005, options=dict(spec.demo_options)))
    running.start()
    try:
        out.print(f"[bold]1. Sandbox[/] {escape(channel.name)} store with {count} orders at {escape(running.url)}")
        with errors():
            connection = channel.connect({**running.connect_settings(), **spec.demo_settings})
        with connection, SQLiteStore(path) as store:
            out.print("[bold]2. Connect[/]")
            print_connection(channel, connection)
            out.print("[bold]3. Import[/]")
            started = time.perf_counter()
            summary = run_import(channel, connection, store, since=None)
            print_summary(summary)
            out.print(f"  {summary.pages} pages in {time.perf_counter() - started:.1f}s")
            target = next(
                (s.order for s in store.iter_orders(channel.name) if s.order.status is OrderStatus.AWAITING_SHIPMENT),
                None,
            )
            if target is None:
                raise Fail("no order awaiting shipment was imported", EXIT_PARTIAL)
            out.print(f"[bold]4. Ship[/] order {escape(target.order_id)} to {escape(target.ship_to.city or '?')}")
            shipment = Shipment(
                order_id=target.order_id,
                tracking_number="6A00000000001",
                carrier="Colissimo",
                tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A00000000001",
                ship_date=datetime.now(UTC),
            )
            notifier = Notifier(channel, connection, store)
            with errors():
                first = notifier.notify(shipment).result
                again = notifier.notify(shipment).result
            print_notification(channel, target.order_id, first.status, first.fields_sent, first.message)
            print_notification(channel, target.order_id, again.status, again.fields_sent, again.message)
            total = store.count_orders()
    finally:
        running.stop()
    out.print(f"[bold]Done.[/] {total} orders in {escape(str(path))}")
    out.print(f"  try: channel --db {escape(str(path))} orders --format jsonl | head -1")
    sys.exit(import_exit_code(summary))
