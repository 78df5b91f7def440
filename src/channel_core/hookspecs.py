"""Hook specifications every channel plugin implements.

Each installed channel gets its own :class:`pluggy.PluginManager` (see
:mod:`channel_core.registry`), so every hook below has exactly one channel
implementation and needs no "is this call mine?" guard. Cross-channel
extensions (audit, metrics, merchant overrides) are registered on every
manager and may wrap or pre-empt a hook with ``tryfirst``/``wrapper``; a
``firstresult`` hook stops at the first implementation that returns non-``None``.

Hosts never call these directly: :class:`channel_core.registry.Channel` is the
typed facade and the only caller of ``pm.hook``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from channel_core.hooktypes import (
        ChannelInfo,
        ChannelSandbox,
        Connection,
        OrderPage,
        OrderQuery,
        WebhookEvent,
        WebhookSubscription,
    )
    from channel_core.models import NotificationResult, OrderStatus, Shipment

PROJECT_NAME = "channel_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]


@hookspec(firstresult=True)
def channel_info() -> ChannelInfo:  # type: ignore[empty-body]
    """Describe the channel: its settings, capabilities and default status mapping.

    :returns: A :class:`~channel_core.hooktypes.ChannelInfo`. ``settings`` lists
        every setting ``connect`` accepts (with ``secret=True`` on credentials);
        ``capabilities.notification_fields`` lists exactly the
        :class:`~channel_core.models.Shipment` fields ``notify_shipment`` sends.

    Must not do I/O. The host shows this in ``channel list`` and uses the
    settings to read configuration files and environment variables.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def connect(settings: Mapping[str, Any]) -> Connection:  # type: ignore[empty-body]
    """Validate ``settings``, prove the credentials and return a connected store.

    :param settings: Raw settings as the host read them (config file, flags,
        environment). Credentials may be plain strings or
        :class:`~channel_core.secret.Secret`; the plugin wraps them in ``Secret``.

    :returns: A :class:`~channel_core.hooktypes.Connection` (usually a subclass)
        holding the API client and the merged status mapping. The host passes it
        back unchanged to the other hooks and closes it when done.

    :raises channel_core.errors.ConfigurationError: A setting is missing or
        invalid, or the status mapping does not fit the store; the message names
        the setting and what the store offers.
    :raises channel_core.errors.AuthenticationError: The store rejected the credentials.
    :raises channel_core.errors.ChannelAPIError: Any other API failure.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def fetch_orders(connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:  # type: ignore[empty-body]
    """Stream the orders modified in ``query``'s window, page by page.

    :param connection: What ``connect`` returned.
    :param query: The modification window (``modified_until=None``: open-ended),
        the promise of the host's last completed run (``complete_until``), the
        host's known versions, a ``resume`` checkpoint and failed ids to retry.
        An unchanged version may save the detail call only for orders modified
        before ``complete_until``; such orders are listed as ``unchanged``.

    :returns: An iterator of :class:`~channel_core.hooktypes.OrderPage`. The
        iteration is lazy: each page is fetched when the host asks for it, so the
        host stores a page and then commits its ``checkpoint`` before the next
        request. An order that cannot be imported (no ship-to address, invalid
        data) is a :class:`~channel_core.models.SkippedOrder` with its reason; an
        order whose fetch, decoding or mapping failed is a
        :class:`~channel_core.hooktypes.FailedOrder`. Neither stops the run. The
        last page of a consistent read carries ``complete_until``: an instant of
        the store's clock before which every modified order was listed.

    :raises channel_core.errors.QuotaExhaustedError: While iterating, when the
        account's quota is spent; the host stops cleanly and resumes next run.
    :raises channel_core.errors.InconsistentReadError: While iterating, when the
        listing changed in a way the channel cannot settle; the host reads the
        window again from its first page next run.
    :raises channel_core.errors.ChannelAPIError: While iterating, when a listing
        call fails after retries.

    Implementations must *return* an iterator (not be a generator function
    themselves), so that argument errors surface at call time.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    """Translate a channel status code into a canonical :class:`~channel_core.models.OrderStatus`.

    :param connection: What ``connect`` returned; it holds the merged mapping.
    :param channel_status: The channel's code (an Oxatis progress-state mnemonic, say).

    :returns: The canonical status, or ``None`` when the code is not mapped. The
        facade counts unmapped codes on the connection and logs them; it never guesses.

    An extension may register a ``tryfirst`` implementation to override a few
    codes for one merchant and return ``None`` for the rest.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def notify_shipment(connection: Connection, shipment: Shipment) -> NotificationResult:  # type: ignore[empty-body]
    """Tell the store that an order shipped.

    :param connection: What ``connect`` returned.
    :param shipment: Tracking number, carrier and the other shipment details.

    :returns: A :class:`~channel_core.models.NotificationResult`: ``sent`` with
        ``fields_sent`` naming the shipment fields transmitted (a subset of
        ``capabilities.notification_fields``), ``already_sent`` when the store
        already shows this shipment (a repeat must not create a second state
        entry), or ``failed`` with a message when the store refused it.

    :raises channel_core.errors.ChannelAPIError: When the outcome is unknown
        (a timeout after the request was sent): the host keeps the shipment
        pending and asks again later; the plugin's read-before-write makes that safe.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def channel_sandbox() -> ChannelSandbox | None:
    """Describe a local stand-in store for this channel (optional).

    :returns: A :class:`~channel_core.hooktypes.ChannelSandbox` whose ``make``
        builds a store from :class:`~channel_core.hooktypes.SandboxOptions`, or
        ``None`` (the default, for a channel that ships none). ``channel sandbox
        CHANNEL`` serves it; ``channel demo CHANNEL`` connects to it, imports and
        ships one order. Import the sandbox's code inside ``make``, not at module
        level, so that loading the channel stays cheap.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def parse_webhook(settings: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> WebhookEvent | None:
    """Verify a webhook delivery and say what it is about (optional).

    :param settings: the store's settings, secrets included (the key that signs deliveries).
    :param headers: the request's headers, names in lower case.
    :param body: the raw body, exactly as received: the signature covers these bytes.

    :returns: A :class:`~channel_core.hooktypes.WebhookEvent`, or ``None`` (the default, for a channel
        without webhooks).

    :raises channel_core.errors.WebhookRejected: the signature is missing or does not verify. Verify it
        in constant time before parsing anything; never log the body. Must not do I/O.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def webhook_subscriptions(connection: Connection, url: str | None) -> tuple[WebhookSubscription, ...] | None:
    """List the store's webhook subscriptions, or make sure they deliver to ``url`` (optional).

    :param connection: What ``connect`` returned.
    :param url: ``None`` to list; else the receiver's full URL for this store: subscribe every topic the
        channel needs to it, creating only the subscriptions missing (running it twice changes nothing).

    :returns: Every subscription the store holds afterwards, or ``None`` (the default) for a channel
        without webhooks.

    Stops at first non-None result.
    """
