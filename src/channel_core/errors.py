"""Exceptions raised by channel_core and by channel plugins.

Hosts need exactly one ``except ChannelError``. Plugins raise these, never bare
httpx, lxml or marshmallow errors, and chain the original with ``raise ... from``.

::

    ChannelError
    ├── ConfigurationError          settings missing or invalid; fix the config
    │   ├── StatusMappingError      a status mapping that cannot be applied
    │   └── AccountMismatchError    the credentials open another store than the one registered
    ├── InvalidShipmentError        a shipment the channel cannot accept (too long, a cancelled
    │                               order); fix it, or force it
    ├── PluginError                 a plugin failed to load or broke its contract
    │   └── ChannelNotFound         no installed channel has that name
    ├── PayloadError                wire data failed its schema; .messages, .order_id
    ├── InconsistentReadError       the store changed under a listing in a way that
    │                               cannot be settled: stop, restart the window next run
    ├── FencedOutError              another run of the same store took over: stop, write nothing
    ├── ClaimLostError              a notifier's claim on an order was taken over: write nothing
    ├── WebhookRejected             a delivery failed verification (.status: 401, 403); nothing parsed
    └── ChannelAPIError             the channel's API refused or failed a call
        ├── AuthenticationError     credentials or rights rejected: fatal
        ├── NotFoundError           the record does not exist: fatal
        ├── ClientError             the request was rejected as invalid: fatal
        ├── QuotaExhaustedError     daily quota spent: stop, resume next run
        ├── StoreUnavailableError   the store is frozen or locked (402, 423): stop, try later
        └── RetriableError          transient; the retry policy may try again
            ├── RateLimitedError    slow down; .retry_after seconds
            ├── ServerError         5xx, maintenance, HTML or empty replies
            └── TransportError      connect/read timeouts, resets

``ChannelAPIError.request_sent`` tells whether the request may have reached the
server; writes are retried only when it is ``False``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

__all__ = [
    "AccountMismatchError",
    "AuthenticationError",
    "ChannelAPIError",
    "ChannelError",
    "ChannelNotFound",
    "ClaimLostError",
    "ClientError",
    "ConfigurationError",
    "FencedOutError",
    "InconsistentReadError",
    "InvalidShipmentError",
    "NotFoundError",
    "PayloadError",
    "PluginError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "RetriableError",
    "ServerError",
    "StatusMappingError",
    "StoreUnavailableError",
    "TransportError",
    "WebhookRejected",
]


class ChannelError(Exception):
    """Root of every error this library raises."""


class ConfigurationError(ChannelError):
    """Settings are missing or invalid. The message says which and how to fix them."""


class StatusMappingError(ConfigurationError):
    """A status mapping names an unknown status or maps one channel code twice."""


class AccountMismatchError(ConfigurationError):
    """A registered store's credentials opened another account than the one it first synced.

    The store's account is pinned once it has synced; nothing is read into it or written to the
    other store. Re-register the store (``channel stores add KEY ... --replace``) to change it.
    """

    def __init__(self, message: str, *, store: str, pinned: str, found: str) -> None:
        super().__init__(message)
        self.store, self.pinned, self.found = store, pinned, found


class InvalidShipmentError(ChannelError):
    """A shipment the store should not get: it breaks a limit the channel declares (the message names each
    field), or the store shows the order cancelled (``Shipment.force`` sends it anyway). Nothing was sent."""


class PluginError(ChannelError):
    """A channel plugin could not be loaded or broke the hook contract."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class ChannelNotFound(PluginError):
    """No installed channel has the requested name."""

    def __init__(self, name: str, installed: Iterable[str]) -> None:
        self.name = name
        self.installed = tuple(sorted(installed))
        listing = ", ".join(self.installed) or "none"
        super().__init__(f"no channel named {name!r} is installed (installed: {listing})", plugin=name)


class PayloadError(ChannelError):
    """Data received from a channel does not match its wire schema.

    ``messages`` maps field names to what was wrong with them; ``order_id`` names
    the order when the payload belonged to one.
    """

    def __init__(
        self,
        message: str,
        *,
        messages: Mapping[str, Any] | None = None,
        order_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.messages = dict(messages or {})
        self.order_id = order_id
        self.operation = operation
        parts = [message]
        if order_id is not None:
            parts.append(f"order {order_id}")
        if self.messages:
            parts.append("; ".join(f"{k}: {_flatten(v)}" for k, v in sorted(self.messages.items())))
        super().__init__(" | ".join(parts))


def _flatten(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    return str(value)


class InconsistentReadError(ChannelError):
    """A listing changed while it was read in a way the channel cannot settle.

    The run stops without advancing its checkpoint and the next run reads the
    window again from its first page; nothing already stored is lost.
    """


class FencedOutError(ChannelError):
    """Another run of the same store took its fence after this one: this run stops and writes nothing more.

    A worker that lost its lease (paused, partitioned, or presumed dead) can never move a checkpoint.
    """


class ClaimLostError(ChannelError):
    """A notifier's claim on an order ran out and another notifier took it (or finished and let it go).

    Raised before a write request leaves, so a notifier that was paused past its lease writes nothing;
    the notifier now holding the order reads the store's current state and sends what is missing.
    """


class ChannelAPIError(ChannelError):
    """A call to the channel's API failed.

    :ivar channel: the channel name.
    :ivar operation: the API operation (``OrderGetList``...), never a URL with secrets.
    :ivar status_code: the HTTP or channel status code, when one was received.
    :ivar request_sent: ``False`` only when the request provably never reached the server.
    """

    retriable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        channel: str | None = None,
        operation: str | None = None,
        status_code: int | None = None,
        sub_code: int | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.operation = operation
        self.status_code = status_code
        self.sub_code = sub_code
        self.request_sent = request_sent

    def __str__(self) -> str:
        prefix = " ".join(p for p in (self.channel, self.operation) if p)
        code = f" [{self.status_code}]" if self.status_code is not None else ""
        base = super().__str__()
        return f"{prefix}{code}: {base}" if prefix or code else base

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(channel={self.channel!r}, operation={self.operation!r}, "
            f"status_code={self.status_code!r})"
        )


class AuthenticationError(ChannelAPIError):
    """Credentials are wrong, expired or lack the rights the call needs."""


class NotFoundError(ChannelAPIError):
    """The requested record does not exist."""


class ClientError(ChannelAPIError):
    """The channel rejected the request as invalid; retrying will not help."""


class QuotaExhaustedError(ChannelAPIError):
    """The account's call quota is spent. Stop now; the next run resumes from the checkpoint."""


class StoreUnavailableError(ChannelAPIError):
    """The store cannot be used now: frozen for an unpaid bill (HTTP 402) or locked (423).

    Not a credential problem: the run stops (exit 3) and the next one tries again. Nothing was processed.
    """


class RetriableError(ChannelAPIError):
    """A transient failure; the retry policy may try again."""

    retriable: ClassVar[bool] = True


class RateLimitedError(RetriableError):
    """Too many requests. ``retry_after`` is the server's advice in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(RetriableError):
    """The server failed (5xx, maintenance, an HTML page or an empty body)."""


class TransportError(RetriableError):
    """The connection failed or timed out."""


class WebhookRejected(ChannelError):
    """A webhook delivery the receiver must refuse: a signature that does not verify (``status`` 401), or a
    delivery for another account than the store's (403). Nothing of its body was parsed or logged."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status
