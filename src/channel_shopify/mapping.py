"""A Shopify order node, as the listing returns it, to the canonical :class:`~channel_core.models.Order`.

Ids are the numbers at the end of gids (:func:`gid_number`); the channel rebuilds gids when it
writes (:func:`gid`). The status is derived with ShipStation's precedence (:func:`derived_code`),
then mapped through the connection's :class:`~channel_core.status.StatusMapping`, which the operator
can override. Lines that need no shipping stay in ``items`` (``requires_shipping=False``) and belong to
no fulfillment group; an order with nothing to ship, or with no ship-to and no pickup, is skipped
with its reason, as ShipStation does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from channel_core.errors import PayloadError
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
    Order,
    OrderStatus,
    Payment,
    PickupPoint,
    Shipping,
    SkippedOrder,
    Weight,
    WeightUnit,
)

__all__ = ["DEFAULT_STATUS_MAPPING", "DERIVED_CODES", "derived_code", "gid", "gid_number", "nodes", "to_order"]

DEFAULT_STATUS_MAPPING: Mapping[OrderStatus, tuple[str, ...]] = {
    OrderStatus.AWAITING_PAYMENT: ("PENDING",),
    OrderStatus.AWAITING_SHIPMENT: (
        "UNFULFILLED",
        "PARTIALLY_FULFILLED",
        "IN_PROGRESS",
        "OPEN",
        "PENDING_FULFILLMENT",
        "SCHEDULED",
        "REQUEST_DECLINED",
    ),
    OrderStatus.SHIPPED: ("FULFILLED",),
    OrderStatus.CANCELLED: ("CANCELLED", "RESTOCKED"),
    OrderStatus.ON_HOLD: ("ON_HOLD",),
}
DERIVED_CODES = (  # what derived_code() can return, with what each means
    ("CANCELLED", "Cancelled (cancelledAt set)"),
    ("FULFILLED", "Fulfilled"),
    ("PENDING", "Payment pending"),
    ("ON_HOLD", "On hold (the order, or every fulfillment order with something to ship)"),
    ("UNFULFILLED", "Unfulfilled"),
    ("PARTIALLY_FULFILLED", "Partially fulfilled"),
    ("IN_PROGRESS", "In progress"),
    ("OPEN", "Open"),
    ("PENDING_FULFILLMENT", "Pending fulfillment"),
    ("SCHEDULED", "Scheduled"),
    ("REQUEST_DECLINED", "Fulfillment request declined"),
    ("RESTOCKED", "Restocked"),
)
WEIGHT_UNITS = {
    "GRAMS": WeightUnit.GRAM,
    "KILOGRAMS": WeightUnit.KILOGRAM,
    "OUNCES": WeightUnit.OUNCE,
    "POUNDS": WeightUnit.POUND,
}
TO_GRAMS = {
    "GRAMS": Decimal(1),
    "KILOGRAMS": Decimal(1000),
    "OUNCES": Decimal("28.349523125"),
    "POUNDS": Decimal("453.59237"),
}
PICKUP_METHODS = {"PICK_UP", "PICKUP_POINT"}


def gid_number(value: Any, kind: str) -> str:
    """``gid://shopify/Order/123`` -> ``"123"``; anything else is a :class:`PayloadError`."""
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(value, str) or not value.startswith(prefix) or not value[len(prefix) :].isdigit():
        raise PayloadError(f"expected a {kind} gid", messages={"id": repr(value)})
    return value[len(prefix) :]


def gid(kind: str, number: str) -> str:
    return f"gid://shopify/{kind}/{number}"


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError("a date is missing", messages={name: repr(value)})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError("a date is not ISO 8601", messages={name: value}) from None
    if parsed.tzinfo is None:
        raise PayloadError("a date has no offset", messages={name: value})
    return parsed.astimezone(UTC)


def _money(bag: Any) -> Decimal | None:
    if not isinstance(bag, dict):
        return None
    amount = (bag.get("shopMoney") or {}).get("amount")
    if amount is None:
        return None
    try:
        return Decimal(str(amount))
    except InvalidOperation:
        raise PayloadError("an amount is not a number", messages={"amount": repr(amount)}) from None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _address(data: Any) -> Address | None:
    if not isinstance(data, dict):
        return None
    name = (
        _text(data.get("name"))
        or " ".join(x for x in (_text(data.get("firstName")), _text(data.get("lastName"))) if x)
        or None
    )
    return Address(
        name=name,
        company=_text(data.get("company")),
        line1=_text(data.get("address1")),
        line2=_text(data.get("address2")),
        city=_text(data.get("city")),
        state=_text(data.get("provinceCode")) or _text(data.get("province")),
        postal_code=_text(data.get("zip")),
        country_code=_text(data.get("countryCodeV2")) or _text(data.get("countryCode")),
        phone=_text(data.get("phone")),
    )


def nodes(connection: Any) -> list[dict[str, Any]]:
    """The node objects of a connection in a reply (none when it is missing or malformed)."""
    if not isinstance(connection, dict):
        return []
    return [n for n in connection.get("nodes") or [] if isinstance(n, dict)]


def _groups(node: dict[str, Any]) -> list[dict[str, Any]]:
    return nodes(node.get("fulfillmentOrders"))


def derived_code(node: dict[str, Any]) -> str:
    """The order's status code, first that applies: ``CANCELLED``, ``FULFILLED``, ``PENDING`` (payment),
    ``ON_HOLD`` (the order's fulfillment status, or every group with something left on hold), else the
    order's ``displayFulfillmentStatus``."""
    fulfillment = str(node.get("displayFulfillmentStatus") or "UNFULFILLED")
    if node.get("cancelledAt"):
        return "CANCELLED"
    if fulfillment == "FULFILLED":
        return "FULFILLED"
    if node.get("displayFinancialStatus") == "PENDING":
        return "PENDING"
    waiting = [
        g
        for g in _groups(node)
        if g.get("status") not in ("CLOSED", "CANCELLED")
        and any(x.get("remainingQuantity") for x in nodes(g.get("lineItems")))
    ]
    if fulfillment == "ON_HOLD" or (waiting and all(g.get("status") == "ON_HOLD" for g in waiting)):
        return "ON_HOLD"
    return fulfillment


def _weight(line: dict[str, Any]) -> Weight | None:
    variant = line.get("variant") or {}
    weight = ((variant.get("inventoryItem") or {}).get("measurement") or {}).get("weight")
    if not isinstance(weight, dict) or weight.get("unit") not in WEIGHT_UNITS or weight.get("value") is None:
        return None
    value = Decimal(str(weight["value"]))
    return Weight(value.normalize() if value else Decimal(0), WEIGHT_UNITS[weight["unit"]])


def _line(line: dict[str, Any], remaining: Mapping[str, int], location: str | None) -> LineItem | None:
    line_id = gid_number(line.get("id"), "LineItem")
    quantity = line.get("currentQuantity")
    if not isinstance(quantity, int):
        raise PayloadError("a line has no quantity", messages={"currentQuantity": repr(quantity)})
    if quantity <= 0:
        return None  # removed by an order edit or a refund: nothing of it is in the order any more
    price = _money(line.get("originalUnitPriceSet"))
    if price is None:
        raise PayloadError("a line has no unit price", messages={"originalUnitPriceSet": "missing"})
    variant = line.get("variant") or {}
    options = tuple(
        ItemOption(str(o["name"]), str(o["value"]))
        for o in variant.get("selectedOptions") or []
        if isinstance(o, dict) and o.get("name") and o.get("value") and o.get("value") != "Default Title"
    )
    ships = bool(line.get("requiresShipping")) and not line.get("isGiftCard")
    product = line.get("product") or {}
    image = line.get("image") or {}
    return LineItem(
        line_item_id=line_id,
        sku=_text(line.get("sku")),
        name=_text(line.get("name")) or _text(line.get("title")) or line_id,
        quantity=quantity,
        unit_price=price,
        product_id=gid_number(product["id"], "Product") if product.get("id") else None,
        weight=_weight(line),
        image_url=_text(image.get("url")),
        options=options,
        location=location if ships else None,
        requires_shipping=ships,
        quantity_to_ship=remaining.get(line_id, 0) if ships else 0,
    )


def to_order(node: dict[str, Any], *, status: OrderStatus, code: str) -> Order | SkippedOrder:
    """Map one order node; ``status`` is ``code`` already mapped by the connection."""
    order_id = gid_number(node.get("id"), "Order")
    groups = []
    remaining: dict[str, int] = {}
    locations: dict[str, set[str]] = {}
    pickup: PickupPoint | None = None
    pickup_address: Address | None = None
    for group in _groups(node):
        location = group.get("assignedLocation") or {}
        lines = []
        for x in nodes(group.get("lineItems")):
            line_id = gid_number((x.get("lineItem") or {}).get("id"), "LineItem")
            left = int(x.get("remainingQuantity") or 0)
            lines.append(FulfillmentLine(line_id, int(x.get("totalQuantity") or 0), left))
            if group.get("status") not in ("CANCELLED",):
                remaining[line_id] = remaining.get(line_id, 0) + left
            if location.get("name"):
                locations.setdefault(line_id, set()).add(str(location["name"]))
        groups.append(
            FulfillmentGroup(
                group_id=gid_number(group.get("id"), "FulfillmentOrder"),
                lines=tuple(lines),
                location=_text(location.get("name")),
                status=_text(group.get("status")),
            )
        )
        method = (group.get("deliveryMethod") or {}).get("methodType")
        if method in PICKUP_METHODS and pickup is None:
            delivery = group.get("deliveryMethod") or {}
            if method == "PICK_UP":
                pickup = PickupPoint(
                    "shopify_local_pickup", str(location.get("name") or "store"), delivery.get("serviceCode")
                )
                pickup_address = _address({**location, "name": None})
            else:
                shipping_line = node.get("shippingLine") or {}
                pickup = PickupPoint(
                    str(shipping_line.get("source") or shipping_line.get("carrierIdentifier") or "pickup_point"),
                    str(delivery.get("sourceReference") or shipping_line.get("code") or ""),
                    delivery.get("serviceCode"),
                )
    items = []
    for raw in nodes(node.get("lineItems")):
        line_id = gid_number(raw.get("id"), "LineItem")
        where = locations.get(line_id)
        item = _line(raw, remaining, ", ".join(sorted(where)) if where else None)
        if item is not None:
            items.append(item)
    if not any(item.requires_shipping for item in items):
        return SkippedOrder(order_id, "nothing to ship: every line is a gift card or needs no shipping")
    ship_to = _address(node.get("shippingAddress"))
    if (ship_to is None or ship_to.is_empty()) and pickup is not None and pickup.carrier == "shopify_local_pickup":
        buyer_name = (_address(node.get("billingAddress")) or Address()).name
        ship_to = Address(
            name=buyer_name,
            line1=pickup_address.line1 if pickup_address else None,
            line2=pickup_address.line2 if pickup_address else None,
            city=pickup_address.city if pickup_address else None,
            postal_code=pickup_address.postal_code if pickup_address else None,
            country_code=pickup_address.country_code if pickup_address else None,
            company=pickup.point_id,
        )
    if ship_to is None or ship_to.is_empty():
        return SkippedOrder(order_id, "no ship-to address and no pickup")
    customer = node.get("customer") or {}
    shipping_line = node.get("shippingLine") or {}
    discounts_total = _money(node.get("totalDiscountsSet")) or Decimal(0)
    codes = tuple(str(c) for c in node.get("discountCodes") or [] if c)
    discounts = (
        (
            Discount(
                code=codes[0] if len(codes) == 1 else None, amount=discounts_total, description=", ".join(codes) or None
            ),
        )
        if discounts_total
        else ()
    )
    financial = _text(node.get("displayFinancialStatus"))
    grams = Decimal(0)
    for item in items:
        if item.weight is not None and item.requires_shipping:
            unit = {v: k for k, v in WEIGHT_UNITS.items()}[item.weight.unit]
            grams += item.weight.value * TO_GRAMS[unit] * item.quantity
    notes = (Note(NoteType.FROM_BUYER, node["note"].strip()),) if _text(node.get("note")) else ()
    return Order(
        channel="shopify",
        order_id=order_id,
        order_number=_text(node.get("name")) or order_id,
        status=status,
        channel_status=code,
        created_at=_time(node.get("createdAt"), "createdAt"),
        modified_at=_time(node.get("updatedAt"), "updatedAt"),
        ship_to=ship_to,
        currency=_text(node.get("currencyCode")),
        buyer=Buyer(
            name=_text(customer.get("displayName")) or ship_to.name,
            email=_text(node.get("email")) or _text(customer.get("email")),
            phone=_text(node.get("phone")) or _text(customer.get("phone")) or ship_to.phone,
            customer_id=gid_number(customer["id"], "Customer") if customer.get("id") else None,
        ),
        bill_to=_address(node.get("billingAddress")),
        items=tuple(items),
        payment=Payment(
            method=", ".join(str(g) for g in node.get("paymentGatewayNames") or []) or None,
            status=financial,
            amount_paid=_money(node.get("totalPriceSet")) if financial in ("PAID", "PARTIALLY_REFUNDED") else None,
            shipping_amount=_money(node.get("totalShippingPriceSet")),
            tax_amount=_money(node.get("totalTaxSet")),
            discounts=discounts,
            coupon_codes=codes,
        ),
        shipping=Shipping(
            requested_service=_text(shipping_line.get("title")),
            carrier_code=_text(shipping_line.get("carrierIdentifier")) or _text(shipping_line.get("code")),
            pickup_point=pickup,
        ),
        notes=notes,
        weight=Weight(grams.normalize(), WeightUnit.GRAM) if grams else None,
        fulfillment_groups=tuple(groups),
        tags=tuple(str(t) for t in node.get("tags") or []),
    )
