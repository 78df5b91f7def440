"""``channel stores``, ``channel worker`` and ``channel status``: many stores on PostgreSQL and procrastinate."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from channel_core.cli.context import (
    EXIT_CONFIG,
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
)
from channel_core.cli.output import print_notification
from channel_core.cli.settings import parse_value
from channel_core.cli.shipping import notify, shipment_from_options, shipment_options
from channel_core.cli.tables import Column, fitted_table
from channel_core.models import NotificationStatus

WORKER_EXTRA = "pip install 'channel-integrations[engine]'"


@contextmanager
def _registry(ctx: Context, command: str) -> Iterator[Any]:
    dsn = ctx.postgres(command)
    with errors():
        from channel_core.fleet.registry import StoreRegistry
        from channel_core.sync.postgres import PostgresStore

        with PostgresStore(dsn) as db:
            yield StoreRegistry(db)


def _no_store(key: str) -> Fail:
    return Fail(f"no store {key} in the registry (see `channel stores list`)", EXIT_CONFIG)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%m-%d %H:%M:%S") if value is not None else "-"


@click.group()
def stores() -> None:
    """The stores the workers sync (PostgreSQL): add, list, remove, run now, ship."""


@stores.command("add")
@click.argument("key")
@click.argument("channel_name", metavar="CHANNEL")
@click.option(
    "--credentials",
    required=True,
    metavar="REF",
    help="Where the worker finds the secrets: env:PREFIX reads PREFIX_TOKEN, PREFIX_APP_ID...; file:NAME reads "
    "$CHANNEL_CREDENTIALS_DIR/NAME.json and keeps renewed secrets (a rotating refresh token) there",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="A non-secret setting.")
@click.option("--every", default="15m", show_default=True, help="Sync interval (30s, 5m, 1h).")
@click.option("--rate", type=float, default=None, help="Requests per second for the account, shared by all workers.")
@click.option("--quota-reset", default="00:00", show_default=True, help="When the daily quota resets (HH:MM).")
@click.option(
    "--quota-timezone",
    default=None,
    help="The time zone of --quota-reset (default: the store's store_timezone, else UTC).",
)
@click.option("--replace", is_flag=True, help="Replace a store already registered under KEY.")
@pass_context
def add(
    ctx: Context,
    key: str,
    channel_name: str,
    credentials: str,
    overrides: tuple[str, ...],
    every: str,
    rate: float | None,
    quota_reset: str,
    quota_timezone: str | None,
    replace: bool,
) -> None:
    """Register a store under KEY; it is due at once."""
    interval = parse_interval(every, "--every")
    channel = ctx.channel(channel_name)
    settings: dict[str, Any] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise Fail(f"--set expects key=value, got {item!r}", EXIT_CONFIG)
        settings[name.strip()] = parse_value(raw.strip())
    with _registry(ctx, "stores add") as registry, errors():
        store = registry.add(
            key,
            channel.info(),
            settings=settings,
            credentials=credentials,
            every=timedelta(seconds=interval),
            requests_per_second=rate,
            quota_reset=quota_reset,
            quota_timezone=quota_timezone,
            replace=replace,
        )
    out.print(f"store {store.key} ({store.channel}) registered; syncs every {every}", markup=False)


@stores.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def list_stores(ctx: Context, as_json: bool) -> None:
    """The registered stores, their schedule and parking (never a secret)."""
    with _registry(ctx, "stores list") as registry:
        rows = registry.stores()
    if as_json:
        click.echo(json.dumps([store.as_dict() for store in rows], indent=2))
        return
    columns = (
        Column("store", keep=9),
        Column("channel", keep=7),
        Column("account", keep=3, wrap=True),
        Column("every", keep=6),
        Column("next run", keep=5),
        Column("rate/s", keep=4),
        Column("parked until", keep=8),
    )
    cells = [
        (
            s.key,
            s.channel,
            s.account_id or "-",
            str(s.every),
            _when(s.next_run),
            f"{s.requests_per_second:g}" if s.requests_per_second else "-",
            _when(s.parked_until),
        )
        for s in rows
    ]
    out.print(fitted_table("times in UTC", columns, cells, out.width))


@stores.command("remove")
@click.argument("key")
@pass_context
def remove(ctx: Context, key: str) -> None:
    """Stop syncing KEY (its orders and history stay)."""
    with _registry(ctx, "stores remove") as registry:
        if not registry.remove(key):
            raise _no_store(key)
    out.print(f"store {key} removed", markup=False)


@stores.command("run")
@click.argument("key")
@pass_context
def run_now(ctx: Context, key: str) -> None:
    """Make KEY due now, lifting a quota parking."""
    with _registry(ctx, "stores run") as registry:
        if not registry.run_now(key):
            raise _no_store(key)
    out.print(f"store {key} is due; a running worker picks it up within its tick", markup=False)


@stores.command("ship")
@click.argument("key")
@click.argument("order_id")
@shipment_options
@pass_context
def ship_for_store(
    ctx: Context,
    key: str,
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
) -> None:
    """Tell registered store KEY an order shipped, now (its credentials and rate budget, as a worker would)."""
    shipment = shipment_from_options(
        order_id, tracking, carrier, tracking_url, service, cost, force, items, package, notify_buyer
    )
    dsn = ctx.postgres("stores ship")
    from channel_core.fleet.engine import connected_store

    with errors(), connected_store(dsn, key, channels=ctx.channels) as (channel, connection, db):
        outcome = notify(channel, connection, db, shipment)
    print_notification(channel, order_id, outcome.result.status, outcome.result.fields_sent, outcome.result.message)
    sys.exit(EXIT_OK if outcome.result.status is not NotificationStatus.FAILED else EXIT_PARTIAL)


def _cron(seconds: float) -> str:
    whole = int(seconds)
    divides_minute = whole < 60 and 60 % whole == 0
    divides_hour = whole % 60 == 0 and 60 % (whole // 60) == 0
    if whole != seconds or not (divides_minute or divides_hour):
        raise Fail(f"--tick must divide a minute or an hour evenly (1s..30s, 1m..30m), got {seconds:g}s", EXIT_CONFIG)
    return f"* * * * * */{whole}" if whole < 60 else f"*/{whole // 60} * * * *"


def _abandon(reason: str) -> None:
    """The worker gave up on its database and its jobs hang on connections that will not come: end here."""
    import os

    err.print(f"[bold red]Error:[/] worker stopped: {reason}", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_STOPPED)


def _print_finished(store_key: str, result: dict[str, Any], seconds: float) -> None:
    """One line per finished sync, so an operator sees the worker working."""
    stopped = result.get("stopped")
    outcome = "completed" if not stopped else f"stopped ({stopped})"
    orders = sum(int(result.get(k) or 0) for k in ("imported", "updated", "unchanged"))
    line = (
        f"sync {store_key}: {outcome}, {orders} orders ({result.get('imported') or 0} new, "
        f"{result.get('updated') or 0} updated), {result.get('failed') or 0} failed, {seconds:.1f}s"
    )
    if stopped and result.get("stop_error"):
        line += f": {result['stop_error']}"
    out.print(line, markup=False)


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True, help="Jobs at once.")
@click.option("--once", is_flag=True, help="Queue the due stores, run every waiting job, then exit.")
@click.option("--tick", default="10s", show_default=True, help="How often due stores are queued.")
@click.option(
    "--stalled-after",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat before another worker takes over a worker's jobs.",
)
@click.option(
    "--claim-lease",
    default="5m",
    show_default=True,
    help="How long a dead worker's claim on an order blocks its shipment notification.",
)
@click.option(
    "--keep", default="30d", show_default=True, help="How long failed jobs and run history are kept (daily clean-up)."
)
@click.option(
    "--keep-succeeded-jobs",
    is_flag=True,
    help="Keep each succeeded job's row until --keep (by default it goes when the job ends: the run history "
    "and the notification ledger hold what it did).",
)
@click.option(
    "--run-detail",
    default="3d",
    show_default=True,
    help="How long each run stays in the history one by one; older runs become per-store daily totals.",
)
@click.option(
    "--http-timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds any request may take, capping each channel's own timeout (default: the channels' own, 30).",
)
@click.option(
    "--give-up-after",
    default="5m",
    show_default=True,
    help="How long the worker waits for a database that went away before it exits (code 3).",
)
@click.option(
    "--budget-wait",
    type=click.FloatRange(min=0.0),
    default=60.0,
    show_default=True,
    help="Seconds a request may wait for its slot in a store's shared rate budget before the run stops.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics at http://0.0.0.0:PORT/metrics (see docs/scaling.md).",
)
@pass_context
def worker(
    ctx: Context,
    concurrency: int,
    once: bool,
    tick: str,
    stalled_after: float,
    claim_lease: str,
    keep: str,
    keep_succeeded_jobs: bool,
    run_detail: str,
    give_up_after: str,
    http_timeout: float | None,
    budget_wait: float,
    metrics_port: int | None,
) -> None:
    """Sync the registered stores (PostgreSQL and procrastinate) until Ctrl-C; run several for more throughput."""
    dsn = ctx.postgres("worker")
    cron = _cron(parse_interval(tick, "--tick"))
    lease = timedelta(seconds=parse_interval(claim_lease, "--claim-lease"))
    from channel_core.http import DEFAULT_TIMEOUT, RetryPolicy

    attempts, timeout = RetryPolicy().max_attempts, http_timeout or DEFAULT_TIMEOUT
    longest = timeout * attempts + budget_wait
    if lease.total_seconds() < longest:
        raise Fail(
            f"--claim-lease {claim_lease} is shorter than the longest a notifier's write can be held up "
            f"({timeout:g} s HTTP timeout x {attempts} attempts + {budget_wait:g} s rate-budget wait = "
            f"{longest:g} s): another worker could take the order over and both would write. Use a longer "
            "--claim-lease, or lower --http-timeout and --budget-wait",
            EXIT_CONFIG,
        )
    kept = timedelta(seconds=parse_interval(keep, "--keep"))
    detail = timedelta(seconds=parse_interval(run_detail, "--run-detail"))
    give_up = parse_interval(give_up_after, "--give-up-after")
    import importlib.util

    if importlib.util.find_spec("procrastinate") is None:  # pragma: no cover - only without the extra
        raise Fail(f"`channel worker` needs procrastinate: {WORKER_EXTRA}", EXIT_CONFIG)
    from channel_core.fleet.engine import enqueue_due, make_app, prepare_database
    from channel_core.fleet.supervision import DatabaseUnavailable, run_worker, when_database_answers

    say: Callable[[str], None] = lambda line: out.print(line, markup=False)  # noqa: E731
    metrics = None
    if metrics_port is not None:
        from channel_core.fleet.metrics import WorkerMetrics

        metrics = WorkerMetrics()
        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            raise Fail(f"--metrics-port {metrics_port}: {exc.strerror or exc}", EXIT_CONFIG) from None
        say(f"worker: metrics at http://0.0.0.0:{metrics_port}/metrics")
    with errors():
        app = make_app(
            dsn,
            channels=ctx.channels,
            schedule=None if once else cron,
            stalled_after=stalled_after,
            claim_lease=lease,
            keep=kept,
            detail=detail,
            on_finished=_print_finished,
            http_timeout=http_timeout,
            budget_wait=budget_wait,
            metrics=metrics,
        )

    def start() -> list[str]:
        prepare_database(dsn)
        with app.open():
            return enqueue_due(app, dsn)

    from channel_core.fleet.supervision import database_problem

    problem = database_problem(dsn)
    if problem is not None:  # never reached: a wrong address is a configuration error, not an outage to wait out
        raise Fail(f"could not connect to PostgreSQL: {problem}", EXIT_CONFIG)
    try:
        with errors():
            queued = when_database_answers(start, dsn, give_up_after=give_up, say=say)
        out.print(f"worker: {len(queued)} store(s) queued; {concurrency} job(s) at once", markup=False)
        run_worker(
            app,
            dsn,
            give_up_after=give_up,
            say=say,
            abandon=_abandon,
            concurrency=concurrency,
            wait=not once,
            update_heartbeat_interval=max(0.5, min(10.0, stalled_after / 3)),
            stalled_worker_timeout=stalled_after,
            # a fleet of 100,000 stores at 15 minutes ends 9.6 million jobs a day: a succeeded one's row (and
            # its events) goes in the statement that finishes it, not in a table of hundreds of millions
            delete_jobs="never" if keep_succeeded_jobs else "successful",
        )
    except DatabaseUnavailable as exc:
        raise Fail(f"worker stopped: {exc}", EXIT_STOPPED) from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The page and the totals as one JSON document.")
@click.option("--failing", is_flag=True, help="Only stores whose last run stopped.")
@click.option("--parked", is_flag=True, help="Only parked stores.")
@click.option("--channel", "channel_name", default=None, help="Only this channel's stores.")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Stores per page.")
@click.option("--all", "everything", is_flag=True, help="Every store, streamed one JSON line each (with --format).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@pass_context
def status(
    ctx: Context,
    as_json: bool,
    failing: bool,
    parked: bool,
    channel_name: str | None,
    page: int,
    limit: int,
    everything: bool,
    fmt: str,
) -> None:
    """The fleet's totals and scheduling lag, then a page of stores, worst first (failing, parked, most
    overdue): last run, next run, orders, failures and notifications still to send, parking."""
    filters = {"failing": failing, "parked": parked, "channel": channel_name, "worst_first": True}
    if everything or fmt == "jsonl":
        with _registry(ctx, "status") as registry:
            offset = 0
            while True:  # a page at a time: memory stays flat at any size
                batch = registry.states(limit=1000, offset=offset, **filters)
                for state in batch:
                    click.echo(json.dumps(state.as_dict()))
                if len(batch) < 1000:
                    return
                offset += 1000
    with _registry(ctx, "status") as registry:
        totals = registry.summary(channel_name)
        states = registry.states(limit=limit, offset=(page - 1) * limit, **filters)
    if as_json:
        document = {"totals": totals, "page": page, "limit": limit, "stores": [state.as_dict() for state in states]}
        click.echo(json.dumps(document, indent=2))
        return
    first = (page - 1) * limit + 1
    out.print(
        f"{totals['stores']} stores: {totals['due']} due, {totals['parked']} parked, {totals['failing']} failing, "
        f"{totals['never_synced']} never synced; scheduling lag {totals['scheduling_lag_seconds']:g} s. "
        + (f"Stores {first}-{first + len(states) - 1}, worst first" if states else "No store on this page")
        + " (--page, --limit, --failing, --parked, --all --format jsonl).",
        markup=False,
    )
    columns = (
        Column("store", keep=9),
        Column("last run", keep=5),
        Column("result", keep=8, wrap=True),
        Column("next run", keep=6),
        Column("orders", keep=4),
        Column("failed", keep=3),
        Column("to notify", keep=2),
        Column("not sent", keep=1),
        Column("parked", keep=7, wrap=True),
    )
    cells = [
        (
            st.store.key,
            _when(st.last_run),
            (st.last_stopped or ("completed" if st.last_run else "-"))
            + (" (store clock unknown)" if st.store_time_unknown else ""),
            _when(st.store.next_run),
            str(st.orders),
            str(st.failed_orders),
            str(st.pending_notifications),
            str(st.failed_notifications),
            f"until {_when(st.store.parked_until)}: {st.store.parked_reason}" if st.store.parked_until else "-",
        )
        for st in states
    ]
    out.print(fitted_table("times in UTC", columns, cells, out.width))
    for st in states:
        if st.last_stopped and st.last_error:
            out.print(f"{st.store.key}: {st.last_stopped}: {st.last_error}", markup=False)
        if st.store_time_unknown:
            out.print(
                f"{st.store.key}: the store's replies carry no Date header, so its promise cannot move: each run "
                "reads from the same point again (nothing is missed; more is read)",
                markup=False,
            )
