"""The values that travel through the hooks, besides the canonical order model.

``ChannelInfo`` describes a channel; ``Connection`` is a connected store;
``OrderQuery`` asks for orders; ``OrderPage`` is one streamed page of answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from channel_core.errors import InvalidShipmentError
from channel_core.models import Order, OrderStatus, Shipment, SkippedOrder
from channel_core.status import StatusMapping, UnmappedCodes

__all__ = [
    "Capabilities",
    "ChannelInfo",
    "ChannelSandbox",
    "Connection",
    "FailedOrder",
    "OrderPage",
    "OrderQuery",
    "RunningSandbox",
    "SandboxOptions",
    "SettingSpec",
    "StoreStatus",
    "WebhookEvent",
    "WebhookSubscription",
]


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting a channel needs to connect."""

    name: str
    type: str = "str"
    required: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""
    env: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do.

    :ivar import_features: order fields and features the import fills in.
    :ivar notification_fields: ``Shipment`` fields sent to the channel.
    :ivar notification_fields_not_sent: ``Shipment`` fields accepted but not transmitted.
    :ivar notification_limits: the longest value the channel accepts for a ``Shipment``
        text field (``{"tracking_number": 32}``); the core refuses longer ones before any call.
    :ivar partial_shipments: a shipment may carry part of an order (``Shipment.items``).
    :ivar multiple_packages: an order may ship as several packages, each its own tracking number.
    :ivar notify_buyer: the store can e-mail the buyer when told (``Shipment.notify_buyer``).
    :ivar cost_budget: ``(maximum, restore_rate)``: the store counts points in a leaky bucket, and this
        is a safe first guess of it (the replies then tell the real figures); ``None``: it counts requests.
    """

    import_features: tuple[str, ...] = ()
    notification_fields: tuple[str, ...] = ()
    notification_fields_not_sent: tuple[str, ...] = ()
    notification_limits: Mapping[str, int] = field(default_factory=dict)
    partial_shipments: bool = False
    multiple_packages: bool = False
    notify_buyer: bool = False
    cost_budget: tuple[float, float] | None = None

    def check_shipment(self, shipment: Shipment) -> None:
        """Refuse a shipment whose fields break the channel's declared limits, naming each one.

        :raises InvalidShipmentError: a field is longer than the channel accepts, or the shipment lists
            items (part of an order) for a channel that can only ship whole orders and does not accept
            an item list even as information.
        """
        problems = []
        if shipment.items and not self.partial_shipments and "items" not in self.notification_fields_not_sent:
            problems.append("it lists items, but the channel ships whole orders only (leave items empty)")
        for name, limit in sorted(self.notification_limits.items()):
            value = getattr(shipment, name, None)
            if isinstance(value, str) and len(value.strip()) > limit:
                problems.append(f"{name} is {len(value.strip())} characters, the channel accepts at most {limit}")
        if problems:
            raise InvalidShipmentError(f"shipment for order {shipment.order_id}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    name: str
    display_name: str
    version: str
    settings: tuple[SettingSpec, ...]
    capabilities: Capabilities
    default_status_mapping: Mapping[OrderStatus, tuple[str, ...]]
    description: str = ""

    def setting(self, name: str) -> SettingSpec:
        for spec in self.settings:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """A status defined in the store (an Oxatis progress state, for instance)."""

    code: str
    name: str
    channel_id: str | None = None


class Connection:
    """A connected store, returned by ``connect`` and passed back to the other hooks.

    Plugins subclass it to keep their API client and whatever connect loaded.
    ``account_id`` identifies the store for checkpoints and ledgers and never
    contains a secret: take it from the store itself (the merchant's account, not the
    credentials), so a rotated credential keeps its store and another merchant's never
    passes for it. ``previous_account_ids`` are ids older releases of the channel recorded
    this store under; the host moves their rows to ``account_id`` (:func:`channel_core.sync.adopt_account`).
    """

    def __init__(
        self,
        *,
        channel: str,
        account_id: str,
        status_mapping: StatusMapping,
        store_statuses: tuple[StoreStatus, ...] = (),
        previous_account_ids: tuple[str, ...] = (),
    ) -> None:
        self.channel = channel
        self.account_id = account_id
        self.previous_account_ids = tuple(a for a in previous_account_ids if a != account_id)
        self.status_mapping = status_mapping
        self.store_statuses = store_statuses
        self.unmapped_statuses = UnmappedCodes()

    def close(self) -> None:
        """Release network resources. Safe to call twice."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel={self.channel!r}, account_id={self.account_id!r})"


def _no_known_versions(order_id: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """What ``fetch_orders`` should return.

    :ivar modified_since: aware UTC start of the modification window (inclusive).
    :ivar modified_until: aware UTC end of the window; ``None`` means open-ended
        (everything modified since ``modified_since``, including changes made
        while the channel reads).
    :ivar complete_until: the promise of earlier runs: every order modified
        before this instant (the store's clock) is already stored with its
        current content. Pass the last completed run's
        ``OrderPage.complete_until``; ``None`` when there is no such promise.
    :ivar known_version: the host's stored version token for an order id, or
        ``None``. Only for orders listed as modified before ``complete_until``
        may the channel skip fetching details when the version is unchanged
        (it lists them in ``OrderPage.unchanged``); every order modified since
        is fetched in full, so a change the version cannot see is never missed.
    :ivar resume: a ``checkpoint`` from an interrupted run's last stored page.
    :ivar retry_order_ids: orders that failed last time; fetched first, by id.
    :ivar clock_lag: how far the store's data stamps have been seen running behind the clock its
        replies carry (its web server and its database disagree): the largest lag earlier runs
        reported (``OrderPage.clock_lag``). The channel moves its promise back by it, so an order
        stamped that much before the reply is never left to a trusted version.
    :ivar only_order_ids: a targeted sync (a webhook named these orders): fetch exactly these, by id,
        and list no window; pages carry no ``complete_until``. An id the store no longer has is skipped.
    :ivar known_versions: ``known_version`` for many ids at once (the host's store answers a list page in
        one statement); channels ask through :meth:`versions_of`, which falls back to ``known_version``.
    """

    modified_since: datetime
    modified_until: datetime | None = None
    complete_until: datetime | None = None
    known_version: Callable[[str], str | None] = _no_known_versions
    resume: str | None = None
    retry_order_ids: tuple[str, ...] = ()
    clock_lag: timedelta = timedelta(0)
    only_order_ids: tuple[str, ...] = ()
    known_versions: Callable[[Sequence[str]], Mapping[str, str]] | None = None

    def versions_of(self, order_ids: Sequence[str]) -> Mapping[str, str]:
        """The host's stored version tokens of ``order_ids`` (ids without one are left out), in one lookup
        when the host gave ``known_versions`` (a list page's ids at once), else one ``known_version`` per id."""
        if self.known_versions is not None:
            return self.known_versions(order_ids)
        found = {order_id: self.known_version(order_id) for order_id in order_ids}
        return {order_id: version for order_id, version in found.items() if version is not None}

    def __post_init__(self) -> None:
        for name in ("modified_since", "modified_until", "complete_until"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"OrderQuery.{name} must be timezone-aware (got {value!r})")


@dataclass(frozen=True, slots=True)
class FailedOrder:
    """An order that could not be fetched this time; the host retries it next run."""

    order_id: str
    error: str


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of ``fetch_orders`` output.

    :ivar orders: canonical orders, new or changed.
    :ivar skipped: orders that cannot be imported, with the reason.
    :ivar failed: orders whose fetch failed (retry them later).
    :ivar unchanged: ids whose version matched ``OrderQuery.known_version``.
    :ivar versions: order id to the channel's version token, for every listed order.
    :ivar checkpoint: opaque; store it with the page, pass it back as ``OrderQuery.resume``.
    :ivar window_until: the end of the window this page belongs to.
    :ivar complete_until: on the last page of a completed, consistent read: an
        instant of the store's clock before which every modified order was
        listed by this run. The host stores it with the page and passes it back
        as the next run's ``OrderQuery.complete_until``. ``None`` on other pages,
        or when the channel cannot promise it.
    :ivar page_of: ``(page, pages)`` of the listing this page belongs to, when the store tells.
    :ivar listed_total: how many orders that listing holds, when the store tells (progress displays).
    :ivar clock_lag: with ``complete_until``: the store's clock lag to remember (the largest seen,
        this run's measurement included); the host passes it back as ``OrderQuery.clock_lag``.
    """

    orders: tuple[Order, ...] = ()
    skipped: tuple[SkippedOrder, ...] = ()
    failed: tuple[FailedOrder, ...] = ()
    unchanged: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    checkpoint: str | None = None
    window_until: datetime | None = None
    complete_until: datetime | None = None
    page_of: tuple[int, int] | None = None
    listed_total: int | None = None
    clock_lag: timedelta | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook delivery, as ``parse_webhook`` reads it.

    :ivar event_id: the store's id of the event (deliveries of one event share it: the receiver
        deduplicates on it).
    :ivar topic: the store's topic (``orders/updated``).
    :ivar account_id: the account the delivery is for, as ``Connection.account_id`` names it.
    :ivar order_ids: the orders it concerns.
    :ivar lookups: ids the channel resolves to orders with one call (``fulfillment_order:123``), for
        events whose body names no order.
    :ivar triggered_at: when the store says the event happened.
    """

    event_id: str
    topic: str
    account_id: str
    order_ids: tuple[str, ...] = ()
    lookups: tuple[str, ...] = ()
    triggered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """One of a store's webhook subscriptions: which topic goes to which URL."""

    topic: str
    url: str
    subscription_id: str | None = None


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """What ``channel sandbox`` and ``channel demo`` ask of a channel's sandbox.

    :ivar port: the port to listen on (0: any free one), for sandboxes that listen.
    :ivar orders: how many synthetic orders the store holds.
    :ivar seed: the seed of the synthetic data.
    :ivar latency: seconds added to every call.
    :ivar faults: fault switches, ``KIND`` or ``KIND:TIMES``; the channel documents its kinds.
    :ivar options: channel-specific switches (``--set key=value``).
    :ivar stores: how many merchants' stores to host (each its own orders and credentials), for
        sandboxes whose ``RunningSandbox`` has ``store_settings()``.
    """

    port: int = 0
    orders: int = 200
    seed: int = 7
    latency: float = 0.0
    faults: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    stores: int = 1


class RunningSandbox(Protocol):
    """A sandbox store, made but not yet serving."""

    url: str

    def connect_settings(self) -> dict[str, Any]:
        """The settings ``connect`` needs to reach this store (secrets included: it is a sandbox)."""
        ...

    # Optional: ``store_settings() -> list[dict[str, Any]]``, the settings of each store a sandbox made
    # with ``SandboxOptions(stores=N)`` hosts, first store first. ``channel sandbox --stores N`` needs it.

    def start(self) -> None:
        """Serve in the background until :meth:`stop`."""
        ...

    def serve_forever(self) -> None:
        """Serve in the foreground until ``KeyboardInterrupt``; then release everything."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelSandbox:
    """A channel's local stand-in store (the ``channel_sandbox`` hook's answer).

    :ivar make: builds a :class:`RunningSandbox` from :class:`SandboxOptions`; raise
        :class:`~channel_core.errors.ConfigurationError` for options it cannot honour.
    :ivar description: one line for ``channel sandbox``'s banner.
    :ivar demo_settings: connect settings the demo adds to ``connect_settings()``.
    :ivar demo_options: sandbox switches (``SandboxOptions.options``) the demo's store is made with.
    """

    make: Callable[[SandboxOptions], RunningSandbox]
    description: str = ""
    demo_settings: Mapping[str, Any] = field(default_factory=dict)
    demo_options: Mapping[str, str] = field(default_factory=dict)
