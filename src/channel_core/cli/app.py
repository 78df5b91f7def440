"""The ``channel`` command: run the whole job without a host application of your own.

Exit codes: 0 success; 1 partial failure (some orders or notifications failed);
2 configuration or authentication error (the message says what to fix);
3 stopped early (daily quota, API unavailable); 130 interrupted.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import click
import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from channel_core.cli.settings import load_config, resolve_settings
from channel_core.errors import AuthenticationError, ChannelError, ConfigurationError, PluginError
from channel_core.hooktypes import Connection, OrderPage
from channel_core.logs import redact_processor
from channel_core.models import NotificationStatus, OrderStatus, Shipment, to_dict
from channel_core.registry import Channel, Channels
from channel_core.sync import Importer, ImportSummary, Notifier, SQLiteStore

__all__ = ["EXIT_CONFIG", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_STOPPED", "cli", "main"]

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_DB = "channel.sqlite3"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Fail(click.ClickException):
    """A clean, one-line error with the exit code that classifies it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]Error:[/] {self.message}")


def _configure_logging(verbose: int) -> None:
    """The CLI is an application, so it (not the library) decides where logs go."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_processor,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (ConfigurationError, PluginError) as exc:
        raise Fail(str(exc), EXIT_CONFIG) from None
    except AuthenticationError as exc:
        raise Fail(str(exc), EXIT_CONFIG) from None
    except ChannelError as exc:
        raise Fail(str(exc), EXIT_STOPPED) from None


class Context:
    def __init__(self, config_path: str | None, db: str | None) -> None:
        self.config_path = config_path
        self.db_path = db
        self._channels: Channels | None = None

    @property
    def channels(self) -> Channels:
        if self._channels is None:
            self._channels = Channels.discover()
        return self._channels

    def channel(self, name: str) -> Channel:
        with _errors():
            return self.channels[name]

    def connect(self, name: str, overrides: tuple[str, ...]) -> tuple[Channel, Connection]:
        channel = self.channel(name)
        with _errors():
            settings = resolve_settings(channel.info(), load_config(self.config_path), overrides)
            return channel, channel.connect(settings)

    def store(self) -> SQLiteStore:
        config = load_config(self.config_path)
        path = self.db_path or config.get("database") or DEFAULT_DB
        return SQLiteStore(path)


pass_context = click.make_pass_decorator(Context)
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", default=None, help="TOML config file (default ./channel.toml).")
@click.option("--db", default=None, envvar="CHANNEL_DB", help=f"SQLite database (default ./{DEFAULT_DB}).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug), secrets redacted.")
@click.version_option(package_name="channel-integrations")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db: str | None, verbose: int) -> None:
    """Import orders from online stores and send shipment notifications back."""
    _configure_logging(verbose)
    ctx.obj = Context(config_path, db)


# ---------------------------------------------------------------------- list


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def list_channels(ctx: Context, as_json: bool) -> None:
    """Installed channels, their versions and capabilities."""
    rows = []
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
        out.print(f"  imports: {', '.join(row['import_features']) or '-'}")
        out.print(f"  settings: {', '.join(row['settings'])}\n")
    for item in broken:
        err.print(f"[yellow]not loaded:[/] {item['name']}: {item['error']}")


# ---------------------------------------------------------------------- connect


@cli.command()
@click.argument("channel_name", metavar="CHANNEL")
@set_option
@pass_context
def connect(ctx: Context, channel_name: str, overrides: tuple[str, ...]) -> None:
    """Check a store: prove the credentials, show its statuses and the status mapping."""
    channel, connection = ctx.connect(channel_name, overrides)
    with connection:
        _print_connection(channel, connection)


def _print_connection(channel: Channel, connection: Connection) -> None:
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


# ---------------------------------------------------------------------- import


def _run_import(
    channel: Channel,
    connection: Connection,
    store: SQLiteStore,
    *,
    since: datetime | None,
    stop: threading.Event | None = None,
    show_progress: bool = True,
) -> ImportSummary:
    kwargs: dict[str, Any] = {}
    if since is not None:
        kwargs["initial_start"] = since
    importer = Importer(channel, connection, store, **kwargs)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("importing", total=None)

        def on_page(page: OrderPage, summary: ImportSummary) -> None:
            progress.update(
                task,
                description=(
                    f"page {summary.pages}: {summary.imported} new, {summary.updated} updated, "
                    f"{summary.unchanged} unchanged, {summary.skipped} skipped, {summary.failed} failed"
                ),
            )

        with _errors():
            return importer.run(on_page=on_page, should_stop=(stop.is_set if stop else lambda: False))


def _print_summary(summary: ImportSummary) -> None:
    table = Table(title="Import summary", title_justify="left")
    table.add_column("")
    table.add_column("Orders", justify="right")
    for label, value in (
        ("imported", summary.imported),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("skipped", summary.skipped),
        ("failed", summary.failed),
    ):
        table.add_row(label, str(value))
    out.print(table)
    for reason, count in summary.skip_reasons.most_common():
        out.print(f"  skipped {count}: {reason}")
    for order_id, error in list(summary.failures.items())[:10]:
        out.print(f"  [red]failed[/] {order_id}: {error}")
    if summary.stopped == "quota":
        out.print("[yellow]Stopped: the daily quota is spent. The next run resumes from the last stored page.[/]")
    elif summary.stopped == "interrupted":
        out.print("[yellow]Interrupted after a stored page; the next run resumes from there.[/]")
    elif summary.stopped:
        out.print("[yellow]Stopped early; the next run resumes from the last stored page.[/]")


def _import_exit_code(summary: ImportSummary) -> int:
    if summary.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if summary.stopped:
        return EXIT_STOPPED
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Fail(f"--since must be an ISO date or datetime, got {value!r}", EXIT_CONFIG) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@cli.command("import")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--since", default=None, help="First run only: import orders modified since (ISO, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@set_option
@pass_context
def import_orders(
    ctx: Context, channel_name: str, since: str | None, as_json: bool, overrides: tuple[str, ...]
) -> None:
    """One incremental sync of a store's orders into the database."""
    start = _parse_since(since)
    channel, connection = ctx.connect(channel_name, overrides)
    stop = threading.Event()
    with connection, ctx.store() as store, _stop_on_interrupt(stop):
        summary = _run_import(channel, connection, store, since=start, stop=stop, show_progress=not as_json)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(summary)
    sys.exit(_import_exit_code(summary))


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C: finish the current page, then stop. Second Ctrl-C: abort."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        err.print("[yellow]Stopping after the current page (Ctrl-C again to abort)...[/]")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------- orders


def _flat(order: dict[str, Any]) -> dict[str, Any]:
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
    }


@cli.command()
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
        flat = [_flat(r) for r in rows]
        writer = csv.DictWriter(sys.stdout, fieldnames=list(_flat_fields()))
        writer.writeheader()
        writer.writerows(flat)
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


def _flat_fields() -> tuple[str, ...]:
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
    )


# ---------------------------------------------------------------------- ship


@cli.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("order_id")
@click.option("--tracking", required=True, help="Tracking number.")
@click.option("--carrier", required=True, help="Carrier name as the buyer should see it.")
@click.option("--tracking-url", default=None)
@click.option("--service", default=None)
@click.option("--cost", default=None, help="Shipping cost.")
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
    overrides: tuple[str, ...],
) -> None:
    """Tell the store an order shipped (safe to repeat: a repeat is reported as already sent)."""
    try:
        shipment = Shipment(
            order_id=order_id,
            tracking_number=tracking,
            carrier=carrier,
            tracking_url=tracking_url,
            service=service,
            shipping_cost=Decimal(cost) if cost else None,
            ship_date=datetime.now(UTC),
        )
    except (ValueError, ArithmeticError) as exc:
        raise Fail(f"invalid shipment: {exc}", EXIT_CONFIG) from None
    channel, connection = ctx.connect(channel_name, overrides)
    with connection, ctx.store() as store:
        with _errors():
            outcome = Notifier(channel, connection, store).notify(shipment)
    _print_notification(channel, order_id, outcome.result.status, outcome.result.fields_sent, outcome.result.message)
    sys.exit(EXIT_OK if outcome.result.status is not NotificationStatus.FAILED else EXIT_PARTIAL)


def _print_notification(
    channel: Channel, order_id: str, status: NotificationStatus, fields: tuple[str, ...], message: str | None
) -> None:
    colour = {"sent": "green", "already_sent": "cyan", "failed": "red"}[status.value]
    out.print(f"Order {order_id}: [{colour}]{status.value}[/]" + (f" ({message})" if message else ""))
    if fields:
        out.print(f"  fields sent: {', '.join(fields)}")
    not_sent = channel.info().capabilities.notification_fields_not_sent
    if not_sent:
        out.print(f"  never sent to {channel.name}: {', '.join(not_sent)}")


# ---------------------------------------------------------------------- sync


def _parse_every(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value[-1] in units:
            return float(value[:-1]) * units[value[-1]]
        return float(value)
    except (ValueError, IndexError):
        raise Fail(f"--every must look like 30s, 5m or 1h, got {value!r}", EXIT_CONFIG) from None


@cli.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--every", default="5m", show_default=True, help="Interval between runs (30s, 5m, 1h).")
@click.option("--runs", type=int, default=None, help="Stop after this many runs (default: until Ctrl-C).")
@set_option
@pass_context
def sync(ctx: Context, channel_name: str, every: str, runs: int | None, overrides: tuple[str, ...]) -> None:
    """Import and retry pending notifications repeatedly; Ctrl-C stops after the current page."""
    interval = _parse_every(every)
    channel, connection = ctx.connect(channel_name, overrides)
    stop = threading.Event()
    code = EXIT_OK
    done = 0
    with connection, ctx.store() as store, _stop_on_interrupt(stop):
        while not stop.is_set():
            summary = _run_import(channel, connection, store, since=None, stop=stop)
            with _errors():
                retried = Notifier(channel, connection, store).retry_pending()
            out.print(
                f"[{datetime.now(UTC):%H:%M:%S}] imported {summary.imported}, updated {summary.updated}, "
                f"skipped {summary.skipped}, failed {summary.failed}; notifications retried {len(retried)}"
            )
            code = _import_exit_code(summary)
            done += 1
            if runs is not None and done >= runs:
                break
            stop.wait(interval)
    sys.exit(EXIT_INTERRUPTED if stop.is_set() else code)


# ---------------------------------------------------------------------- sandbox and demo


def _sandbox_module() -> Any:
    try:
        from channel_oxatis import sandbox
    except ImportError:  # pragma: no cover - only without channel_oxatis installed
        raise Fail("the Oxatis sandbox needs channel_oxatis installed", EXIT_CONFIG) from None
    return sandbox


@cli.command()
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
        server.stop()


@cli.command()
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
        with _errors():
            connection = channel.connect(settings)
        with connection, SQLiteStore(path) as store:
            out.print("[bold]2. Connect[/]")
            _print_connection(channel, connection)
            out.print("[bold]3. Import[/]")
            started = time.perf_counter()
            summary = _run_import(channel, connection, store, since=None)
            _print_summary(summary)
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
            _print_notification(channel, target.order_id, first.status, first.fields_sent, first.message)
            again = notifier.notify(shipment).result
            _print_notification(channel, target.order_id, again.status, again.fields_sent, again.message)
            out.print(f"  sandbox now shows {server.store.shipped_entries(int(target.order_id))} shipped state entry")
            total = store.count_orders()
    out.print(f"[bold]Done.[/] {total} orders in {path}")
    out.print(f"  try: channel --db {path} orders --format jsonl | head -1")
    sys.exit(_import_exit_code(summary))


def main() -> None:
    cli(prog_name="channel")
