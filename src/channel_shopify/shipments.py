"""Shipment notifications: each package becomes one fulfillment, read before written.

1. Read the order's fulfillment orders (remaining quantities, locations) and fulfillments (tracking).
2. A fulfillment already carrying the tracking number is this package: ``already_sent`` when its
   carrier and URL agree, else a correction (``fulfillmentTrackingInfoUpdate``, never a second
   fulfillment). With nothing left to ship of the package's items, a fulfillment holding exactly those
   items is the package sent under an older tracking number: corrected the same way.
3. Otherwise ``fulfillmentCreate`` with ``lineItemsByFulfillmentOrder`` resolved from the current
   fulfillment orders. A package comes from one location: items spread over two are refused, naming
   them, and nothing is written. ``userErrors`` are a refusal with Shopify's words.

There is no idempotency key for ``fulfillmentCreate``: an unknown outcome (a timeout after sending)
is raised, and the next attempt starts again at step 1, which finds the fulfillment if it was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channel_core.errors import InvalidShipmentError
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, Shipment
from channel_shopify import documents as docs
from channel_shopify.carriers import tracking_company
from channel_shopify.mapping import gid, gid_number, nodes

__all__ = ["FIELDS_NOT_SENT", "FIELDS_SENT", "notify"]

logger = get_logger(__name__)
FIELDS_SENT = ("tracking_number", "carrier", "tracking_url", "items", "notify_buyer")
FIELDS_NOT_SENT = ("service", "ship_date", "shipping_cost", "notes_to_buyer")
READ_SHAPES = ((10, 50, 20, 50), (5, 20, 10, 20), (3, 10, 5, 10), (2, 5, 3, 5), (1, 3, 2, 3))
OPEN_GROUPS = frozenset({"OPEN", "IN_PROGRESS"})

if False:  # pragma: no cover - typing only
    from channel_shopify.connection import ShopifyConnection


@dataclass(frozen=True, slots=True)
class _GroupLine:
    group_id: str  # fulfillment order number
    group_line_id: str  # fulfillment order line item number
    line_id: str  # order line number
    sku: str | None
    remaining: int
    location: str
    group_status: str


def _read(connection: ShopifyConnection, order_id: str) -> dict[str, Any] | None:
    limit = min(float(connection.settings.max_query_cost), connection.client.bucket.maximum)
    shape = next((s for s in READ_SHAPES if docs.shipment_read_cost(*s) <= limit), READ_SHAPES[-1])
    groups, group_lines, fulfillments, fulfillment_lines = shape
    reply = connection.client.execute(
        "ChannelOrderForShipment",
        docs.ORDER_FOR_SHIPMENT,
        {
            "id": gid("Order", order_id),
            "groups": groups,
            "groupLines": group_lines,
            "fulfillments": fulfillments,
            "fulfillmentLines": fulfillment_lines,
        },
        cost=docs.shipment_read_cost(*shape),
    )
    order = reply.data.get("order")
    return order if isinstance(order, dict) else None


def _group_lines(order: dict[str, Any]) -> list[_GroupLine]:
    rows = []
    for group in nodes(order.get("fulfillmentOrders")):
        location = group.get("assignedLocation") or {}
        for line in nodes(group.get("lineItems")):
            item = line.get("lineItem") or {}
            rows.append(
                _GroupLine(
                    group_id=gid_number(group.get("id"), "FulfillmentOrder"),
                    group_line_id=gid_number(line.get("id"), "FulfillmentOrderLineItem"),
                    line_id=gid_number(item.get("id"), "LineItem"),
                    sku=item.get("sku"),
                    remaining=int(line.get("remainingQuantity") or 0),
                    location=str(location.get("name") or (location.get("location") or {}).get("id") or "?"),
                    group_status=str(group.get("status")),
                )
            )
    return rows


def _wanted(shipment: Shipment, rows: list[_GroupLine]) -> dict[str, int] | str:
    """Order line number -> quantity the package carries; a string says why the items do not fit."""
    if not shipment.items:
        wanted: dict[str, int] = {}
        for row in rows:
            if row.group_status in OPEN_GROUPS and row.remaining:
                wanted[row.line_id] = wanted.get(row.line_id, 0) + row.remaining
        return wanted
    wanted = {}
    for item in shipment.items:
        if item.line_item_id:
            line_id = item.line_item_id.rsplit("/", 1)[-1]
            if not any(r.line_id == line_id for r in rows):
                return f"the order has no line {item.line_item_id}"
        else:
            matches = {r.line_id for r in rows if r.sku and r.sku == item.sku}
            if len(matches) != 1:
                return f"sku {item.sku} matches {len(matches)} lines of the order (give line_item_id)"
            line_id = matches.pop()
        wanted[line_id] = wanted.get(line_id, 0) + item.quantity
    return wanted


def _fulfillment_lines(fulfillment: dict[str, Any]) -> dict[str, int]:
    lines: dict[str, int] = {}
    for line in nodes(fulfillment.get("fulfillmentLineItems")):
        line_id = gid_number((line.get("lineItem") or {}).get("id"), "LineItem")
        lines[line_id] = lines.get(line_id, 0) + int(line.get("quantity") or 0)
    return lines


def _tracking(fulfillment: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in fulfillment.get("trackingInfo") or [] if isinstance(t, dict)]


def notify(connection: ShopifyConnection, shipment: Shipment) -> NotificationResult:
    order_id = shipment.order_id.rsplit("/", 1)[-1]
    company, supported = tracking_company(shipment.carrier)
    if not supported:
        logger.warning(
            "carrier_not_supported_by_shopify",
            channel="shopify",
            carrier=shipment.carrier,
            hint="sent as free text: Shopify builds no tracking link for it",
        )
    number = shipment.tracking_number.strip()
    url = shipment.tracking_url.strip() if shipment.tracking_url else None
    notify_buyer = connection.settings.notify_customer if shipment.notify_buyer is None else shipment.notify_buyer
    order = _read(connection, order_id)
    if order is None:
        return NotificationResult(NotificationStatus.FAILED, message=f"order {order_id} does not exist in the shop")
    if order.get("cancelledAt") and not shipment.force:
        raise InvalidShipmentError(
            f"order {order_id} is cancelled in Shopify; nothing was sent (force the shipment to send it anyway)"
        )
    fulfillments = [
        f for f in order.get("fulfillments") or [] if isinstance(f, dict) and f.get("status") != "CANCELLED"
    ]
    for fulfillment in fulfillments:
        for tracking in _tracking(fulfillment):
            if (tracking.get("number") or "").strip() == number:
                if tracking.get("company") == company and (url is None or tracking.get("url") == url):
                    return NotificationResult(
                        NotificationStatus.ALREADY_SENT, message="the shop shows this tracking number"
                    )
                return _correct(connection, fulfillment, number, company, url, notify_buyer)
    rows = _group_lines(order)
    wanted = _wanted(shipment, rows)
    if isinstance(wanted, str):
        raise InvalidShipmentError(f"shipment for order {order_id}: {wanted}; nothing was sent")
    if not wanted:
        return NotificationResult(NotificationStatus.FAILED, message=f"order {order_id} has nothing left to ship")
    plan = _allocate(wanted, rows)
    if isinstance(plan, str):
        if shipment.items:  # the package may have gone out under an older tracking number: correct that one
            for fulfillment in fulfillments:
                if _fulfillment_lines(fulfillment) == wanted:
                    return _correct(connection, fulfillment, number, company, url, notify_buyer)
        return NotificationResult(NotificationStatus.FAILED, message=f"order {order_id}: {plan}")
    locations = sorted({row.location for row, _ in plan})
    if len(locations) > 1:
        raise InvalidShipmentError(
            f"shipment for order {order_id}: its items ship from {' and '.join(locations)}; one package comes from "
            "one location, so send one shipment per location (nothing was sent)"
        )
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row, quantity in plan:
        by_group.setdefault(row.group_id, []).append(
            {"id": gid("FulfillmentOrderLineItem", row.group_line_id), "quantity": quantity}
        )
    tracking_input: dict[str, Any] = {"number": number, "company": company}
    if url:
        tracking_input["url"] = url
    reply = connection.client.execute(
        "ChannelFulfillmentCreate",
        docs.FULFILLMENT_CREATE,
        {
            "fulfillment": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": gid("FulfillmentOrder", group), "fulfillmentOrderLineItems": lines}
                    for group, lines in by_group.items()
                ],
                "trackingInfo": tracking_input,
                "notifyCustomer": notify_buyer,
            }
        },
        cost=docs.MUTATION_COST,
        write=True,
    )
    return _result(reply.data.get("fulfillmentCreate"), "fulfillmentCreate", reply.errors)


def _allocate(wanted: dict[str, int], rows: list[_GroupLine]) -> list[tuple[_GroupLine, int]] | str:
    """Spread each line's quantity over the open fulfillment order lines that still hold it."""
    plan = []
    for line_id, quantity in wanted.items():
        left = quantity
        for row in rows:
            if row.line_id != line_id or row.group_status not in OPEN_GROUPS or not row.remaining or not left:
                continue
            take = min(left, row.remaining)
            plan.append((row, take))
            left -= take
        if left:
            held = [
                r.group_status
                for r in rows
                if r.line_id == line_id and r.remaining and r.group_status not in OPEN_GROUPS
            ]
            why = f" (held in a fulfillment order {held[0]})" if held else ""
            return f"line {line_id} has {quantity - left} of {quantity} left to ship{why}"
    return plan


def _correct(
    connection: ShopifyConnection,
    fulfillment: dict[str, Any],
    number: str,
    company: str,
    url: str | None,
    notify_buyer: bool,
) -> NotificationResult:
    tracking: dict[str, Any] = {"number": number, "company": company}
    if url:
        tracking["url"] = url
    reply = connection.client.execute(
        "ChannelTrackingUpdate",
        docs.TRACKING_UPDATE,
        {"id": fulfillment["id"], "tracking": tracking, "notify": notify_buyer},
        cost=docs.MUTATION_COST,
        write=True,
    )
    return _result(reply.data.get("fulfillmentTrackingInfoUpdate"), "fulfillmentTrackingInfoUpdate", reply.errors)


def _result(payload: Any, mutation: str, errors: tuple[dict[str, Any], ...] = ()) -> NotificationResult:
    if not isinstance(payload, dict):
        words = "; ".join(str(e.get("message")) for e in errors) or "no payload"
        return NotificationResult(NotificationStatus.FAILED, message=f"{mutation} failed: {words}")
    refusals = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    if refusals:
        words = "; ".join(f"{'.'.join(e.get('field') or []) or mutation}: {e.get('message')}" for e in refusals)
        return NotificationResult(NotificationStatus.FAILED, message=f"Shopify refused it: {words}")
    if not isinstance(payload.get("fulfillment"), dict):
        return NotificationResult(NotificationStatus.FAILED, message=f"{mutation} returned no fulfillment")
    return NotificationResult(NotificationStatus.SENT, fields_sent=FIELDS_SENT)
