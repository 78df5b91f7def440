"""Mapping rules in isolation: addresses, time zones, statuses, pickups, discounts."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channel_core import OrderStatus, SkippedOrder, StatusMapping, UnmappedCodes
from channel_oxatis.mapping import DEFAULT_STATUS_MAPPING, MappingContext, summary_version, to_order


def ctx(**overrides: Any) -> MappingContext:
    base: dict[str, Any] = {
        "tz": zoneinfo.ZoneInfo("Europe/Paris"),
        "account_country": "FR",
        "states_by_id": {72802: "SST-SHIPPED", 72801: "SST-NEW"},
        "status_mapping": StatusMapping.merged(DEFAULT_STATUS_MAPPING),
        "shipped_code": "SST-SHIPPED",
        "unmapped": UnmappedCodes(),
    }
    return MappingContext(**{**base, **overrides})


def order(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "OxID": 7,
        "Date": datetime(2026, 7, 1, 14, 0),
        "ShippingAddressStreet": "3 rue Haute",
        "ShippingZipCode": "01000",
        "ShippingCity": "Bourg",
        "PaymentStatusCode": 40,
    }
    return {**base, **fields}


def test_naive_store_time_is_converted_to_utc() -> None:
    result = to_order(order(), ctx())
    assert not isinstance(result, SkippedOrder)
    assert result.created_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # Paris summer time is UTC+2
    utc_store = to_order(order(), ctx(tz=UTC))
    assert not isinstance(utc_store, SkippedOrder)
    assert utc_store.created_at == datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


def test_address_block_wins_over_lines_and_parts_and_long_blocks_fold_into_line3() -> None:
    result = to_order(
        order(ShippingAddress="1 a\r\n2 b\r\n3 c\r\n4 d", ShippingAddressL1="ignored", ShippingCountryName="France"),
        ctx(),
    )
    assert not isinstance(result, SkippedOrder)
    assert (result.ship_to.line1, result.ship_to.line2, result.ship_to.line3) == ("1 a", "2 b", "3 c, 4 d")
    assert result.ship_to.country_code == "FR"
    assert result.ship_to.postal_code == "01000"


def test_address_lines_then_standardized_parts_for_each_address() -> None:
    result = to_order(
        order(
            ShippingAddressL1=" ",
            ShippingAddressL2="2 b",
            ShippingAddressL4="4 d",
            BillingAddressStreet="9 rue Basse",
            BillingAddressBuilding="Bât. C",
            BillingAddressFloor="2e étage",
            BillingAddressOtherInfo="code 1234",
            BillingCountryName="Belgique",
            BillingStateName=" ",
            BillingState="Liège",
        ),
        ctx(),
    )
    assert not isinstance(result, SkippedOrder)
    assert (result.ship_to.line1, result.ship_to.line2, result.ship_to.line3) == ("2 b", "4 d", None)
    assert result.bill_to is not None
    assert (result.bill_to.line1, result.bill_to.line2, result.bill_to.line3) == (
        "9 rue Basse",
        "Bât. C 2e étage",
        "code 1234",
    )
    assert (result.bill_to.country_code, result.bill_to.state) == ("BE", "Liège")


def test_item_options_in_their_documented_order_and_only_with_a_name_and_a_value() -> None:
    line = {"OxID": 1, "ItemName": "Tasse", "Quantity": 1, "NetPrice": Decimal("9.90")}
    result = to_order(
        order(
            OrderItems=[
                {**line, "AttributeTextName": "Gravure", "AttributeTextValue": "Zoé", "Option1Name": "Taille",
                 "Option1Value": " L ", "Attribute2Name": "Couleur", "Attribute2Value": "  ", "Option3Value": "x"},
                {**line, "OxID": 2},
                {**line, "OxID": 3, "Attribute1Name": "Motif", "Attribute1Value": "Fleurs"},
            ]
        ),
        ctx(),
    )  # fmt: skip
    assert not isinstance(result, SkippedOrder)
    first, second, third = result.items
    assert [(o.name, o.value) for o in first.options] == [("Taille", "L"), ("Gravure", "Zoé")]
    assert second.options == ()
    assert [(o.name, o.value) for o in third.options] == [("Motif", "Fleurs")]


def test_names_only_is_no_ship_to() -> None:
    result = to_order({"OxID": 9, "Date": datetime(2026, 1, 1), "ShippingFirstName": "Zoé"}, ctx())
    assert result == SkippedOrder("9", "no ship-to address")


def test_status_from_state_then_from_payment_and_shipped_flag() -> None:
    c = ctx()
    shipped_state = to_order(order(ProgressStateID=72802), c)
    unmapped_state = to_order(order(ProgressStateID=72801, PaymentStatusCode=0), c)
    shipped_flag = to_order(order(Shipped=True), c)
    unpaid = to_order(order(PaymentStatusCode=20), c)
    assert not isinstance(shipped_state, SkippedOrder) and shipped_state.status is OrderStatus.SHIPPED
    assert not isinstance(unmapped_state, SkippedOrder)
    assert (unmapped_state.status, unmapped_state.channel_status) == (OrderStatus.CANCELLED, "cancelled")
    assert not isinstance(shipped_flag, SkippedOrder) and shipped_flag.channel_status == "SST-SHIPPED"
    assert not isinstance(unpaid, SkippedOrder) and unpaid.status is OrderStatus.AWAITING_PAYMENT
    assert c.unmapped.counts() == {"SST-NEW": 1}


def test_pickup_points_only_for_france_based_accounts() -> None:
    relay = order(ShippingProcessorCode=20, ShippingParam2="012345")
    french = to_order(relay, ctx())
    belgian = to_order(relay, ctx(account_country="BE"))
    assert not isinstance(french, SkippedOrder) and french.shipping.pickup_point is not None
    assert not isinstance(belgian, SkippedOrder) and belgian.shipping.pickup_point is None
    home = to_order(order(ShippingProcessorCode=10, ShippingParam1="DOM", ShippingParam2="X"), ctx())
    assert not isinstance(home, SkippedOrder) and home.shipping.pickup_point is None


def test_discounts_coupons_and_nc_payment_method() -> None:
    result = to_order(
        order(
            CartCoupon="HIVER",
            GlobalDiscountAmount=Decimal("4.5"),
            GlobalDiscountRate=Decimal("10"),
            PaymentMethodName="NC",
            OrderItems=[
                {
                    "OxID": 1,
                    "ItemSKU": "007",
                    "ItemName": "x",
                    "Quantity": 2,
                    "NetPrice": Decimal("9"),
                    "GrossAmount": Decimal("20"),
                    "NetAmount": Decimal("18"),
                    "DiscountRate": Decimal("10"),
                    "DiscountCoupon": "LIGNE",
                },
            ],
        ),
        ctx(),
    )
    assert not isinstance(result, SkippedOrder)
    assert result.payment.method is None
    assert result.payment.coupon_codes == ("HIVER", "LIGNE")
    assert [(d.code, d.amount) for d in result.payment.discounts] == [
        ("HIVER", Decimal("4.50")),
        ("LIGNE", Decimal("2.00")),
    ]
    assert result.items[0].sku == "007"


def test_summary_version_changes_with_any_summary_field() -> None:
    summary = {"OxID": 1, "PaymentStatusCode": 20, "Shipped": False}
    assert summary_version(summary) == summary_version(dict(summary))
    assert summary_version(summary) != summary_version({**summary, "PaymentStatusCode": 40})
    assert summary_version(summary) != summary_version({**summary, "ProgressStateID": 72802})


def test_colissimo_cdi_and_tnt_collection_points_are_pickups() -> None:
    cdi = to_order(order(ShippingProcessorCode=10, ShippingParam1="CDI", ShippingParam2="987654"), ctx())
    assert not isinstance(cdi, SkippedOrder) and cdi.shipping.pickup_point is not None
    assert (cdi.shipping.pickup_point.carrier, cdi.shipping.pickup_point.point_id) == ("colissimo", "987654")
    assert cdi.shipping.pickup_point.service_code == "CDI"
    for processor in (40, 41, 42):
        tnt = to_order(order(ShippingProcessorCode=processor, ShippingParam2="T01234"), ctx())
        assert not isinstance(tnt, SkippedOrder) and tnt.shipping.pickup_point is not None
        assert (tnt.shipping.pickup_point.carrier, tnt.shipping.pickup_point.point_id) == ("tnt", "T01234")
    tnt_home = to_order(order(ShippingProcessorCode=41), ctx())
    assert not isinstance(tnt_home, SkippedOrder) and tnt_home.shipping.pickup_point is None


def test_autumn_repeated_hour_takes_the_later_reading_and_min_value_is_no_date() -> None:
    repeated = to_order(order(Date=datetime(2026, 10, 25, 2, 30), InvoiceDate=datetime(1, 1, 1)), ctx())
    assert not isinstance(repeated, SkippedOrder)
    assert repeated.created_at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, not 02:30 CEST
    assert repeated.modified_at == repeated.created_at  # the MinValue invoice date is ignored
    gap = to_order(order(Date=datetime(2026, 3, 29, 2, 30)), ctx())  # a wall time the spring skips
    assert not isinstance(gap, SkippedOrder) and gap.created_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
