"""The Shopify channel's hook implementations: thin glue over settings, client, orders and shipments."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from channel_core import hookimpl
from channel_core.credentials import current_keeper
from channel_core.errors import AuthenticationError, ConfigurationError, PluginError
from channel_core.hooktypes import (
    Capabilities,
    ChannelInfo,
    ChannelSandbox,
    Connection,
    OrderPage,
    OrderQuery,
    RunningSandbox,
    SandboxOptions,
    WebhookEvent,
    WebhookSubscription,
)
from channel_core.lookups import LookupCache, lookup_key
from channel_core.models import NotificationResult, OrderStatus, Shipment
from channel_core.status import StatusMapping
from channel_shopify import __version__
from channel_shopify import documents as docs
from channel_shopify.client import FIRST_GUESS, ShopifyClient
from channel_shopify.connection import ShopifyConnection
from channel_shopify.mapping import DEFAULT_STATUS_MAPPING
from channel_shopify.orders import iter_order_pages
from channel_shopify.settings import DEFAULT_API_VERSION, SETTING_SPECS, ShopifySettings, parse_settings
from channel_shopify.shipments import FIELDS_NOT_SENT, FIELDS_SENT, notify
from channel_shopify.webhooks import parse_webhook as verify_and_read
from channel_shopify.webhooks import subscriptions

IMPORT_FEATURES = (
    "customer_email",
    "customer_phone",
    "requested_shipping_service",
    "payment_method",
    "discounts_and_coupons",
    "customer_notes",
    "tags",
    "total_weight",
    "item_weight",
    "item_image_url",
    "item_options",
    "item_requires_shipping",
    "fulfillment_groups",
    "pickup_point",
    "local_pickup",
)
# The shop and the app's access scopes, per shop and credentials, for ``lookup_ttl`` seconds (an hour) when the
# token is static: a worker's syncs of an unchanged shop make their listing call only, not the shop query too.
# Kept by the fleet on the store's row (channel_core.lookups.keep_lookups), so any worker's job finds them.
_LOOKUPS = LookupCache()

READ_SCOPES = ("read_orders",)
WRITE_SCOPES = (
    "write_assigned_fulfillment_orders",
    "write_merchant_managed_fulfillment_orders",
    "write_third_party_fulfillment_orders",
)


def _connection(connection: Connection) -> ShopifyConnection:
    if not isinstance(connection, ShopifyConnection):
        raise PluginError(f"shopify hooks need a ShopifyConnection, got {type(connection).__name__}", plugin="shopify")
    return connection


@hookimpl
def channel_info() -> ChannelInfo:
    return ChannelInfo(
        name="shopify",
        display_name="Shopify",
        version=__version__,
        settings=SETTING_SPECS,
        capabilities=Capabilities(
            import_features=IMPORT_FEATURES,
            notification_fields=FIELDS_SENT,
            notification_fields_not_sent=FIELDS_NOT_SENT,
            partial_shipments=True,
            multiple_packages=True,
            notify_buyer=True,
            cost_budget=FIRST_GUESS,
        ),
        default_status_mapping=DEFAULT_STATUS_MAPPING,
        description=f"Shopify shops through the Admin GraphQL API (version {DEFAULT_API_VERSION} by default).",
    )


@hookimpl
def connect(settings: Mapping[str, Any]) -> Connection:
    parsed = parse_settings(settings)
    mapping = StatusMapping.merged(DEFAULT_STATUS_MAPPING, parsed.status_mapping)
    client = ShopifyClient(parsed, tokens_keeper=current_keeper())
    key = lookup_key(parsed.base_url, parsed.shop, *_credentials(parsed))
    try:
        # kept only for a static token: with a grant, connect's call is what exchanges or rotates the token,
        # and a dead refresh token must fail here, before the keeper would save anything
        ttl = parsed.lookup_ttl if parsed.grant == "static" else 0.0
        found = _LOOKUPS.get(key, "shop", ttl, lambda: _ask_shop(client))
        shop, scopes = found["shop"], tuple(found["scopes"])
        if not isinstance(shop, dict) or not shop.get("myshopifyDomain"):
            raise ConfigurationError(f"the reply of {parsed.base_url} names no shop: is base_url a Shopify shop?")
        domain = str(shop["myshopifyDomain"]).lower()
        if domain != parsed.shop:
            raise ConfigurationError(
                f"the credentials open {domain}, not the shop configured ({parsed.shop}); fix shop or the credentials"
            )
        missing = [s for s in READ_SCOPES if s not in scopes]
        if not any(s in scopes for s in WRITE_SCOPES):
            missing.append(" or ".join(WRITE_SCOPES))
        if missing:
            raise AuthenticationError(
                f"the app lacks the access scope(s) {', '.join(missing)} on {domain} (granted: "
                f"{', '.join(scopes) or 'none'}); add them to the app's configuration and reinstall it",
                channel="shopify",
                operation="ChannelShop",
            )
    except BaseException:
        _LOOKUPS.forget(key)  # refused, or not the shop meant: ask again next time
        client.close()
        raise
    return ShopifyConnection(settings=parsed, client=client, shop=shop, scopes=scopes, status_mapping=mapping)


def _credentials(parsed: ShopifySettings) -> tuple[str | None, ...]:
    """What identifies the credentials, revealed only to be digested into the lookup key."""
    secrets = (parsed.access_token, parsed.client_secret, parsed.refresh_token)
    return (parsed.grant, parsed.client_id, *(s.reveal() if s is not None else None for s in secrets))


def _ask_shop(client: ShopifyClient) -> dict[str, Any]:
    """The shop and the installation's scope handles, as plain JSON data (what may be kept)."""
    reply = client.execute("ChannelShop", docs.SHOP, {}, cost=docs.SHOP_COST)
    installation = reply.data.get("currentAppInstallation") or {}
    scopes = [str(s.get("handle")) for s in installation.get("accessScopes") or [] if isinstance(s, dict)]
    return {"shop": reply.data.get("shop"), "scopes": scopes}


@hookimpl
def channel_sandbox() -> ChannelSandbox:
    return ChannelSandbox(
        make=_make_sandbox,
        description="Shopify shops on loopback executing the Admin GraphQL API (channel_shopify.sandbox)",
        demo_options={"bucket_size": "20000", "restore_rate": "1000"},  # a Shopify Plus shop's bucket
    )


def _make_sandbox(options: SandboxOptions) -> RunningSandbox:
    from channel_shopify.sandbox.handle import make_sandbox  # the sandbox loads only when asked for

    return make_sandbox(options)


@hookimpl
def fetch_orders(connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:
    return iter_order_pages(_connection(connection), query)


@hookimpl
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    return connection.status_mapping.status_for(channel_status)


@hookimpl
def parse_webhook(settings: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    return verify_and_read(settings, headers, body)


@hookimpl
def webhook_subscriptions(connection: Connection, url: str | None) -> tuple[WebhookSubscription, ...]:
    return subscriptions(_connection(connection), url)


@hookimpl
def notify_shipment(connection: Connection, shipment: Shipment) -> NotificationResult:
    return notify(_connection(connection), shipment)
