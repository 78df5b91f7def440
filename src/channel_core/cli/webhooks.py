"""``channel webhooks serve``: the webhook receiver on one SQLite database."""

from __future__ import annotations

from typing import Any

import click

from channel_core.cli.context import EXIT_CONFIG, Context, Fail, out, pass_context
from channel_core.errors import ChannelError


@click.group()
def webhooks() -> None:
    """Receive store webhooks and sync the orders they name (polling stays the source of truth)."""


@webhooks.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8780, show_default=True)
@click.option("--max-body", type=click.IntRange(1), default=1 << 20, show_default=True, help="Largest body, bytes.")
@pass_context
def serve(ctx: Context, host: str, port: int, max_body: int) -> None:
    """Serve POST /webhooks/CHANNEL for every configured channel that verifies webhooks, until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise Fail(
            "webhooks need the webhooks extra: pip install 'channel-integrations[webhooks]'", EXIT_CONFIG
        ) from None
    from channel_core.webhooks.local import LocalWebhooks
    from channel_core.webhooks.receiver import Target, make_receiver

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
    path = ctx.database()
    if path.startswith(("postgresql://", "postgres://")):
        raise Fail("`channel webhooks serve` runs on a SQLite database; the fleet is not served yet", EXIT_CONFIG)
    local = LocalWebhooks(path, configured).start()

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
