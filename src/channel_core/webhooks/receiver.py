"""The webhook receiver: an ASGI application routing ``POST /webhooks/{channel}[/{store}]``.

It answers within a store's deadline because it never syncs inline: a verified delivery's event is handed
to ``accept`` (which records it once and queues the work) and the reply is 200, also for a replay.

========  ==============================================================================
Status    When
========  ==============================================================================
200       accepted, or the same event again (nothing more is done)
400       verified, but the body is not what the channel's topics send
401       the signature is missing or does not verify (nothing of the body is read)
403       the delivery is for another account than the store's
404       no such channel or store, or the channel has no webhooks
405       another method than POST
413       the body is larger than ``max_body`` (chunked bodies counted as they arrive)
503       the store's settings cannot verify deliveries (a configuration error, logged)
========  ==============================================================================

Bodies are never logged or stored; secrets never leave the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from channel_core.errors import ChannelError, ConfigurationError, WebhookRejected
from channel_core.hooktypes import WebhookEvent
from channel_core.logs import get_logger
from channel_core.registry import Channel

__all__ = ["DEFAULT_MAX_BODY", "Delivery", "Target", "make_receiver"]

logger = get_logger(__name__)
DEFAULT_MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Target:
    """Where a delivery goes: the channel, the store's key and the settings that verify it."""

    channel: Channel
    store: str
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified event, for ``accept``."""

    channel: str
    store: str
    event: WebhookEvent
    received_at: datetime


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _TooLarge
        except ValueError:
            raise _TooLarge from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def make_receiver(
    resolve: Callable[[str, str | None], Target | None],
    accept: Callable[[Delivery], bool],
    *,
    max_body: int = DEFAULT_MAX_BODY,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The receiver.

    :param resolve: ``(channel, store or None) -> Target``; ``None`` for an unknown channel or store.
    :param accept: records the event once and queues its work, quickly (no store call); returns ``False``
        for an event already recorded. It runs in a worker thread.
    :param max_body: the largest body accepted, in bytes.
    """
    from starlette.concurrency import run_in_threadpool

    async def receive(request: Request) -> Response:
        channel_name = request.path_params["channel"]
        store = request.path_params.get("store")
        target = await run_in_threadpool(resolve, channel_name, store)
        if target is None:
            return PlainTextResponse("no such channel or store", status_code=404)
        try:
            body = await _read_body(request, max_body)
        except _TooLarge:
            return PlainTextResponse(f"body larger than {max_body} bytes", status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = target.channel.parse_webhook(target.settings, headers, body)
        except WebhookRejected as exc:
            logger.warning("webhook_rejected", channel=channel_name, store=target.store, status=exc.status)
            return PlainTextResponse(str(exc), status_code=exc.status)
        except ConfigurationError as exc:
            logger.error("webhook_unverifiable", channel=channel_name, store=target.store, error=str(exc))
            return PlainTextResponse("this store cannot verify deliveries", status_code=503)
        except ChannelError as exc:
            logger.warning("webhook_refused", channel=channel_name, store=target.store, error=type(exc).__name__)
            return PlainTextResponse("refused", status_code=400)
        if event is None:
            return PlainTextResponse("this channel has no webhooks", status_code=404)
        delivery = Delivery(channel_name, target.store, event, clock())
        try:
            fresh = await run_in_threadpool(accept, delivery)
        except WebhookRejected as exc:  # the host's own check (the store's pinned account)
            logger.warning("webhook_rejected", channel=channel_name, store=target.store, status=exc.status)
            return PlainTextResponse(str(exc), status_code=exc.status)
        logger.info(
            "webhook_received",
            channel=channel_name,
            store=target.store,
            topic=event.topic,
            event_id=event.event_id,
            orders=len(event.order_ids) + len(event.lookups),
            replay=not fresh,
        )
        return PlainTextResponse("ok" if fresh else "already received")

    routes = [
        Route("/webhooks/{channel}", receive, methods=["POST"]),
        Route("/webhooks/{channel}/{store}", receive, methods=["POST"]),
    ]
    return Starlette(routes=routes)
