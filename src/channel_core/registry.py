"""Discovering installed channels and calling them through a typed facade.

Design (one manager per channel): each entry point in the group
``channel_core.channels`` (name = channel name, value = plugin module) gets its
own :class:`pluggy.PluginManager` holding the hook specs and that one plugin, so
every hook has exactly one channel implementation. Entry points in
``channel_core.extensions`` are cross-channel plugins (hook wrappers, ``tryfirst``
overrides) registered on every channel's manager.

Nothing is loaded at import time and there is no module-level manager:
:meth:`Channels.discover` builds everything on request. A plugin that fails to
import, misses a hook or has a wrong signature is recorded in
:attr:`Channels.failures` (and logged) while the other channels still load.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from channel_core import hookspecs
from channel_core.errors import ChannelError, ChannelNotFound, PluginError
from channel_core.hooktypes import (
    ChannelInfo,
    ChannelSandbox,
    Connection,
    OrderPage,
    OrderQuery,
    WebhookEvent,
    WebhookSubscription,
)
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, OrderStatus, Shipment

__all__ = [
    "CHANNELS_GROUP",
    "EXTENSIONS_GROUP",
    "OPTIONAL_HOOK_NAMES",
    "Channel",
    "Channels",
    "LoadFailure",
    "make_plugin_manager",
]

CHANNELS_GROUP = "channel_core.channels"
EXTENSIONS_GROUP = "channel_core.extensions"
HOOK_NAMES = ("channel_info", "connect", "fetch_orders", "map_status", "notify_shipment")  # every channel's
OPTIONAL_HOOK_NAMES = ("channel_sandbox", "parse_webhook", "webhook_subscriptions")

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    group: str
    error: str


def make_plugin_manager(
    name: str, plugin: object, extensions: Iterable[tuple[str, object]] = ()
) -> pluggy.PluginManager:
    """Build the manager for one channel: specs, the channel plugin, then extensions.

    :raises PluginError: the plugin misses a hook, has a hook the specs do not
        know, or a hook with arguments the spec does not define.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"channel {name!r}: {exc}", plugin=name) from None
    missing = [hook for hook in HOOK_NAMES if not getattr(pm.hook, hook).get_hookimpls()]
    if missing:
        raise PluginError(f"channel {name!r} does not implement: {', '.join(missing)}", plugin=name)
    for ext_name, extension in extensions:
        try:
            pm.register(extension, name=f"{ext_name}@{name}")
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"extension {ext_name!r}: {exc}", plugin=ext_name) from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"channel {name!r}: {exc}", plugin=name) from None
    return pm


class Channel:
    """Typed facade over one channel's plugin manager; the only caller of ``pm.hook``."""

    def __init__(self, name: str, pm: pluggy.PluginManager, *, version: str | None = None) -> None:
        self.name = name
        self.version = version
        self._pm = pm
        self._info: ChannelInfo | None = None

    def __repr__(self) -> str:
        return f"Channel(name={self.name!r}, version={self.version!r})"

    @property
    def plugin(self) -> object:
        """The channel's plugin object (the module its entry point names)."""
        plugin = self._pm.get_plugin(self.name)
        if plugin is None:  # pragma: no cover - make_plugin_manager always registers it
            raise PluginError(f"channel {self.name!r} has no registered plugin", plugin=self.name)
        return plugin

    def _call(self, hook: str, **kwargs: Any) -> Any:
        result = getattr(self._pm.hook, hook)(**kwargs)
        if result is None and hook != "map_status":
            raise PluginError(f"channel {self.name!r}: hook {hook} returned nothing", plugin=self.name)
        return result

    def info(self) -> ChannelInfo:
        if self._info is None:
            info = self._call("channel_info")
            if not isinstance(info, ChannelInfo):
                raise PluginError(f"channel {self.name!r}: channel_info must return ChannelInfo", plugin=self.name)
            self._info = info
        return self._info

    def connect(self, settings: Mapping[str, Any]) -> Connection:
        connection = self._call("connect", settings=settings)
        if not isinstance(connection, Connection):
            raise PluginError(f"channel {self.name!r}: connect must return a Connection", plugin=self.name)
        return connection

    def fetch_orders(self, connection: Connection, query: OrderQuery) -> Iterator[OrderPage]:
        pages = self._call("fetch_orders", connection=connection, query=query)
        if not isinstance(pages, Iterator):
            raise PluginError(f"channel {self.name!r}: fetch_orders must return an iterator", plugin=self.name)
        return self._checked_pages(pages, connection)

    def _checked_pages(self, pages: Iterator[Any], connection: Connection) -> Iterator[OrderPage]:
        overridden = self._has_status_overrides()
        for page in pages:
            if not isinstance(page, OrderPage):
                raise PluginError(
                    f"channel {self.name!r}: fetch_orders yielded {type(page).__name__}, not OrderPage",
                    plugin=self.name,
                )
            yield self._apply_status_overrides(page, connection) if overridden else page

    def _has_status_overrides(self) -> bool:
        """True when an extension implements ``map_status`` beside the channel itself."""
        return any(impl.plugin_name != self.name for impl in self._pm.hook.map_status.get_hookimpls())

    def _apply_status_overrides(self, page: OrderPage, connection: Connection) -> OrderPage:
        """Give extensions' ``map_status`` overrides the last word on imported orders' statuses."""
        orders = []
        for order in page.orders:
            status = self._pm.hook.map_status(connection=connection, channel_status=order.channel_status)
            overrides = order.channel_status is not None and isinstance(status, OrderStatus)
            orders.append(
                dataclasses.replace(order, status=status) if overrides and status is not order.status else order
            )
        return dataclasses.replace(page, orders=tuple(orders))

    def map_status(self, connection: Connection, channel_status: str) -> OrderStatus | None:
        status = self._call("map_status", connection=connection, channel_status=channel_status)
        if status is None:
            connection.unmapped_statuses.record(channel_status)
            logger.warning("status_unmapped", channel=self.name, channel_status=channel_status)
            return None
        if not isinstance(status, OrderStatus):
            raise PluginError(f"channel {self.name!r}: map_status must return OrderStatus", plugin=self.name)
        return status

    def sandbox(self) -> ChannelSandbox | None:
        """The channel's local stand-in store, or ``None`` when it ships none."""
        sandbox = self._pm.hook.channel_sandbox()
        if sandbox is not None and not isinstance(sandbox, ChannelSandbox):
            raise PluginError(f"channel {self.name!r}: channel_sandbox must return ChannelSandbox", plugin=self.name)
        return sandbox

    def parse_webhook(
        self, settings: Mapping[str, Any], headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent | None:
        """A verified delivery's event, or ``None`` when the channel has no webhooks.

        :raises WebhookRejected: the delivery does not verify.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        event = self._pm.hook.parse_webhook(settings=settings, headers=lowered, body=body)
        if event is not None and not isinstance(event, WebhookEvent):
            raise PluginError(f"channel {self.name!r}: parse_webhook must return WebhookEvent", plugin=self.name)
        return event

    def webhook_subscriptions(self, connection: Connection, url: str | None = None) -> tuple[WebhookSubscription, ...]:
        """The store's webhook subscriptions, after subscribing ``url`` when given.

        :raises PluginError: the channel has no webhooks.
        """
        found = self._pm.hook.webhook_subscriptions(connection=connection, url=url)
        if found is None:
            raise PluginError(f"channel {self.name!r} has no webhooks", plugin=self.name)
        return tuple(found)

    def notify_shipment(self, connection: Connection, shipment: Shipment) -> NotificationResult:
        """Send ``shipment``; fields longer than the channel declares are refused before any call.

        :raises InvalidShipmentError: a field breaks ``Capabilities.notification_limits``.
        """
        self.info().capabilities.check_shipment(shipment)
        result = self._call("notify_shipment", connection=connection, shipment=shipment)
        if not isinstance(result, NotificationResult):
            raise PluginError(
                f"channel {self.name!r}: notify_shipment must return NotificationResult", plugin=self.name
            )
        return result


class Channels(Mapping[str, Channel]):
    """The installed channels. ``channels["oxatis"]`` raises :class:`ChannelNotFound` listing the others."""

    def __init__(self, channels: Mapping[str, Channel], failures: Iterable[LoadFailure] = ()) -> None:
        self._channels = dict(sorted(channels.items()))
        self.failures = tuple(failures)

    @classmethod
    def discover(
        cls,
        *,
        blocked: Iterable[str] = (),
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    ) -> Channels:
        """Load every channel advertised in ``channel_core.channels`` plus all extensions.

        :param blocked: channel or extension names not to load.
        :param entry_points: for tests; defaults to the installed distributions'.
        """
        blocked_names = set(blocked)
        if entry_points is None:
            eps = list(importlib.metadata.entry_points(group=CHANNELS_GROUP))
            eps += list(importlib.metadata.entry_points(group=EXTENSIONS_GROUP))
        else:
            eps = list(entry_points)
        failures: list[LoadFailure] = []
        extensions: list[tuple[str, object]] = []
        for ep in eps:
            if ep.group != EXTENSIONS_GROUP or ep.name in blocked_names:
                continue
            loaded = _load(ep, failures)
            if loaded is not None and _extension_is_valid(ep.name, loaded, failures):
                extensions.append((ep.name, loaded))
        channels: dict[str, Channel] = {}
        for ep in eps:
            if ep.group != CHANNELS_GROUP or ep.name in blocked_names:
                continue
            if ep.name in channels:
                failures.append(LoadFailure(ep.name, ep.group, "advertised twice; keeping the first"))
                continue
            plugin = _load(ep, failures)
            if plugin is None:
                continue
            try:
                pm = make_plugin_manager(ep.name, plugin, extensions)
            except ChannelError as exc:
                failures.append(LoadFailure(ep.name, ep.group, str(exc)))
                logger.warning("channel_load_failed", channel=ep.name, error=str(exc))
                continue
            version = ep.dist.version if ep.dist is not None else None
            channels[ep.name] = Channel(ep.name, pm, version=version)
        return cls(channels, failures)

    @classmethod
    def from_plugins(cls, plugins: Mapping[str, object], *, extensions: Mapping[str, object] | None = None) -> Channels:
        """Build from plugin objects directly (tests, embedded hosts). Errors propagate."""
        ext = list((extensions or {}).items())
        return cls({name: Channel(name, make_plugin_manager(name, p, ext)) for name, p in plugins.items()})

    def names(self) -> list[str]:
        return list(self._channels)

    def __getitem__(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise ChannelNotFound(name, self._channels) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    def __repr__(self) -> str:
        return f"Channels({self.names()!r})"


def _extension_is_valid(name: str, extension: object, failures: list[LoadFailure]) -> bool:
    """Check an extension against the specs alone, so one bad extension cannot fail every channel."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(extension, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        message = f"extension {name!r}: {exc}"
        failures.append(LoadFailure(name, EXTENSIONS_GROUP, message))
        logger.warning("extension_load_failed", extension=name, error=message)
        return False
    return True


def _load(ep: importlib.metadata.EntryPoint, failures: list[LoadFailure]) -> object | None:
    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin must not stop the others
        message = f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}"
        failures.append(LoadFailure(ep.name, ep.group, message))
        logger.warning("plugin_load_failed", plugin=ep.name, group=ep.group, error=message)
        return None
    if inspect.isclass(loaded):
        try:
            return loaded()
        except Exception as exc:
            failures.append(LoadFailure(ep.name, ep.group, f"could not instantiate: {exc}"))
            return None
    plugin: object = loaded
    return plugin
