"""channel_core: connect shipping software to online stores through channel plugins.

Hosts discover channels with :meth:`Channels.discover`, then call the typed
facade: ``channels["oxatis"].connect(settings)``, ``fetch_orders``,
``map_status`` and ``notify_shipment``. Plugins implement the hooks in
:mod:`channel_core.hookspecs` with :data:`hookimpl`.
"""

# Every name loads on first use, so that `import channel_core` (and the `channel` command's start-up)
# costs next to nothing: a host that only builds models never imports pluggy, httpx or structlog.

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Address": "channel_core.models",
    "AuthenticationError": "channel_core.errors",
    "Buyer": "channel_core.models",
    "Capabilities": "channel_core.hooktypes",
    "Channel": "channel_core.registry",
    "ChannelAPIError": "channel_core.errors",
    "ChannelError": "channel_core.errors",
    "ChannelInfo": "channel_core.hooktypes",
    "ChannelNotFound": "channel_core.errors",
    "ChannelSandbox": "channel_core.hooktypes",
    "Channels": "channel_core.registry",
    "ClientError": "channel_core.errors",
    "ConfigurationError": "channel_core.errors",
    "Connection": "channel_core.hooktypes",
    "Discount": "channel_core.models",
    "FencedOutError": "channel_core.errors",
    "ClaimLostError": "channel_core.errors",
    "AccountMismatchError": "channel_core.errors",
    "FailedOrder": "channel_core.hooktypes",
    "HttpClient": "channel_core.http",
    "InconsistentReadError": "channel_core.errors",
    "InvalidShipmentError": "channel_core.errors",
    "ItemOption": "channel_core.models",
    "LineItem": "channel_core.models",
    "LoadFailure": "channel_core.registry",
    "NotFoundError": "channel_core.errors",
    "Note": "channel_core.models",
    "NoteType": "channel_core.models",
    "NotificationResult": "channel_core.models",
    "NotificationStatus": "channel_core.models",
    "Order": "channel_core.models",
    "OrderPage": "channel_core.hooktypes",
    "OrderQuery": "channel_core.hooktypes",
    "OrderStatus": "channel_core.models",
    "PayloadError": "channel_core.errors",
    "Payment": "channel_core.models",
    "PickupPoint": "channel_core.models",
    "PluginError": "channel_core.errors",
    "QuotaExhaustedError": "channel_core.errors",
    "RateLimitedError": "channel_core.errors",
    "RateLimiter": "channel_core.http",
    "CostBucket": "channel_core.http",
    "StoreUnavailableError": "channel_core.errors",
    "FulfillmentGroup": "channel_core.models",
    "FulfillmentLine": "channel_core.models",
    "RetriableError": "channel_core.errors",
    "RetryPolicy": "channel_core.http",
    "RunningSandbox": "channel_core.hooktypes",
    "SandboxOptions": "channel_core.hooktypes",
    "Secret": "channel_core.secret",
    "ServerError": "channel_core.errors",
    "SettingSpec": "channel_core.hooktypes",
    "Shipment": "channel_core.models",
    "ShipmentItem": "channel_core.models",
    "Shipping": "channel_core.models",
    "SkippedOrder": "channel_core.models",
    "StatusMapping": "channel_core.status",
    "StatusMappingError": "channel_core.errors",
    "StoreStatus": "channel_core.hooktypes",
    "TransportError": "channel_core.errors",
    "UnmappedCodes": "channel_core.status",
    "Weight": "channel_core.models",
    "WeightUnit": "channel_core.models",
    "from_dict": "channel_core.models",
    "hookimpl": "channel_core.hookspecs",
    "to_dict": "channel_core.models",
    "to_json": "channel_core.models",
}

if TYPE_CHECKING:
    from channel_core.errors import (
        AccountMismatchError,
        AuthenticationError,
        ChannelAPIError,
        ChannelError,
        ChannelNotFound,
        ClaimLostError,
        ClientError,
        ConfigurationError,
        FencedOutError,
        InconsistentReadError,
        InvalidShipmentError,
        NotFoundError,
        PayloadError,
        PluginError,
        QuotaExhaustedError,
        RateLimitedError,
        RetriableError,
        ServerError,
        StatusMappingError,
        StoreUnavailableError,
        TransportError,
    )
    from channel_core.hookspecs import (
        hookimpl,
    )
    from channel_core.hooktypes import (
        Capabilities,
        ChannelInfo,
        ChannelSandbox,
        Connection,
        FailedOrder,
        OrderPage,
        OrderQuery,
        RunningSandbox,
        SandboxOptions,
        SettingSpec,
        StoreStatus,
    )
    from channel_core.http import (
        CostBucket,
        HttpClient,
        RateLimiter,
        RetryPolicy,
    )
    from channel_core.models import (
        Address,
        Buyer,
        Discount,
        FulfillmentGroup,
        FulfillmentLine,
        ItemOption,
        LineItem,
        Note,
        NoteType,
        NotificationResult,
        NotificationStatus,
        Order,
        OrderStatus,
        Payment,
        PickupPoint,
        Shipment,
        ShipmentItem,
        Shipping,
        SkippedOrder,
        Weight,
        WeightUnit,
        from_dict,
        to_dict,
        to_json,
    )
    from channel_core.registry import (
        Channel,
        Channels,
        LoadFailure,
    )
    from channel_core.secret import (
        Secret,
    )
    from channel_core.status import (
        StatusMapping,
        UnmappedCodes,
    )

__all__ = [
    "AccountMismatchError",
    "Address",
    "AuthenticationError",
    "Buyer",
    "Capabilities",
    "Channel",
    "ChannelAPIError",
    "ChannelError",
    "ChannelInfo",
    "ChannelNotFound",
    "ChannelSandbox",
    "Channels",
    "ClaimLostError",
    "ClientError",
    "ConfigurationError",
    "Connection",
    "CostBucket",
    "Discount",
    "FailedOrder",
    "FencedOutError",
    "FulfillmentGroup",
    "FulfillmentLine",
    "HttpClient",
    "InconsistentReadError",
    "InvalidShipmentError",
    "ItemOption",
    "LineItem",
    "LoadFailure",
    "NotFoundError",
    "Note",
    "NoteType",
    "NotificationResult",
    "NotificationStatus",
    "Order",
    "OrderPage",
    "OrderQuery",
    "OrderStatus",
    "PayloadError",
    "Payment",
    "PickupPoint",
    "PluginError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "RateLimiter",
    "RetriableError",
    "RetryPolicy",
    "RunningSandbox",
    "SandboxOptions",
    "Secret",
    "ServerError",
    "SettingSpec",
    "Shipment",
    "ShipmentItem",
    "Shipping",
    "SkippedOrder",
    "StatusMapping",
    "StatusMappingError",
    "StoreStatus",
    "StoreUnavailableError",
    "TransportError",
    "UnmappedCodes",
    "Weight",
    "WeightUnit",
    "__version__",
    "from_dict",
    "hookimpl",
    "to_dict",
    "to_json",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'channel_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
