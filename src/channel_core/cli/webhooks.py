"""``channel webhooks serve``: the webhook receiver on one SQLite database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from channel_core.cli.context import EXIT_CONFIG, Context, Fail, errors, out, pass_context
from channel_core.errors import ChannelError
from channel_core.hooktypes import Connection
from channel_core.registry import Channel


@click.group()
def webhooks() -> None:
    """Receive store webhooks and sync the orders they name (polling stays the source of truth)."""


@webhooks.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8780, show_default=True)
@click.option("--max-body", type=click.IntRange(1), default=1 << 20, show_default=True, help="Largest body, bytes.")
@pass_context
def serve(ctx: Context, host: str, port: int, max_body: int) -> None:
    """Serve POST /webhooks/CHANNEL for every configured channel (on SQLite), or POST
    /webhooks/CHANNEL/STORE for the registered stores (on PostgreSQL, where workers apply the events)."""
    try:
        import uvicorn
    except ImportError:
        raise Fail(
            "webhooks need the webhooks extra: pip install 'channel-integrations[webhooks]'", EXIT_CONFIG
        ) from None
    from channel_core.webhooks.local import LocalWebhooks
    from channel_core.webhooks.receiver import Target, make_receiver

    target = ctx.database()
    if target.startswith(("postgresql://", "postgres://")):
        from channel_core.fleet.engine import make_app, prepare_database
        from channel_core.webhooks.fleet import fleet_receiver

        prepare_database(target)
        fleet = fleet_receiver(target, make_app(target, schedule=None), channels=ctx.channels, max_body=max_body)
        out.print(f"receiving webhooks at http://{host}:{port}/webhooks/CHANNEL/STORE; `channel worker` applies them")
        uvicorn.run(fleet, host=host, port=port, log_level="warning")
        return

    configured: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in ctx.channels.names():
        channel = ctx.channels[name]
        try:
            settings = ctx.settings(channel, ())
        except (Fail, ChannelError):
            continue  # not configured here: its deliveries get 404
        configured[name] = (channel, settings)
    if not configured:
        raise Fail("no channel is configured (settings in the config file or the environment)", EXIT_CONFIG)
    local = LocalWebhooks(target, configured).start()

    def resolve(channel: str, store: str | None) -> Target | None:
        if store is not None or channel not in configured:
            return None
        found, settings = configured[channel]
        return Target(found, channel, settings)

    app = make_receiver(resolve, local.accept, max_body=max_body)
    out.print(f"receiving webhooks at http://{host}:{port}/webhooks/CHANNEL for {', '.join(configured)}; Ctrl-C stops")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        local.stop()


@webhooks.command("subscribe")
@click.argument("store", metavar="STORE")
@click.option("--url", "base", required=True, help="The receiver's public base URL (the command adds the path).")
@pass_context
def subscribe(ctx: Context, store: str, base: str) -> None:
    """Subscribe STORE's webhooks to this receiver (safe to repeat: only missing ones are created).

    STORE is the channel's name on a SQLite database (``/webhooks/CHANNEL``), the registry key on PostgreSQL
    (``/webhooks/CHANNEL/STORE``).
    """
    if not base.startswith(("http://", "https://")):
        raise Fail(f"--url must be an http(s) URL, got {base!r}", EXIT_CONFIG)
    with _connected(ctx, store) as (channel, connection, path):
        with errors():
            found = channel.webhook_subscriptions(connection, f"{base.rstrip('/')}/webhooks/{path}")
    _print_subscriptions(found)


@webhooks.command("list")
@click.argument("store", metavar="STORE")
@pass_context
def list_subscriptions(ctx: Context, store: str) -> None:
    """STORE's webhook subscriptions (STORE as for ``subscribe``)."""
    with _connected(ctx, store) as (channel, connection, _), errors():
        found = channel.webhook_subscriptions(connection)
    _print_subscriptions(found)


@contextlib.contextmanager
def _connected(ctx: Context, store: str) -> Iterator[tuple[Channel, Connection, str]]:
    """The store connected, and its receiver path (``CHANNEL`` or ``CHANNEL/STORE``)."""
    target = ctx.database()
    if target.startswith(("postgresql://", "postgres://")):
        from channel_core.fleet.engine import connected_store

        with errors(), connected_store(target, store, channels=ctx.channels) as (channel, connection, _db):
            yield channel, connection, f"{channel.name}/{store}"
        return
    channel, connection = ctx.connect(store, ())
    with connection:
        yield channel, connection, channel.name


def _print_subscriptions(found: Any) -> None:
    if not found:
        out.print("no webhook subscriptions")
        return
    for subscription in found:
        out.print(f"{subscription.topic:40} {subscription.url}", markup=False)
