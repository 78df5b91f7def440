"""The shop's data as the GraphQL executor sees it: a root value of plain dicts and resolver callables.

graphql-core's default resolver reads a dict's key, and calls it when it is callable (with the
field's arguments), so connections and fields with arguments are small functions here and every
other field is data. Names and shapes follow the subset SDL (``schema.graphql``) and the captures.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channel_shopify.sandbox.store import (
    LOCATION_ADDRESSES,
    Fulfillment,
    FulfillmentOrder,
    Line,
    SandboxShop,
    ShopOrder,
    UserErrors,
)

__all__ = ["PaginationDepthError", "root_value"]

SEARCH_TERM = re.compile(r"(\w+):(>=|<=|>|<)?'?([^'\s]+)'?")


class PaginationDepthError(Exception):
    """Paging deeper than the connection's cap (25,000 on Shopify; the ``depth_cap`` switch)."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": str(amount.quantize(Decimal("0.01"))), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _page(items: list[Any], first: int | None, after: str | None, key: Any) -> tuple[list[Any], dict[str, Any]]:
    start = 0
    if after:
        start = int(_decode(after).get("o", 0))
    size = 50 if first is None else first
    chosen = items[start : start + size]
    end = start + len(chosen)
    info = {
        "hasNextPage": end < len(items),
        "hasPreviousPage": start > 0,
        "startCursor": _encode({"o": start}) if chosen else None,
        "endCursor": _encode({"o": end}) if chosen else None,
    }
    return chosen, info


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def _decode(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise ValueError("Invalid cursor for current pagination sort.") from None
    if not isinstance(data, dict):
        raise ValueError("Invalid cursor for current pagination sort.")
    return data


def _address(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else dict(data)


def _line(shop: SandboxShop, order: ShopOrder, line: Line) -> dict[str, Any]:
    unit = "GRAMS"
    return {
        "id": f"gid://shopify/LineItem/{line.id}",
        "sku": line.sku,
        "name": line.name,
        "title": line.title,
        "variantTitle": line.variant_title,
        "quantity": line.quantity,
        "currentQuantity": line.current_quantity,
        "unfulfilledQuantity": sum(
            x.remaining for fo in order.fulfillment_orders for x in fo.lines if x.line_id == line.id
        ),
        "requiresShipping": line.requires_shipping,
        "isGiftCard": line.is_gift_card,
        "originalUnitPriceSet": _money(line.price, order.currency),
        "variant": {
            "id": f"gid://shopify/ProductVariant/{line.variant_id}",
            "title": line.variant_title or "Default Title",
            "selectedOptions": [{"name": n, "value": v} for n, v in line.options],
            "inventoryItem": {
                "id": f"gid://shopify/InventoryItem/{line.variant_id + 1}",
                "measurement": {
                    "id": f"gid://shopify/InventoryItemMeasurement/{line.variant_id + 2}",
                    "weight": {"unit": unit, "value": float(line.grams)},
                },
            },
        },
        "product": {"id": f"gid://shopify/Product/{line.product_id}"},
        "image": {"url": line.image} if line.image else None,
    }


def _location(location_id: int) -> dict[str, Any]:
    from channel_shopify.sandbox.store import LOCATIONS

    return {"id": f"gid://shopify/Location/{location_id}", "name": LOCATIONS.get(location_id, str(location_id))}


def _fulfillment_order(shop: SandboxShop, order: ShopOrder, fo: FulfillmentOrder) -> dict[str, Any]:
    lines = {line.id: line for line in order.lines}

    def line_items(info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
        chosen, page = _page(fo.lines, first, after, None)
        return {
            "nodes": [
                {
                    "id": f"gid://shopify/FulfillmentOrderLineItem/{x.id}",
                    "totalQuantity": x.total,
                    "remainingQuantity": x.remaining,
                    "lineItem": _line(shop, order, lines[x.line_id]),
                }
                for x in chosen
            ],
            "pageInfo": page,
        }

    location = _location(fo.location_id)
    return {
        "id": f"gid://shopify/FulfillmentOrder/{fo.id}",
        "orderId": order.gid,
        "status": fo.status,
        "requestStatus": fo.request_status,
        "updatedAt": _iso(fo.updated_at),
        "assignedLocation": {
            "name": location["name"],
            "address2": None,
            "province": None,
            "phone": None,
            **LOCATION_ADDRESSES.get(fo.location_id, {"countryCode": "FR"}),
            "location": location,
        },
        "deliveryMethod": {
            "id": f"gid://shopify/DeliveryMethod/{fo.id + 7}",
            "methodType": fo.method,
            "serviceCode": (order.shipping_line or {}).get("code"),
            "presentedName": (order.shipping_line or {}).get("title"),
            "sourceReference": (order.shipping_line or {}).get("code") if fo.method == "PICKUP_POINT" else None,
        },
        "fulfillmentHolds": [{"id": f"gid://shopify/FulfillmentHold/{fo.id + 3}", "reasonNotes": fo.hold}]
        if fo.status == "ON_HOLD"
        else [],
        "lineItems": line_items,
    }


def _fulfillment(shop: SandboxShop, order: ShopOrder, fulfillment: Fulfillment) -> dict[str, Any]:
    lines = {line.id: line for line in order.lines}

    def tracking(info: Any, first: int | None = None) -> list[dict[str, Any]]:
        rows = fulfillment.tracking[: first or None]
        return [{"company": c, "number": n, "url": u} for c, n, u in rows]

    def line_items(info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
        chosen, page = _page(fulfillment.lines, first, after, None)
        return {
            "nodes": [
                {
                    "id": f"gid://shopify/FulfillmentLineItem/{fid}",
                    "quantity": qty,
                    "lineItem": _line(shop, order, lines[lid]),
                }
                for fid, lid, qty in chosen
            ],
            "pageInfo": page,
        }

    return {
        "id": f"gid://shopify/Fulfillment/{fulfillment.id}",
        "name": fulfillment.name,
        "status": fulfillment.status,
        "createdAt": _iso(fulfillment.created_at),
        "location": _location(fulfillment.location_id),
        "trackingInfo": tracking,
        "fulfillmentLineItems": line_items,
    }


def order_node(shop: SandboxShop, order: ShopOrder) -> dict[str, Any]:
    shipping = order.shipping_line

    def line_items(info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
        chosen, page = _page(order.lines, first, after, None)
        return {"nodes": [_line(shop, order, x) for x in chosen], "pageInfo": page}

    def fulfillment_orders(info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
        visible = [fo for fo in order.fulfillment_orders]
        chosen, page = _page(visible, first, after, None)
        return {"nodes": [_fulfillment_order(shop, order, fo) for fo in chosen], "pageInfo": page}

    def fulfillments(info: Any, first: int | None = None) -> list[dict[str, Any]]:
        return [_fulfillment(shop, order, f) for f in order.fulfillments[: first or None]]

    total_discounts = _money(order.discount_total, order.currency)
    return {
        "id": order.gid,
        "name": order.name,
        "createdAt": _iso(order.created_at),
        "updatedAt": _iso(order.updated_at),
        "processedAt": _iso(order.created_at),
        "cancelledAt": _iso(order.cancelled_at) if order.cancelled_at else None,
        "closed": order.closed,
        "displayFinancialStatus": order.financial,
        "displayFulfillmentStatus": order.fulfillment_status(),
        "email": order.email,
        "phone": order.phone,
        "note": order.note,
        "tags": list(order.tags),
        "currencyCode": order.currency,
        "customer": {
            "id": f"gid://shopify/Customer/{order.customer['id']}",
            **{k: v for k, v in order.customer.items() if k != "id"},
        }
        if order.customer
        else None,
        "shippingAddress": _address(order.ship_to),
        "billingAddress": _address(order.bill_to),
        "shippingLine": {
            "title": shipping["title"],
            "code": shipping["code"],
            "carrierIdentifier": shipping["carrier"],
            "source": shipping["source"],
            "originalPriceSet": _money(Decimal(shipping["price"]), order.currency),
        }
        if shipping
        else None,
        "discountCodes": list(order.discount_codes),
        "totalDiscountsSet": total_discounts,
        "totalShippingPriceSet": _money(order.shipping_price, order.currency),
        "totalTaxSet": _money(order.tax, order.currency),
        "totalPriceSet": _money(order.total, order.currency),
        "paymentGatewayNames": list(order.gateways),
        "requiresShipping": any(x.requires_shipping for x in order.lines),
        "lineItems": line_items,
        "fulfillmentOrders": fulfillment_orders,
        "fulfillments": fulfillments,
    }


def _terms(search: str | None, precision: str) -> list[tuple[str, str, datetime]]:
    """The ``updated_at`` / ``created_at`` bounds of a search; other filters are ignored, as Shopify ignores a
    filter it does not know (with a warning)."""
    terms = []
    for name, op, raw in SEARCH_TERM.findall(search or ""):
        if name not in ("updated_at", "created_at"):
            continue
        bound = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        terms.append((name, op or "=", bound.replace(microsecond=0) if precision == "second" else bound))
    return terms


def _matches(terms: list[tuple[str, str, datetime]], stamps: dict[str, datetime], precision: str) -> bool:
    for name, op, bound in terms:
        value = stamps[name].replace(microsecond=0) if precision == "second" else stamps[name]
        ok = {
            ">=": value >= bound,
            ">": value > bound,
            "<=": value <= bound,
            "<": value < bound,
            "=": value == bound,
        }[op]
        if not ok:
            return False
    return True


def root_value(
    shop: SandboxShop,
    *,
    depth_cap: int,
    precision: str,
    listing: str,
    scopes: list[str],
    subscriptions: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The query and mutation roots for one request to ``shop``; ``subscriptions`` is the shop's list of
    ``(topic, url)`` webhook subscriptions, which ``webhookSubscriptionCreate`` appends to."""
    subs = subscriptions if subscriptions is not None else []

    def subscription(index: int) -> dict[str, Any]:
        topic, url = subs[index]
        return {
            "id": f"gid://shopify/WebhookSubscription/{9000 + index}",
            "topic": topic.replace("/", "_").upper(),
            "uri": url,
            "format": "JSON",
            "createdAt": _iso(shop.clock()),
        }

    def webhook_subscriptions(
        info: Any, first: int | None = None, after: str | None = None, uri: str | None = None, topics: Any = None
    ) -> dict[str, Any]:
        chosen = [i for i, (t, u) in enumerate(subs) if (uri is None or u == uri)]
        page, info_ = _page(chosen, first, after, None)
        return {"nodes": [subscription(i) for i in page], "pageInfo": info_}

    def webhook_create(info: Any, topic: str, webhookSubscription: dict[str, Any]) -> dict[str, Any]:
        url = webhookSubscription.get("uri")
        if not url or not str(url).startswith(("http://", "https://")):
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}],
            }
        from channel_shopify.webhooks import topic_name  # Shopify's own pairs of enum value and topic

        name = topic_name(topic)
        if (name, url) in subs:
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "uri"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
        subs.append((name, str(url)))
        return {"webhookSubscription": subscription(len(subs) - 1), "userErrors": []}

    def orders(
        info: Any,
        first: int | None = None,
        after: str | None = None,
        reverse: bool | None = None,
        sortKey: str | None = None,
        query: str | None = None,
    ) -> dict[str, Any]:
        if first is None:
            raise ValueError("you must provide one of first or last")
        if first > 250:
            raise ValueError("The maximum number of items per page is 250.")
        now = shop.clock()
        terms = _terms(query, precision)
        rows = []
        for order in shop.orders.values():
            indexed = shop.indexed_updated_at(order, now)
            if indexed is None:
                continue
            if listing == "open" and (order.cancelled_at or order.closed):
                continue
            stamps = {"updated_at": indexed, "created_at": order.created_at}
            if _matches(terms, stamps, precision):
                key = {"UPDATED_AT": indexed, "CREATED_AT": order.created_at, "PROCESSED_AT": order.created_at}.get(
                    sortKey or "ID"
                )
                rows.append(((key or datetime.min.replace(tzinfo=UTC), order.id), order))
        rows.sort(key=lambda row: row[0], reverse=bool(reverse))
        depth = 0
        if after:
            mark = _decode(after)
            depth = int(mark.get("d", 0))
            last = (datetime.fromisoformat(mark["k"]), int(mark["i"])) if "k" in mark else None
            if last is not None:
                rows = [r for r in rows if (r[0] < last if reverse else r[0] > last)]
        if depth + first > depth_cap:
            raise PaginationDepthError(
                f"Pagination is limited to {depth_cap} records; narrow the query to read further."
            )
        chosen = rows[:first]
        nodes = [order_node(shop, order) for _, order in chosen]
        end = None
        if chosen:
            key, order_id = chosen[-1][0]
            end = _encode({"k": key.isoformat(), "i": order_id, "d": depth + len(chosen)})
        return {
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": len(rows) > first,
                "hasPreviousPage": depth > 0,
                "startCursor": None,
                "endCursor": end,
            },
        }

    def order(info: Any, id: str) -> dict[str, Any] | None:
        number = _gid_number(id, "Order")
        found = shop.orders.get(number) if number is not None else None
        return order_node(shop, found) if found else None

    def fulfillment_order(info: Any, id: str) -> dict[str, Any] | None:
        found = shop.find_fo(_gid_number(id, "FulfillmentOrder") or -1)
        return _fulfillment_order(shop, found[0], found[1]) if found else None

    def fulfillment_create(info: Any, fulfillment: dict[str, Any], message: str | None = None) -> dict[str, Any]:
        requests = []
        order_ids = set()
        for group in fulfillment["lineItemsByFulfillmentOrder"]:
            fo_id = _gid_number(group["fulfillmentOrderId"], "FulfillmentOrder") or -1
            found = shop.find_fo(fo_id)
            if found is not None:
                order_ids.add(found[0].id)
            lines = group.get("fulfillmentOrderLineItems")
            requests.append(
                (
                    fo_id,
                    None
                    if lines is None
                    else [(_gid_number(x["id"], "FulfillmentOrderLineItem") or -1, x["quantity"]) for x in lines],
                )
            )
        tracking = fulfillment.get("trackingInfo") or {}
        number = tracking.get("number") or next(iter(tracking.get("numbers") or []), None)
        url = tracking.get("url") or next(iter(tracking.get("urls") or []), None)
        if len(order_ids) > 1:
            return {
                "fulfillment": None,
                "userErrors": [
                    {"field": ["fulfillment"], "message": "All fulfillment orders must belong to the same order."}
                ],
            }
        try:
            if not order_ids:
                raise UserErrors([{"field": ["fulfillment"], "message": "Fulfillment order does not exist."}])
            order_id = order_ids.pop()
            created = shop.fulfill(
                order_id,
                requests,
                tracking=(tracking.get("company"), number, url),
                notify=bool(fulfillment.get("notifyCustomer")),
            )
        except UserErrors as exc:
            return {"fulfillment": None, "userErrors": exc.errors}
        return {"fulfillment": _fulfillment(shop, shop.orders[order_id], created), "userErrors": []}

    def tracking_update(
        info: Any, fulfillmentId: str, trackingInfoInput: dict[str, Any], notifyCustomer: bool | None = None
    ) -> dict[str, Any]:
        number = trackingInfoInput.get("number") or next(iter(trackingInfoInput.get("numbers") or []), None)
        url = trackingInfoInput.get("url") or next(iter(trackingInfoInput.get("urls") or []), None)
        try:
            order, updated = shop.update_tracking(
                _gid_number(fulfillmentId, "Fulfillment") or -1,
                (trackingInfoInput.get("company"), number, url),
                notify=bool(notifyCustomer),
            )
        except UserErrors as exc:
            return {"fulfillment": None, "userErrors": exc.errors}
        return {"fulfillment": _fulfillment(shop, order, updated), "userErrors": []}

    return {
        "shop": {
            "id": f"gid://shopify/Shop/{shop.shop_id}",
            "name": shop.name,
            "myshopifyDomain": shop.domain,
            "currencyCode": "EUR",
            "weightUnit": "KILOGRAMS",
        },
        "currentAppInstallation": {"accessScopes": [{"handle": s, "description": s.replace("_", " ")} for s in scopes]},
        "orders": orders,
        "order": order,
        "fulfillmentOrder": fulfillment_order,
        "webhookSubscriptions": webhook_subscriptions,
        "webhookSubscriptionCreate": webhook_create,
        "fulfillmentCreate": fulfillment_create,
        "fulfillmentTrackingInfoUpdate": tracking_update,
    }


def _gid_number(gid: str, kind: str) -> int | None:
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(gid, str) or not gid.startswith(prefix) or not gid[len(prefix) :].isdigit():
        return None
    return int(gid[len(prefix) :])
