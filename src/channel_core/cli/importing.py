"""``channel import`` and ``channel sync``: incremental imports into the database."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from channel_core.cli.context import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STOPPED,
    Context,
    Fail,
    err,
    errors,
    out,
    parse_interval,
    pass_context,
    set_option,
)
from channel_core.cli.output import print_summary
from channel_core.hooktypes import Connection, OrderPage
from channel_core.models import NotificationStatus
from channel_core.registry import Channel
from channel_core.sync import Importer, ImportSummary, Notifier, OrderStore


def run_import(
    channel: Channel,
    connection: Connection,
    store: OrderStore,
    *,
    since: datetime | None,
    stop: threading.Event | None = None,
    show_progress: bool = True,
) -> ImportSummary:
    kwargs: dict[str, Any] = {}
    if since is not None:  # the first window starts there; later runs re-read from there (versions keep it cheap)
        kwargs["initial_start"] = since
        kwargs["rescan_from"] = since
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
            where = f"page {page.page_of[0]} of {page.page_of[1]}" if page.page_of else f"page {summary.pages}"
            done = summary.imported + summary.updated + summary.unchanged + summary.skipped + len(summary.failures)
            of = f" of {page.listed_total} listed" if page.listed_total is not None else ""
            progress.update(
                task,
                description=(
                    f"{where}: {done}{of} orders ({summary.imported} new, {summary.updated} updated, "
                    f"{summary.unchanged} unchanged, {summary.skipped} skipped, {len(summary.failures)} failed)"
                ),
            )

        with errors():
            return importer.run(on_page=on_page, should_stop=(stop.is_set if stop else lambda: False))


STORE_LIMITS = frozenset({"quota", "rate_limited"})


def import_exit_code(summary: ImportSummary) -> int:
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


@click.command("import")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--since", default=None, help="Read orders modified since (ISO, UTC), also after the first run.")
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
    with connection, ctx.store() as store, stop_on_interrupt(stop):
        summary = run_import(channel, connection, store, since=start, stop=stop, show_progress=not as_json)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(summary)
    sys.exit(import_exit_code(summary))


@contextmanager
def stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
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


@click.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--every", default="5m", show_default=True, help="Interval between runs (30s, 5m, 1h).")
@click.option("--runs", type=int, default=None, help="Stop after this many runs (default: until Ctrl-C).")
@set_option
@pass_context
def sync(ctx: Context, channel_name: str, every: str, runs: int | None, overrides: tuple[str, ...]) -> None:
    """Import and retry pending notifications repeatedly; Ctrl-C stops after the current page."""
    interval = parse_interval(every, "--every")
    channel, connection = ctx.connect(channel_name, overrides)
    stop = threading.Event()
    code = EXIT_OK
    done = 0
    with connection, ctx.store() as store, stop_on_interrupt(stop):
        while not stop.is_set():
            summary = run_import(channel, connection, store, since=None, stop=stop)
            retried = []
            if summary.stopped not in STORE_LIMITS:  # the store cannot be asked now: notifications wait too
                with errors():
                    retried = Notifier(channel, connection, store).retry_pending()
            not_sent = [o for o in retried if o.result.status is NotificationStatus.FAILED]
            parked = sum(1 for o in retried if o.parked)
            out.print(
                f"[{datetime.now(UTC):%H:%M:%S}] imported {summary.imported}, updated {summary.updated}, "
                f"skipped {summary.skipped}, failed {summary.failed}; notifications retried {len(retried)}, "
                f"not sent {len(not_sent)} ({parked} parked: see `channel notifications`)",
                markup=False,
            )
            code = import_exit_code(summary)
            if code == EXIT_OK and not_sent:
                code = EXIT_PARTIAL
            done += 1
            if runs is not None and done >= runs:
                break
            stop.wait(interval)
    sys.exit(EXIT_INTERRUPTED if stop.is_set() else code)
