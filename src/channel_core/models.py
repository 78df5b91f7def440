"""The canonical order model: what every channel produces and every host consumes.

Names follow ShipEngine Connect's order-source model. All classes are frozen
dataclasses; money is :class:`~decimal.Decimal`, datetimes are timezone-aware
UTC, and identifiers, postcodes, phones and SKUs are strings so that leading
zeros survive. Sequences are tuples so that orders stay hashable and immutable.

:func:`to_dict` and :func:`from_dict` give a lossless JSON round trip using
exactly the snake_case field names below; ledgers and the CLI rely on it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

__all__ = [
    "Address",
    "Buyer",
    "Discount",
    "FulfillmentGroup",
    "FulfillmentLine",
    "ItemOption",
    "LineItem",
    "Note",
    "NoteType",
    "NotificationResult",
    "NotificationStatus",
    "Order",
    "OrderStatus",
    "Payment",
    "PickupPoint",
    "Shipment",
    "ShipmentItem",
    "Shipping",
    "SkippedOrder",
    "Weight",
    "WeightUnit",
    "from_dict",
    "to_dict",
]


class OrderStatus(enum.StrEnum):
    """Canonical order statuses every channel maps onto."""

    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


class NoteType(enum.StrEnum):
    INTERNAL = "internal"
    FROM_BUYER = "from_buyer"
    GIFT_MESSAGE = "gift_message"
    SHIPPING_INSTRUCTIONS = "shipping_instructions"
    OTHER = "other"


class WeightUnit(enum.StrEnum):
    GRAM = "g"
    KILOGRAM = "kg"
    OUNCE = "oz"
    POUND = "lb"


class NotificationStatus(enum.StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    FAILED = "failed"


def _require_utc(owner: str, name: str, value: datetime | None) -> None:
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{owner}.{name} must be timezone-aware (got naive {value.isoformat()})")
    if value.utcoffset() != UTC.utcoffset(None):
        raise ValueError(f"{owner}.{name} must be in UTC (got offset {value.utcoffset()})")


@dataclass(frozen=True, slots=True)
class Weight:
    value: Decimal
    unit: WeightUnit = WeightUnit.GRAM


@dataclass(frozen=True, slots=True)
class Address:
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    phone: str | None = None

    def is_empty(self) -> bool:
        """True when no street, city or postcode is present (names alone do not ship)."""
        return not any((self.line1, self.line2, self.line3, self.city, self.postal_code))


@dataclass(frozen=True, slots=True)
class Buyer:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ItemOption:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class LineItem:
    line_item_id: str
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal
    product_id: str | None = None
    weight: Weight | None = None
    image_url: str | None = None
    options: tuple[ItemOption, ...] = ()
    location: str | None = None
    requires_shipping: bool = True
    quantity_to_ship: int | None = None

    def remaining(self) -> int:
        """How many are still to ship: ``quantity_to_ship`` when the channel knows, else the whole quantity
        (nothing, for a line that needs no shipping)."""
        if not self.requires_shipping:
            return 0
        return self.quantity if self.quantity_to_ship is None else self.quantity_to_ship


@dataclass(frozen=True, slots=True)
class FulfillmentLine:
    """A line of a fulfillment group: which order line, and how many of it the group still has to ship."""

    line_item_id: str
    quantity: int
    remaining: int


@dataclass(frozen=True, slots=True)
class FulfillmentGroup:
    """Part of an order that ships from one place: a Shopify fulfillment order, or a whole Oxatis order.

    :ivar group_id: the channel's id of the group.
    :ivar location: where it ships from (a location's name or id), when the channel tells.
    :ivar status: the channel's status of the group (``OPEN``, ``ON_HOLD``, ``CLOSED``...), when it has one.
    :ivar lines: the order lines it holds, with the quantity still to ship.
    """

    group_id: str
    lines: tuple[FulfillmentLine, ...] = ()
    location: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Discount:
    code: str | None
    amount: Decimal
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    method: str | None = None
    status: str | None = None
    amount_paid: Decimal | None = None
    shipping_amount: Decimal | None = None
    tax_amount: Decimal | None = None
    discounts: tuple[Discount, ...] = ()
    coupon_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PickupPoint:
    carrier: str
    point_id: str
    service_code: str | None = None


@dataclass(frozen=True, slots=True)
class Shipping:
    requested_service: str | None = None
    carrier_code: str | None = None
    pickup_point: PickupPoint | None = None
    is_gift: bool = False
    gift_message: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    type: NoteType
    text: str


@dataclass(frozen=True, slots=True)
class Order:
    channel: str
    order_id: str
    order_number: str
    status: OrderStatus
    channel_status: str | None
    created_at: datetime
    modified_at: datetime
    ship_to: Address
    paid_at: datetime | None = None
    currency: str | None = None
    buyer: Buyer = field(default_factory=Buyer)
    bill_to: Address | None = None
    items: tuple[LineItem, ...] = ()
    payment: Payment = field(default_factory=Payment)
    shipping: Shipping = field(default_factory=Shipping)
    notes: tuple[Note, ...] = ()
    weight: Weight | None = None
    fulfillment_groups: tuple[FulfillmentGroup, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("created_at", "modified_at", "paid_at"):
            _require_utc("Order", name, getattr(self, name))
        if not self.order_id:
            raise ValueError("Order.order_id must not be empty")


@dataclass(frozen=True, slots=True)
class SkippedOrder:
    """An order the channel returned but that cannot be imported, and why."""

    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShipmentItem:
    line_item_id: str | None = None
    sku: str | None = None
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Shipment:
    """What the host tells a channel once a parcel ships.

    :ivar package_id: which parcel of the order this is, for orders shipped in several packages. A newer
        shipment of the same order and package (the same ``package_id``; without one, the same ``items``,
        or the whole order) supersedes an older one not yet sent: the corrected tracking number wins.
    :ivar force: send even though the store shows the order cancelled (an operator's decision).
    :ivar items: the order lines and quantities in this package; empty means everything still to ship.
        Only channels declaring ``partial_shipments`` accept a list of items.
    :ivar notify_buyer: ask the store to e-mail the buyer (``None``: the channel's default); only for
        channels declaring ``notify_buyer``.
    """

    order_id: str
    tracking_number: str
    carrier: str
    tracking_url: str | None = None
    service: str | None = None
    ship_date: datetime | None = None
    shipping_cost: Decimal | None = None
    notes_to_buyer: str | None = None
    items: tuple[ShipmentItem, ...] = ()
    package_id: str | None = None
    force: bool = False
    notify_buyer: bool | None = None

    def __post_init__(self) -> None:
        _require_utc("Shipment", "ship_date", self.ship_date)
        for item in self.items:
            if item.quantity < 1:
                raise ValueError(f"Shipment.items: quantity must be at least 1 (got {item.quantity})")
            if not (item.line_item_id or item.sku):
                raise ValueError("Shipment.items: each item needs a line_item_id or a sku")
        for name in ("order_id", "tracking_number", "carrier"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Shipment.{name} must not be blank (got {value!r})")
        if self.tracking_url is not None and not self.tracking_url.strip():
            raise ValueError("Shipment.tracking_url must be a URL or None, not blank")
        if self.shipping_cost is not None and (not self.shipping_cost.is_finite() or self.shipping_cost < 0):
            raise ValueError(f"Shipment.shipping_cost must be a non-negative amount (got {self.shipping_cost})")


@dataclass(frozen=True, slots=True)
class NotificationResult:
    status: NotificationStatus
    fields_sent: tuple[str, ...] = ()
    message: str | None = None


# --------------------------------------------------------------------------- JSON codec

T = TypeVar("T")


_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # a dataclass type's field names, read once


def _encode(value: Any) -> Any:
    """Exact-type dispatch first (the hot path for every stored order), the general rules after."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    names = _FIELDS.get(kind)
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return [_encode(v) for v in value]
    if kind is Decimal:
        return str(value)
    if kind is datetime:
        return value.isoformat().replace("+00:00", "Z")
    return _encode_other(value)


def _encode_other(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return _encode(value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(_encode(k)): _encode(v) for k, v in value.items()}
    raise TypeError(f"cannot encode {type(value).__name__} to JSON")


def _json_default(value: Any) -> Any:
    """What the C JSON encoder cannot write itself: a model as its fields, money and datetimes as text."""
    names = _FIELDS.get(type(value))
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if type(value) is Decimal:
        return str(value)
    if type(value) is datetime:
        return value.isoformat().replace("+00:00", "Z")
    return _encode_other(value)


# The text equals json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False):
# tests/core/test_models.py checks it for generated orders, on both encoders. Strings, numbers, tuples and enums
# stay in C; models, money and datetimes call _json_default once each (a model becomes a dict so that its keys
# are sorted like every other; orjson would write a dataclass's fields unsorted, a datetime with "+00:00").
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
# What orjson refuses and the standard library writes (a lone surrogate, an integer beyond 64 bits, a key that
# is not a string) goes to the standard library's encoder: the same text, or its error, as before orjson.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False, default=_json_default
)


def to_json(obj: Any) -> str:
    """A model instance as compact JSON with sorted keys: :func:`to_dict`'s data, written in one pass."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_json expects a model instance, got {type(obj).__name__}")
    try:
        return orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _CANONICAL.encode(obj)


def to_dict(obj: Any) -> dict[str, Any]:
    """Encode a model instance as JSON-ready data (Decimal as string, datetimes ISO 8601 'Z')."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_dict expects a model instance, got {type(obj).__name__}")
    encoded: dict[str, Any] = _encode(obj)
    return encoded


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _decode(args[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        inner = typing.get_args(tp)[0]
        return tuple(_decode(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if value is None:
        raise ValueError(f"{where}: missing value")
    if tp is Decimal:
        return Decimal(str(value))
    if tp is datetime:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError(f"{where}: naive datetime {value!r}")
        return parsed.astimezone(UTC)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, where)
    if tp in (str, int, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ValueError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"{where}: unsupported type {tp!r}")


def _from_mapping(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a model instance from :func:`to_dict` output; raises ``ValueError`` naming the field."""
    return _from_mapping(cls, data, cls.__name__)
