"""Shipments as Shopify fulfillments: packages, partial shipments, corrections, refusals, unknown outcomes."""

from __future__ import annotations

import dataclasses
import random
import threading
from pathlib import Path

import pytest
import structlog

from channel_core import Channel, NotificationStatus, Shipment, ShipmentItem
from channel_core.errors import InvalidShipmentError, TransportError
from channel_core.sync import Notifier, SQLiteStore
from channel_shopify.sandbox import ShopifySandboxServer
from channel_shopify.sandbox.store import ShopOrder
from tests.shopify.conftest import DOMAIN, MakeSandbox, shop_settings

PARIS, LYON = 71001, 71002


def _three_lines(server: ShopifySandboxServer) -> ShopOrder:
    return server.shop(DOMAIN).place_order([("A", 2, PARIS), ("B", 1, PARIS), ("C", 3, LYON)])


def _item(order: ShopOrder, sku: str, quantity: int) -> ShipmentItem:
    line = next(x for x in order.lines if x.sku == sku)
    return ShipmentItem(line_item_id=str(line.id), sku=sku, quantity=quantity)


def test_three_packages_sent_by_eight_notifiers_make_exactly_three_fulfillments(
    make_sandbox: MakeSandbox, shopify: Channel, tmp_path: Path
) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    packages = [
        Shipment(order_id=str(order.id), tracking_number="PKG-A", carrier="Colissimo", items=(_item(order, "A", 2),)),
        Shipment(order_id=str(order.id), tracking_number="PKG-B", carrier="Colissimo", items=(_item(order, "B", 1),)),
        Shipment(order_id=str(order.id), tracking_number="PKG-C", carrier="DPD", items=(_item(order, "C", 3),)),
    ]
    barrier = threading.Barrier(8, timeout=60)
    statuses: list[str] = []
    lock = threading.Lock()

    def notifier(seed: int) -> None:
        with SQLiteStore(tmp_path / "ledger.sqlite3") as db, shopify.connect(shop_settings(server)) as connection:
            mine = Notifier(shopify, connection, db)
            barrier.wait()
            for shipment in random.Random(seed).sample(packages, 3):
                outcome = mine.notify(shipment)
                with lock:
                    statuses.append(outcome.result.status.value)

    threads = [threading.Thread(target=notifier, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses).count("sent") == 3 and len(statuses) == 24
    made = server.shop(DOMAIN).orders[order.id].fulfillments
    lines = {line.id: line.sku for line in order.lines}
    shipped = sorted((f.tracking[0][1], sorted((lines[lid], qty) for _, lid, qty in f.lines)) for f in made)
    assert shipped == [("PKG-A", [("A", 2)]), ("PKG-B", [("B", 1)]), ("PKG-C", [("C", 3)])]
    assert all(x.remaining == 0 for fo in order.fulfillment_orders for x in fo.lines)


def test_a_corrected_carrier_updates_the_fulfillment_instead_of_making_another(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    first = Shipment(order_id=str(order.id), tracking_number="6A999", carrier="DPD", items=(_item(order, "C", 3),))
    with shopify.connect(shop_settings(server)) as connection:
        assert shopify.notify_shipment(connection, first).status is NotificationStatus.SENT
        again = shopify.notify_shipment(connection, first)
        assert again.status is NotificationStatus.ALREADY_SENT
        corrected = Shipment(
            order_id=str(order.id), tracking_number="6A999", carrier="colissimo", items=(_item(order, "C", 3),)
        )
        assert shopify.notify_shipment(connection, corrected).status is NotificationStatus.SENT
    shop = server.shop(DOMAIN)
    assert len(shop.orders[order.id].fulfillments) == 1 and shop.tracking_updates == 1
    assert shop.orders[order.id].fulfillments[0].tracking == [("Colissimo", "6A999", None)]


def test_a_new_tracking_number_for_a_package_already_sent_corrects_it(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    items = (_item(order, "A", 2),)
    with shopify.connect(shop_settings(server)) as connection:
        shopify.notify_shipment(
            connection, Shipment(order_id=str(order.id), tracking_number="OLD1", carrier="UPS", items=items)
        )
        fixed = Shipment(order_id=str(order.id), tracking_number="NEW1", carrier="UPS", items=items)
        assert shopify.notify_shipment(connection, fixed).status is NotificationStatus.SENT
    made = server.shop(DOMAIN).orders[order.id].fulfillments
    assert len(made) == 1 and made[0].tracking == [("UPS", "NEW1", None)]


def test_a_package_from_two_locations_is_refused_naming_them(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    shipment = Shipment(
        order_id=str(order.id), tracking_number="X1", carrier="DPD", items=(_item(order, "A", 1), _item(order, "C", 1))
    )
    with shopify.connect(shop_settings(server)) as connection, pytest.raises(InvalidShipmentError) as caught:
        shopify.notify_shipment(connection, shipment)
    assert "Lyon store and Paris warehouse" in str(caught.value)
    assert order.fulfillments == []


def test_a_whole_order_ships_in_one_fulfillment_when_it_has_one_location(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox(orders=3)
    order = server.shop(DOMAIN).place_order([("A", 2, PARIS), ("B", 1, PARIS)])
    with shopify.connect(shop_settings(server)) as connection:
        result = shopify.notify_shipment(
            connection, Shipment(order_id=str(order.id), tracking_number="W1", carrier="GLS")
        )
    assert result.status is NotificationStatus.SENT and "items" in result.fields_sent
    assert [(qty) for _, _, qty in order.fulfillments[0].lines] == [2, 1]
    assert order.fulfillment_status() == "FULFILLED"


def test_shopifys_refusal_is_a_failure_with_its_words(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    shop = server.shop(DOMAIN)

    def merchant_holds_it(operation: str) -> None:  # between our read and our write
        if operation == "ChannelFulfillmentCreate":
            shop.hold(order.fulfillment_orders[0].id, "Address check")

    with shopify.connect(shop_settings(server)) as connection:
        server.config.before_request = merchant_holds_it
        result = shopify.notify_shipment(
            connection,
            Shipment(order_id=str(order.id), tracking_number="H1", carrier="DPD", items=(_item(order, "A", 1),)),
        )
    assert result.status is NotificationStatus.FAILED
    assert "has an unfulfillable status= on_hold" in (result.message or "")
    assert order.fulfillments == []


def test_a_cancelled_order_is_refused_unless_forced(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    server.shop(DOMAIN).cancel(order.id)
    shipment = Shipment(order_id=str(order.id), tracking_number="Z1", carrier="DPD", items=(_item(order, "A", 1),))
    with shopify.connect(shop_settings(server)) as connection:
        with pytest.raises(InvalidShipmentError, match="cancelled"):
            shopify.notify_shipment(connection, shipment)
        forced = shopify.notify_shipment(connection, dataclasses.replace(shipment, force=True))
    assert forced.status is NotificationStatus.FAILED and "held in a fulfillment order CLOSED" in (forced.message or "")


def test_carriers_are_spelled_as_shopify_spells_them_and_unknown_ones_go_as_text(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    with shopify.connect(shop_settings(server)) as connection, structlog.testing.capture_logs() as logs:
        shopify.notify_shipment(
            connection,
            Shipment(
                order_id=str(order.id), tracking_number="K1", carrier="mondial relay", items=(_item(order, "A", 2),)
            ),
        )
        shopify.notify_shipment(
            connection,
            Shipment(
                order_id=str(order.id), tracking_number="K2", carrier="Coursier Martin", items=(_item(order, "B", 1),)
            ),
        )
    companies = [f.tracking[0][0] for f in order.fulfillments]
    assert companies == ["Mondial Relay", "Coursier Martin"]
    assert [e["carrier"] for e in logs if e["event"] == "carrier_not_supported_by_shopify"] == ["Coursier Martin"]


def test_notify_buyer_is_honoured(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    with shopify.connect(shop_settings(server)) as connection:
        for sku, quantity, tell in (("A", 2, True), ("B", 1, None)):
            shopify.notify_shipment(
                connection,
                Shipment(
                    order_id=str(order.id),
                    tracking_number=f"N{sku}",
                    carrier="DPD",
                    items=(_item(order, sku, quantity),),
                    notify_buyer=tell,
                ),
            )
    assert [f.notified for f in order.fulfillments] == [True, False]


def test_an_unknown_outcome_is_read_again_before_any_retry(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=3)
    order = _three_lines(server)
    shipment = Shipment(order_id=str(order.id), tracking_number="U1", carrier="DPD", items=(_item(order, "C", 3),))
    with shopify.connect(shop_settings(server, retry_backoff=0.0)) as connection:
        server.add_fault("reset_after_apply", after=1)  # the read goes through; the write is applied, its reply lost
        with pytest.raises(TransportError):
            shopify.notify_shipment(connection, shipment)
        assert shopify.notify_shipment(connection, shipment).status is NotificationStatus.ALREADY_SENT
    assert len(order.fulfillments) == 1
