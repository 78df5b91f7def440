"""Mapping Shopify order nodes: real reply shapes from the captures, the status precedence, pickups,
lines that need no shipping, cancelled orders and fulfillment groups."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import execute_sync, parse

from channel_core import Order, OrderStatus, SkippedOrder, StatusMapping
from channel_shopify import documents as docs
from channel_shopify.mapping import DEFAULT_STATUS_MAPPING, derived_code, to_order
from channel_shopify.sandbox.graph import root_value
from channel_shopify.sandbox.server import sandbox_schema
from channel_shopify.sandbox.store import SandboxShop, ShopOrder
from tests.shopify.simulation import SimClock

CAPTURES = Path(
    os.environ.get("SHOPIFY_CAPTURES") or Path(__file__).resolve().parents[3] / "shared" / "shopify" / "captures"
)
MAPPING = StatusMapping.merged(DEFAULT_STATUS_MAPPING)
ADDRESS = {"name": "Ada Martin", "address1": "3 rue Vide", "city": "Lyon", "zip": "69002", "countryCodeV2": "FR"}


def _map(node: dict[str, Any]) -> Order | SkippedOrder:
    code = derived_code(node)
    status = MAPPING.status_for(code)
    assert status is not None, code
    return to_order(node, status=status, code=code)


def _orders_in(data: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(data, dict):
        if str(data.get("id", "")).startswith("gid://shopify/Order/") and "lineItems" in data:
            found.append(data)
        for value in data.values():
            found += _orders_in(value)
    elif isinstance(data, list):
        for value in data:
            found += _orders_in(value)
    return found


def test_order_nodes_of_real_replies_map_to_their_ids_and_amounts() -> None:
    if not CAPTURES.is_dir():
        if os.environ.get("CHANNEL_REQUIRE_SHOPIFY_SCHEMA") == "1":
            pytest.fail(f"Shopify captures are required here but missing at {CAPTURES}")
        pytest.skip(f"Shopify captures not found at {CAPTURES}")
    checked = 0
    for path in sorted(CAPTURES.glob("2026-04_orders_*.json")):
        for node in _orders_in(json.loads(path.read_text(encoding="utf-8"))):
            lines = node["lineItems"]["nodes"]
            if not lines or "currentQuantity" not in lines[0] or "originalUnitPriceSet" not in lines[0]:
                continue
            shaped = {"updatedAt": "2026-07-02T23:39:19Z", "createdAt": "2026-07-02T23:39:19Z", **node}
            shaped.setdefault("displayFulfillmentStatus", "UNFULFILLED")
            for line in lines:
                line.setdefault("requiresShipping", True)
            live = [x for x in lines if x["currentQuantity"] > 0]
            skipped = _map(shaped)
            if not any(x["requiresShipping"] for x in live):
                assert isinstance(skipped, SkippedOrder) and "nothing to ship" in skipped.reason
                continue
            assert isinstance(skipped, SkippedOrder) and "ship-to" in skipped.reason  # no address in the capture
            order = _map({**shaped, "shippingAddress": ADDRESS})
            assert isinstance(order, Order)
            assert order.order_id == node["id"].rsplit("/", 1)[1] and order.order_number == node["name"]
            assert [i.line_item_id for i in order.items] == [x["id"].rsplit("/", 1)[1] for x in live]
            assert [i.unit_price for i in order.items] == [
                Decimal(x["originalUnitPriceSet"]["shopMoney"]["amount"]) for x in live
            ]
            checked += 1
    assert checked >= 2


def _node(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "gid://shopify/Order/1",
        "name": "#1",
        "createdAt": "2026-11-01T10:00:00Z",
        "updatedAt": "2026-11-01T10:00:00Z",
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "shippingAddress": ADDRESS,
        "lineItems": {"nodes": []},
        "fulfillmentOrders": {"nodes": []},
    }
    return {**base, **fields}


def _group(status: str, remaining: int) -> dict[str, Any]:
    line = {"id": "gid://shopify/FulfillmentOrderLineItem/9", "totalQuantity": 2, "remainingQuantity": remaining}
    return {
        "id": "gid://shopify/FulfillmentOrder/8",
        "status": status,
        "lineItems": {"nodes": [{**line, "lineItem": {"id": "gid://shopify/LineItem/7"}}]},
    }


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"cancelledAt": "2026-11-02T00:00:00Z", "displayFulfillmentStatus": "FULFILLED"}, "CANCELLED"),
        ({"displayFulfillmentStatus": "FULFILLED", "displayFinancialStatus": "PENDING"}, "FULFILLED"),
        ({"displayFinancialStatus": "PENDING", "displayFulfillmentStatus": "ON_HOLD"}, "PENDING"),
        ({"displayFulfillmentStatus": "ON_HOLD"}, "ON_HOLD"),
        ({"fulfillmentOrders": {"nodes": [_group("ON_HOLD", 2), _group("CLOSED", 0)]}}, "ON_HOLD"),
        ({"fulfillmentOrders": {"nodes": [_group("ON_HOLD", 2), _group("OPEN", 1)]}}, "UNFULFILLED"),
        (
            {"displayFinancialStatus": "AUTHORIZED", "displayFulfillmentStatus": "PARTIALLY_FULFILLED"},
            "PARTIALLY_FULFILLED",
        ),
    ],
)
def test_the_status_precedence(fields: dict[str, Any], code: str) -> None:
    assert derived_code(_node(**fields)) == code


def _shop() -> SandboxShop:
    return SandboxShop(
        "map-shop.myshopify.com",
        shop_id=9,
        clock=SimClock(__import__("datetime").datetime(2026, 11, 5, tzinfo=__import__("datetime").UTC)),
    )


def _read(shop: SandboxShop, order: ShopOrder) -> Order | SkippedOrder:
    root = root_value(shop, depth_cap=10**6, precision="exact", listing="all", scopes=shop.scopes)
    variables = {"id": order.gid, "lines": 50, "groups": 10, "groupLines": 50}
    result = execute_sync(sandbox_schema(), parse(docs.ORDER_ONE), root_value=root, variable_values=variables)
    assert not result.errors and result.data is not None
    return _map(result.data["order"])


def test_a_cancelled_order_is_imported_with_its_remaining_quantities() -> None:
    shop = _shop()
    placed = shop.place_order([("A", 2, 71001), ("B", 1, 71002)])
    shop.cancel(placed.id)
    order = _read(shop, placed)
    assert isinstance(order, Order) and order.status is OrderStatus.CANCELLED
    assert [i.quantity_to_ship for i in order.items] == [2, 1]
    assert {g.status for g in order.fulfillment_groups} == {"CLOSED"}
    assert [(g.location, [(x.quantity, x.remaining) for x in g.lines]) for g in order.fulfillment_groups] == [
        ("Paris warehouse", [(2, 2)]),
        ("Lyon store", [(1, 1)]),
    ]


def test_groups_and_quantities_to_ship_follow_partial_fulfillments() -> None:
    shop = _shop()
    placed = shop.place_order([("A", 3, 71001), ("B", 1, 71001)])
    group = placed.fulfillment_orders[0]
    shop.fulfill(placed.id, [(group.id, [(group.lines[0].id, 2)])], tracking=("DPD", "1", None))
    order = _read(shop, placed)
    assert isinstance(order, Order) and order.channel_status == "PARTIALLY_FULFILLED"
    assert order.status is OrderStatus.AWAITING_SHIPMENT
    assert [(i.sku, i.quantity, i.quantity_to_ship, i.location) for i in order.items] == [
        ("A", 3, 1, "Paris warehouse"),
        ("B", 1, 1, "Paris warehouse"),
    ]
    assert order.weight is not None and order.weight.value == Decimal(1000)  # 4 x 250 g


def test_local_pickup_is_a_pickup_at_the_location_never_skipped() -> None:
    shop = _shop()
    placed = shop.place_order([("A", 1, 71002)], method="PICK_UP")
    placed.ship_to = None
    order = _read(shop, placed)
    assert isinstance(order, Order)
    assert order.shipping.pickup_point is not None and order.shipping.pickup_point.carrier == "shopify_local_pickup"
    assert order.ship_to.city == "Lyon" and order.ship_to.company == "Lyon store"


def test_an_order_with_nothing_to_ship_is_skipped_and_gift_cards_stay_unshipped_lines() -> None:
    shop = _shop()
    placed = shop.place_order([("A", 1, 71001)])
    gift = placed.lines[0]
    gift.requires_shipping, gift.is_gift_card = False, True
    placed.fulfillment_orders = []
    skipped = _read(shop, placed)
    assert isinstance(skipped, SkippedOrder) and "nothing to ship" in skipped.reason
    mixed = shop.place_order([("A", 1, 71001), ("G", 1, 71001)])
    mixed.lines[1].requires_shipping, mixed.lines[1].is_gift_card = False, True
    mixed.fulfillment_orders[0].lines = mixed.fulfillment_orders[0].lines[:1]
    order = _read(shop, mixed)
    assert isinstance(order, Order)
    assert [(i.sku, i.requires_shipping, i.quantity_to_ship) for i in order.items] == [("A", True, 1), ("G", False, 0)]
