"""The compiled loading path agrees with marshmallow's own ``Schema.load``, value for value and error for error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from channel_core import PayloadError
from channel_oxatis import schemas

VALUES = st.one_of(
    st.sampled_from(
        [
            "12",
            "0",
            "-3",
            "12.5",
            "1e3",
            "NaN",
            "Infinity",
            "true",
            "false",
            "1",
            "True",
            "abc",
            "",
            " 7 ",
            "2026-10-01T12:00:00",
            "2026-10-01T12:00:00+02:00",
            "2026-13-01T00:00:00",
            "01230",
        ]
    ),
    st.text(max_size=8),
)


def item_dicts() -> st.SearchStrategy[dict[str, Any]]:
    names = sorted(schemas.OrderItemSchema._declared_fields)
    names.remove("BundledItems")
    return st.dictionaries(st.sampled_from([*names, "Unknown"]), VALUES, max_size=12)


def both_paths(schema_class: type[Schema], data: dict[str, Any]) -> tuple[Any, Any]:
    """(marshmallow's own outcome, ``schemas.load``'s outcome): loaded data or the field messages."""
    try:
        expected: Any = schema_class().load(data)
    except ValidationError as exc:
        expected = exc.messages
    try:
        actual: Any = schemas.load(schema_class, data, what=schema_class.__name__)
    except PayloadError as exc:
        actual = exc.messages
    return expected, actual


@settings(max_examples=400, deadline=None)
@given(item_dicts())
def test_compiled_path_matches_marshmallow(data: dict[str, Any]) -> None:
    expected, actual = both_paths(schemas.OrderItemSchema, data)
    assert actual == expected


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["OxID", "Date", "Shipped", "NetAmountDue", "PaymentStatusCode"]), VALUES))
def test_summary_schema_paths_agree(data: dict[str, Any]) -> None:
    expected, actual = both_paths(schemas.OrderSummarySchema, data)
    assert actual == expected


def test_wrong_type_names_the_order_and_field() -> None:
    with pytest.raises(PayloadError) as info:
        schemas.load(
            schemas.OrderSchema,
            {"OxID": "100005", "OrderItems": [{"Quantity": "deux"}]},
            what="Order",
            order_id="100005",
        )
    assert info.value.order_id == "100005"
    assert "OrderItems" in str(info.value) and "Quantity" in str(info.value) and "100005" in str(info.value)


def test_unknown_fields_are_excluded() -> None:
    assert "Surprise" not in schemas.load(schemas.OrderSummarySchema, {"OxID": "1", "Surprise": "x"}, what="s")
