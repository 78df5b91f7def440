"""The Oxatis channel's hook implementations: thin glue over client, mapping, orders and shipments."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

from channel_core import hookimpl
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
)
from channel_core.http import RetryPolicy
from channel_core.logs import get_logger
from channel_core.lookups import LookupCache, lookup_key
from channel_core.models import NotificationResult, OrderStatus, Shipment
from channel_core.status import StatusMapping
from channel_oxatis import __version__
from channel_oxatis.client import OxatisClient
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import DEFAULT_STATUS_MAPPING
from channel_oxatis.orders import iter_order_pages
from channel_oxatis.settings import SETTING_SPECS, parse_settings
from channel_oxatis.shipments import FIELD_LIMITS, FIELDS_NOT_SENT, FIELDS_SENT, notify

logger = get_logger(__name__)
# The store's account and progress states, per base URL and credentials, for ``lookup_ttl`` seconds (an hour):
# a worker's syncs of a store (every 15 minutes by default) ask once an hour, not twice per sync. An order in a
# state the kept list lacks asks for the list again (connection.ProgressStates).
_LOOKUPS = LookupCache()

IMPORT_FEATURES = (
    "customer_email",
    "customer_phone",
    "requested_shipping_service",
    "payment_method",
    "discounts_and_coupons",
    "gift_flag_and_message",
    "internal_notes",
    "customer_notes",
    "total_weight",
    "item_weight",
    "item_image_url",
    "item_options",
    "item_stock_location",
    "pickup_point_colissimo",
    "pickup_point_mondial_relay",
    "pickup_point_tnt",
)


def _connection(connection: Connection) -> OxatisConnection:
    if not isinstance(connection, OxatisConnection):
        raise PluginError(f"oxatis hooks need an OxatisConnection, got {type(connection).__name__}", plugin="oxatis")
    return connection


@hookimpl
def channel_info() -> ChannelInfo:
    return ChannelInfo(
        name="oxatis",
        display_name="Oxatis",
        version=__version__,
        settings=SETTING_SPECS,
        capabilities=Capabilities(
            import_features=IMPORT_FEATURES,
            notification_fields=FIELDS_SENT,
            notification_fields_not_sent=FIELDS_NOT_SENT,
            notification_limits=FIELD_LIMITS,
        ),
        default_status_mapping=DEFAULT_STATUS_MAPPING,
        description="Oxatis e-commerce stores through the Oxatis Web Services (token connection).",
    )


@hookimpl
def connect(settings: Mapping[str, Any]) -> Connection:
    parsed = parse_settings(settings)
    overrides = dict(parsed.status_mapping)
    shipped_extra = overrides.get(OrderStatus.SHIPPED.value, [])
    shipped_list = [shipped_extra] if isinstance(shipped_extra, str) else list(shipped_extra)
    overrides[OrderStatus.SHIPPED.value] = [parsed.shipped_code, *shipped_list]
    mapping = StatusMapping.merged(DEFAULT_STATUS_MAPPING, overrides)
    policy = RetryPolicy(
        max_attempts=parsed.retry_attempts, backoff_initial=parsed.retry_backoff, jitter=parsed.retry_backoff
    )
    client = OxatisClient(parsed, retry_policy=policy)
    key = lookup_key(parsed.base_url, parsed.token.reveal(), parsed.app_id.reveal() if parsed.app_id else None)
    try:
        states = _LOOKUPS.get(key, "progress_states", parsed.lookup_ttl, client.progress_states)
        store_account = _LOOKUPS.get(key, "account", parsed.lookup_ttl, client.account_id)
    except AuthenticationError as exc:
        _LOOKUPS.forget(key)
        client.close()
        app_id = "with the AppId given" if parsed.app_id is not None else "without an AppId"
        raise AuthenticationError(
            f"Oxatis refused the connection {app_id} (StatusCode 503). Either the token is wrong or lacks rights: "
            "check it in Oxatis back office > Access rights management (the user needs 'Use Web Services' and "
            "rights on sales orders); or the store requires an integrator AppId: set app_id (OXATIS_APP_ID) to the "
            "AppId Oxatis issued to you under its ISV contract (see docs/oxatis.md).",
            channel="oxatis",
            operation=exc.operation,
            status_code=exc.status_code,
        ) from None
    except BaseException:
        client.close()
        raise
    codes = sorted({s["Code"] for s in states if s.get("Code")})
    if parsed.shipped_code not in codes:
        _LOOKUPS.forget(key)  # the merchant may be adding it now: ask again next time
        client.close()
        raise ConfigurationError(
            f"the store has no progress state with code {parsed.shipped_code!r}, which the Shipped status must "
            f"map to; create it in Oxatis or set shipped_code to one of: {', '.join(codes) or 'none'}"
        )
    derived = {"paid", "unpaid", "cancelled", parsed.shipped_code}  # codes derived from payment and Shipped
    unknown = sorted(mapping.codes() - set(codes) - derived)
    if unknown:
        logger.warning("status_mapping_codes_not_in_store", channel="oxatis", codes=unknown, store_codes=codes)
    context = contextvars.copy_context()  # the job's, with what its host keeps of the store's lookups
    return OxatisConnection(
        settings=parsed,
        client=client,
        states=states,
        status_mapping=mapping,
        store_account=store_account,
        refresh=client.progress_states,  # a state id the kept list lacks: asked again, once per connection
        on_refresh=lambda fresh: _keep_refreshed(context, key, fresh) if parsed.lookup_ttl > 0 else None,
    )


def _keep_refreshed(context: contextvars.Context, key: str, states: list[dict[str, Any]]) -> None:
    """Keep a list asked for again mid-run, in the connecting job's context: a fetch thread does not carry it,
    and the host's kept lookups (:func:`channel_core.lookups.keep_lookups`) live there. Called once per
    connection, so the context is never entered twice at once."""
    context.run(_LOOKUPS.put, key, "progress_states", states)


@hookimpl
def channel_sandbox() -> ChannelSandbox:
    return ChannelSandbox(
        make=_make_sandbox,
        description="an Oxatis store on loopback speaking the HTTP form interface (channel_oxatis.sandbox)",
        demo_settings={
            "stock_location_characteristic": "Emplacement",
            "requests_per_second": 200,
            "status_mapping": {"awaiting_shipment": ["PRECOMMANDE"]},
        },
    )


def _make_sandbox(options: SandboxOptions) -> RunningSandbox:
    from channel_oxatis.sandbox.handle import make_sandbox  # the sandbox loads only when asked for

    return make_sandbox(options)


@hookimpl
def fetch_orders(connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:
    return iter_order_pages(_connection(connection), query)


@hookimpl
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    return connection.status_mapping.status_for(channel_status)


@hookimpl
def notify_shipment(connection: Connection, shipment: Shipment) -> NotificationResult:
    return notify(_connection(connection), shipment)
