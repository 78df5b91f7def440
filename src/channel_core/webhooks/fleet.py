"""The webhook receiver on the fleet: ``/webhooks/{channel}/{store}``, where ``store`` is the registry key.

A delivery is verified with the store's resolved settings, refused (403) when its account is not the
account the store is pinned to, recorded once in PostgreSQL (``webhook_events``: metadata, never bodies),
and turns into one queued ``sync_webhook_orders`` job per store (a job already waiting takes the new
events too), which runs under the store's lock, fence and budget on the workers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from channel_core.errors import ChannelError, WebhookRejected
from channel_core.fleet.credentials import CredentialResolver, DefaultCredentials, store_settings
from channel_core.fleet.engine import enqueue_webhook_sync
from channel_core.fleet.registry import StoreRegistry
from channel_core.logs import get_logger
from channel_core.registry import Channels
from channel_core.sync.postgres import PostgresStore
from channel_core.webhooks.receiver import DEFAULT_MAX_BODY, Delivery, Target, make_receiver

__all__ = ["fleet_receiver"]

logger = get_logger(__name__)


def fleet_receiver(
    dsn: str,
    app: Any,
    *,
    schema: str = "public",
    credentials: CredentialResolver | None = None,
    channels: Channels | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> Starlette:
    """The receiver for registered stores; ``app`` is :func:`~channel_core.fleet.engine.make_app`'s."""
    resolver = credentials or DefaultCredentials()
    found_channels = channels or Channels.discover()
    local = threading.local()

    def db() -> PostgresStore:
        store: PostgresStore | None = getattr(local, "db", None)
        if store is None:
            store = local.db = PostgresStore(dsn, schema=schema)
        return store

    def resolve(channel_name: str, store_key: str | None) -> Target | None:
        if store_key is None or channel_name not in found_channels:
            return None
        store = StoreRegistry(db()).get(store_key)
        if store is None or store.channel != channel_name:
            return None
        channel = found_channels[channel_name]
        try:
            settings = store_settings(store, channel.info(), resolver)
        except ChannelError as exc:
            logger.error("webhook_store_unresolved", store=store_key, error=str(exc))
            return None
        return Target(channel, store.key, settings)

    def accept(delivery: Delivery) -> bool:
        store = StoreRegistry(db()).get(delivery.store)
        if store is not None and store.account_id and store.account_id != delivery.event.account_id:
            raise WebhookRejected("the delivery is for another account than the store's", status=403)
        fresh = db().record_webhook_event(delivery.channel, delivery.store, delivery.event, delivery.received_at)
        if fresh:
            enqueue_webhook_sync(app, delivery.store)
        return fresh

    receiver = make_receiver(resolve, accept, max_body=max_body)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        with app.open():
            yield

    receiver.router.lifespan_context = lifespan
    return receiver
