"""Import from cassettes recorded against the sandbox: every mapped field, pickups, skips, paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channel_core import Channels, Note, NoteType, Order, OrderPage, OrderQuery, OrderStatus, PickupPoint
from channel_oxatis.sandbox import data
from tests.oxatis.conftest import open_recording

SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 2, tzinfo=UTC)
IMPORT_SANDBOX = {"count": 60}


@pytest.fixture(scope="module")
def imported(request: pytest.FixtureRequest) -> Iterator[list[OrderPage]]:
    oxatis = Channels.discover()["oxatis"]
    with open_recording(request.config, "import_60_orders", IMPORT_SANDBOX) as rec:
        settings = {
            **rec.settings,
            "page_size": 25,
            "stock_location_characteristic": "Emplacement",
            "status_mapping": {"awaiting_shipment": ["PRECOMMANDE"]},
        }
        with oxatis.connect(settings) as connection:
            pages = list(oxatis.fetch_orders(connection, OrderQuery(modified_since=SINCE, modified_until=UNTIL)))
            yield pages


def orders_by_id(pages: list[OrderPage]) -> dict[str, Order]:
    return {o.order_id: o for page in pages for o in page.orders}


def test_paging_streams_every_order_once_oldest_first(imported: list[OrderPage]) -> None:
    assert len(imported) == 3
    ids = [o.order_id for page in imported for o in page.orders] + [
        s.order_id for page in imported for s in page.skipped
    ]
    assert sorted(ids) == [str(data.order_id_for(n)) for n in range(1, 61)]
    created = [o.created_at for page in imported for o in page.orders]
    assert created == sorted(created)
    assert [p.checkpoint is None for p in imported] == [False, False, True]
    assert all(p.versions for p in imported)


def test_orders_without_ship_to_are_skipped_with_reason(imported: list[OrderPage]) -> None:
    skipped = {s.order_id: s.reason for page in imported for s in page.skipped}
    assert skipped == {
        "100007": "no ship-to address",
        "100032": "no ship-to address",
        "100057": "no ship-to address",
    }


def test_full_order_every_mapped_field(imported: list[OrderPage]) -> None:
    order = orders_by_id(imported)["100037"]
    wire = data.generate_order(7, 37, 60)
    # customer
    assert order.buyer.email == wire["UserEmail"]
    assert order.buyer.phone == wire["ShippingPhone"]
    assert order.buyer.customer_id == str(wire["UserOxID"])
    # ship-to with leading zeros kept
    assert order.ship_to.postal_code == wire["ShippingZipCode"]
    assert order.ship_to.country_code == "FR"
    assert order.ship_to.phone == wire["ShippingPhone"]
    # shipping method chosen, payment
    assert order.shipping.requested_service == wire["ShippingMethodName"]
    assert order.payment.method == (None if wire["PaymentMethodName"] == "NC" else wire["PaymentMethodName"])
    # discounts and coupons
    assert order.payment.coupon_codes == ("BIENVENUE10",)
    assert order.payment.discounts[0] == order.payment.discounts[0].__class__(
        "BIENVENUE10", Decimal("5.00"), "order discount"
    )
    # gift
    assert order.shipping.is_gift is True
    assert order.shipping.gift_message == "Joyeux anniversaire <3 & bises"
    # notes
    assert Note(NoteType.FROM_BUYER, "Merci de bien emballer : c'est fragile & précieux") in order.notes
    assert Note(NoteType.SHIPPING_INSTRUCTIONS, "Sonner à l'interphone, 2e étage") in order.notes
    assert Note(NoteType.GIFT_MESSAGE, "Joyeux anniversaire <3 & bises") in order.notes
    # weights, images, options, stock location
    assert order.weight is not None and order.weight.value == Decimal(wire["TotalWeight"]) and order.weight.unit == "g"
    first_line = wire["OrderItems"][0]
    line = order.items[0]
    assert line.sku == first_line["ItemSKU"]
    assert line.weight is not None and line.weight.value == Decimal(first_line["Weight"])
    assert line.image_url == first_line["ItemMainImageUrl"]
    product = data.PRODUCTS_BY_OXID[first_line["ItemOxID"]]
    assert line.location == product.location
    assert [(o.name, o.value) for o in line.options][: len(product.options)] == list(product.options)
    # bundle components follow their parent line
    bundled = [item for item in order.items if any(o.name == "bundle" for o in item.options)]
    assert [b.sku for b in bundled] == [b["ItemSKU"] for b in first_line["BundledItems"]]
    # money is Decimal, datetimes aware UTC and converted from Paris time
    assert isinstance(line.unit_price, Decimal)
    assert order.created_at.tzinfo is UTC
    assert order.created_at == wire["Date"].replace(tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris")).astimezone(
        UTC
    )


def test_internal_note_and_colissimo_pickup(imported: list[OrderPage]) -> None:
    order = orders_by_id(imported)["100013"]
    assert Note(NoteType.INTERNAL, "Client fidèle — ajouter un échantillon") in order.notes
    wire = data.generate_order(7, 13, 60)
    assert order.shipping.carrier_code == "colissimo"
    assert order.shipping.pickup_point == PickupPoint("colissimo", wire["ShippingParam2"], wire["ShippingParam1"])
    assert wire["ShippingParam1"] in {"BPR", "A2P", "CIT", "ACP"}


def test_mondial_relay_pickup(imported: list[OrderPage]) -> None:
    order = orders_by_id(imported)["100014"]
    wire = data.generate_order(7, 14, 60)
    assert order.shipping.pickup_point == PickupPoint("mondial_relay", wire["ShippingParam2"], None)
    assert order.shipping.pickup_point.point_id.startswith("0")  # leading zero kept


def test_colissimo_home_delivery_has_no_pickup_point(imported: list[OrderPage]) -> None:
    order = orders_by_id(imported)["100015"]
    assert order.shipping.carrier_code == "colissimo"
    assert order.shipping.pickup_point is None


def test_status_mapping_rules(imported: list[OrderPage]) -> None:
    orders = orders_by_id(imported)
    for n in range(1, 61):
        order = orders.get(str(data.order_id_for(n)))
        if order is None:
            continue
        wire = data.generate_order(7, n, 60)
        state = {sid: code for sid, code, _, _ in data.STATES}.get(int(wire.get("ProgressStateID") or 0))
        if state == "PRECOMMANDE":  # custom mapping given in settings
            assert (order.status, order.channel_status) == (OrderStatus.AWAITING_SHIPMENT, "PRECOMMANDE")
        elif state == "SST-SHIPPED":
            assert (order.status, order.channel_status) == (OrderStatus.SHIPPED, "SST-SHIPPED")
        elif state == "on_hold":
            assert order.status is OrderStatus.ON_HOLD
        else:  # no state, or an unmapped one (SST-NEW): derived from payment
            expected = {
                40: ("paid", OrderStatus.AWAITING_SHIPMENT),
                0: ("cancelled", OrderStatus.CANCELLED),
            }.get(wire["PaymentStatusCode"], ("unpaid", OrderStatus.AWAITING_PAYMENT))
            assert (order.channel_status, order.status) == expected


def test_addresses_from_block_lines_and_parts(imported: list[OrderPage]) -> None:
    orders = orders_by_id(imported)
    seen_styles = set()
    for n in (1, 2, 3):
        wire = data.generate_order(7, n, 60)
        order = orders[str(data.order_id_for(n))]
        if "ShippingAddress" in wire:
            seen_styles.add("block")
            assert order.ship_to.line1 == wire["ShippingAddress"].split("\r\n")[0]
        elif "ShippingAddressL1" in wire:
            seen_styles.add("lines")
            assert order.ship_to.line1 == wire["ShippingAddressL1"]
        else:
            seen_styles.add("parts")
            assert order.ship_to.line1 == wire["ShippingAddressStreet"]
    assert seen_styles == {"block", "lines", "parts"}
