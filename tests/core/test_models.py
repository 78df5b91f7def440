from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channel_core import models
from channel_core.models import (
    Address,
    Buyer,
    Discount,
    ItemOption,
    LineItem,
    Note,
    NoteType,
    Order,
    OrderStatus,
    Payment,
    PickupPoint,
    Shipment,
    Shipping,
    Weight,
    WeightUnit,
    from_dict,
    to_dict,
    to_json,
)

text = st.text(max_size=12)
opt_text = st.none() | text
money = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6)
utc_dt = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
weights = st.builds(Weight, value=money, unit=st.sampled_from(WeightUnit))
addresses = st.builds(
    Address,
    name=opt_text,
    company=opt_text,
    line1=opt_text,
    line2=opt_text,
    line3=opt_text,
    city=opt_text,
    state=opt_text,
    postal_code=opt_text,
    country_code=opt_text,
    phone=opt_text,
)
items = st.builds(
    LineItem,
    line_item_id=text,
    sku=opt_text,
    name=text,
    quantity=st.integers(0, 1000),
    unit_price=money,
    product_id=opt_text,
    weight=st.none() | weights,
    image_url=opt_text,
    options=st.lists(st.builds(ItemOption, name=text, value=text), max_size=3).map(tuple),
    location=opt_text,
)
orders = st.builds(
    Order,
    channel=text,
    order_id=text.filter(bool),
    order_number=text,
    status=st.sampled_from(OrderStatus),
    channel_status=opt_text,
    created_at=utc_dt,
    modified_at=utc_dt,
    ship_to=addresses,
    paid_at=st.none() | utc_dt,
    currency=opt_text,
    buyer=st.builds(Buyer, name=opt_text, email=opt_text, phone=opt_text, customer_id=opt_text),
    bill_to=st.none() | addresses,
    items=st.lists(items, max_size=3).map(tuple),
    payment=st.builds(
        Payment,
        method=opt_text,
        status=opt_text,
        amount_paid=st.none() | money,
        shipping_amount=st.none() | money,
        tax_amount=st.none() | money,
        discounts=st.lists(st.builds(Discount, code=opt_text, amount=money, description=opt_text), max_size=2).map(
            tuple
        ),
        coupon_codes=st.lists(text, max_size=2).map(tuple),
    ),
    shipping=st.builds(
        Shipping,
        requested_service=opt_text,
        carrier_code=opt_text,
        pickup_point=st.none() | st.builds(PickupPoint, carrier=text, point_id=text, service_code=opt_text),
        is_gift=st.booleans(),
        gift_message=opt_text,
    ),
    notes=st.lists(st.builds(Note, type=st.sampled_from(NoteType), text=text), max_size=3).map(tuple),
    weight=st.none() | weights,
)


@given(orders)
def test_order_json_round_trip_is_lossless(order: Order) -> None:
    wire = json.dumps(to_dict(order))
    assert from_dict(Order, json.loads(wire)) == order


def _plain_json(order: Order) -> str:
    return json.dumps(to_dict(order), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(orders)
def test_to_json_writes_to_dict_data_as_sorted_compact_json(order: Order) -> None:
    expected = _plain_json(order)
    assert to_json(order) == expected
    assert to_json(order) == expected  # the second call, with every model type's field names already known
    assert models._CANONICAL.encode(order) == expected  # the standard library's encoder, orjson's fallback


def _order_of(ship_to: Address, item: LineItem, created: datetime = datetime(2026, 1, 2, tzinfo=UTC)) -> Order:
    return Order(
        channel="oxatis",
        order_id="1",
        order_number="1",
        status=OrderStatus.AWAITING_SHIPMENT,
        channel_status="paid",
        created_at=created,
        modified_at=datetime(2026, 1, 2, tzinfo=UTC),
        ship_to=ship_to,
        items=(item,),
    )


def test_to_json_writes_every_character_as_the_standard_library_does() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)  # controls, U+2028, astral
    order = _order_of(
        Address(name=every, line1='"quoted" \\ back\tslash\x7f'),
        LineItem("1", "s", "\x00\x1f\u2028", 1, Decimal("1E+2")),
        created=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    assert to_json(order) == _plain_json(order)


@pytest.mark.parametrize(
    ("name", "quantity"),
    [("lone \ud800 surrogate", 1), ("big", 2**70), ("big negative", -(2**64))],
    ids=["lone-surrogate", "beyond-64-bits", "below-minus-2-64"],
)
def test_to_json_falls_back_to_the_standard_library_for_what_orjson_refuses(name: str, quantity: int) -> None:
    order = _order_of(Address(name=name), LineItem("1", None, name, quantity, Decimal("1.00")))
    with pytest.raises(TypeError):
        orjson.dumps(order, default=models._json_default, option=models._ORJSON_OPTIONS)
    assert to_json(order) == _plain_json(order)


def test_to_json_refuses_what_is_not_a_model() -> None:
    with pytest.raises(TypeError, match="to_json expects a model instance"):
        to_json({"a": 1})


def test_json_uses_snake_case_names_and_string_money() -> None:
    order = Order(
        channel="oxatis",
        order_id="00123",
        order_number="00123",
        status=OrderStatus.SHIPPED,
        channel_status="SST-SHIPPED",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        modified_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ship_to=Address(postal_code="01230", country_code="FR"),
        items=(LineItem("1", "00042", "Tasse", 2, Decimal("9.90")),),
    )
    data = to_dict(order)
    assert data["ship_to"]["postal_code"] == "01230"
    assert data["items"][0]["unit_price"] == "9.90"
    assert data["items"][0]["sku"] == "00042"
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    assert data["status"] == "shipped"
    assert set(data) >= {"buyer", "bill_to", "ship_to", "payment", "shipping", "notes", "weight", "paid_at"}


def test_naive_or_non_utc_datetimes_are_rejected() -> None:
    kwargs = dict(
        channel="x",
        order_id="1",
        order_number="1",
        status=OrderStatus.SHIPPED,
        channel_status=None,
        ship_to=Address(),
    )
    with pytest.raises(ValueError, match="created_at must be timezone-aware"):
        Order(created_at=datetime(2026, 1, 1), modified_at=datetime(2026, 1, 1, tzinfo=UTC), **kwargs)  # type: ignore[arg-type]
    paris = timezone(timedelta(hours=1))
    with pytest.raises(ValueError, match="modified_at must be in UTC"):
        Order(
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            modified_at=datetime(2026, 1, 1, tzinfo=paris),
            **kwargs,  # type: ignore[arg-type]
        )


def test_from_dict_names_the_bad_field() -> None:
    shipment = to_dict(Shipment(order_id="1", tracking_number="T", carrier="dpd"))
    shipment["items"] = [{"quantity": "two"}]
    with pytest.raises(ValueError, match=r"Shipment.items\[0\].quantity"):
        from_dict(Shipment, shipment)


def test_models_are_frozen() -> None:
    address = Address(city="Paris")
    with pytest.raises(AttributeError):
        address.city = "Lyon"  # type: ignore[misc]


def test_order_query_needs_aware_datetimes() -> None:
    from channel_core import OrderQuery

    with pytest.raises(ValueError, match="modified_since must be timezone-aware"):
        OrderQuery(modified_since=datetime(2026, 1, 1))
