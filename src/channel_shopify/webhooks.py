"""Verifying Shopify webhook deliveries and reading what they are about.

``X-Shopify-Hmac-Sha256`` is base64(HMAC-SHA256(the app's client secret, the raw body)) and is compared
in constant time before anything of the body is read (shopify.dev "verify deliveries"; ``shopify-api.md``
§6). The key is ``webhook_secret`` when set, else ``client_secret``. A delivery for another shop than
the store's is refused (403). The event id (``X-Shopify-Event-Id``, else ``X-Shopify-Webhook-Id``) is what
the receiver deduplicates on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from channel_core.errors import ChannelAPIError, ConfigurationError, WebhookRejected
from channel_core.hooktypes import WebhookEvent, WebhookSubscription
from channel_shopify.settings import parse_settings

if TYPE_CHECKING:
    from channel_shopify.connection import ShopifyConnection

__all__ = ["TOPICS", "parse_webhook", "signature", "subscriptions", "topic_enum", "topic_name"]

TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "fulfillments/create",
    "fulfillments/update",
    "fulfillment_orders/placed_on_hold",
    "fulfillment_orders/hold_released",
    "fulfillment_orders/moved",
)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value of ``body`` signed with ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _number(value: Any, kind: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        tail = value.rsplit("/", 1)[-1]
        if tail.isdigit() and (value.isdigit() or value.startswith(f"gid://shopify/{kind}/")):
            return tail
    return None


def parse_webhook(settings: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    parsed = parse_settings(settings)
    key = parsed.webhook_secret or parsed.client_secret
    if key is None:
        raise ConfigurationError(
            "shopify webhooks need the app's client secret: set client_secret, or webhook_secret "
            "(SHOPIFY_WEBHOOK_SECRET) when the store connects with an access_token"
        )
    given = headers.get("x-shopify-hmac-sha256", "")
    expected = signature(key.reveal(), body)
    if not given or not hmac.compare_digest(expected.encode(), given.strip().encode("ascii", "replace")):
        raise WebhookRejected("the delivery's signature does not verify", status=401)
    domain = headers.get("x-shopify-shop-domain", "").strip().lower()
    if domain != parsed.shop:
        raise WebhookRejected(f"the delivery is for {domain or 'no shop'}, not this store's shop", status=403)
    topic = headers.get("x-shopify-topic", "").strip()
    event_id = (headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id") or "").strip()
    if not topic or not event_id:
        raise WebhookRejected("the delivery names no topic or event id", status=400)
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected("the delivery's body is not JSON", status=400) from None
    if not isinstance(data, dict):
        raise WebhookRejected("the delivery's body is not a JSON object", status=400)
    orders: list[str] = []
    lookups: list[str] = []
    if topic.startswith("orders/"):
        number = _number(data.get("id"), "Order") or _number(data.get("admin_graphql_api_id"), "Order")
        if number:
            orders.append(number)
    elif topic.startswith(("fulfillments/", "refunds/")):
        number = _number(data.get("order_id"), "Order")
        if number:
            orders.append(number)
    elif topic.startswith("fulfillment_orders/"):
        for name in ("fulfillment_order", "original_fulfillment_order", "moved_fulfillment_order"):
            held = data.get(name)
            if isinstance(held, dict):
                number = _number(held.get("id"), "FulfillmentOrder")
                if number:
                    lookups.append(f"fulfillment_order:{number}")
    triggered = None
    raw = headers.get("x-shopify-triggered-at")
    if raw:
        try:
            triggered = datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            triggered = None
    return WebhookEvent(
        event_id=event_id,
        topic=topic,
        account_id=parsed.shop,
        order_ids=tuple(dict.fromkeys(orders)),
        lookups=tuple(dict.fromkeys(lookups)),
        triggered_at=triggered,
    )


def topic_enum(topic: str) -> str:
    """``orders/updated`` -> ``ORDERS_UPDATED`` (WebhookSubscriptionTopic)."""
    return topic.replace("/", "_").upper()


def topic_name(value: str) -> str:
    """``ORDERS_UPDATED`` -> ``orders/updated``."""
    for topic in TOPICS:
        if topic_enum(topic) == value:
            return topic
    return value.lower()


def subscriptions(connection: ShopifyConnection, url: str | None) -> tuple[WebhookSubscription, ...]:
    """The shop's subscriptions; with ``url``, the missing ones for :data:`TOPICS` created first."""
    from channel_shopify import documents as docs

    def listed() -> list[WebhookSubscription]:
        found: list[WebhookSubscription] = []
        after = None
        while True:
            reply = connection.client.execute(
                "ChannelWebhooks", docs.WEBHOOKS, {"first": 50, "after": after}, cost=docs.webhooks_cost(50)
            )
            page = reply.data.get("webhookSubscriptions") or {}
            for node in page.get("nodes") or []:
                found.append(WebhookSubscription(topic_name(str(node["topic"])), str(node["uri"]), str(node["id"])))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return found
            after = info.get("endCursor")

    current = listed()
    if url is None:
        return tuple(current)
    have = {(s.topic, s.url) for s in current}
    for topic in TOPICS:
        if (topic, url) in have:
            continue
        reply = connection.client.execute(
            "ChannelWebhookCreate",
            docs.WEBHOOK_CREATE,
            {"topic": topic_enum(topic), "uri": url},
            cost=docs.WEBHOOK_CREATE_COST,
            write=True,
        )
        payload = reply.data.get("webhookSubscriptionCreate") or {}
        errors = payload.get("userErrors") or []
        if errors or not payload.get("webhookSubscription"):
            words = "; ".join(str(e.get("message")) for e in errors) or "no subscription returned"
            raise ChannelAPIError(f"Shopify refused the {topic} subscription: {words}", channel="shopify")
    return tuple(listed())
