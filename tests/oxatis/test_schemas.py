"""The compiled loading path agrees with marshmallow's own ``Schema.load``, value for value and error for error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from marshmallow import Schema, ValidationError

from channel_core import PayloadError
from channel_oxatis import schemas
from channel_oxatis.wire import element_to_dict

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


# ------------------------------------------------------------------ the element loader agrees with the dict path

_XML_SAFE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)


def _xml_compatible(text: str) -> bool:
    return all(ch in "\t\n\r" or 0x20 <= ord(ch) < 0xD800 or 0xE000 <= ord(ch) < 0xFFFE for ch in text)


ORDER_LISTS = {"OrderItems": "Item", "BundledItems": "BundledItem", "OrderTaxDetails": "Item"}


@st.composite
def order_elements(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    """An ``Order`` (or, deeper, an ``Item``) element: known and unknown children in any order, empty ones,
    a value element holding elements, comments, namespaced tags, and item lists with stray children."""
    schema = schemas.OrderSchema if depth == 0 else schemas.OrderItemSchema
    names = [n for n in sorted(schema._declared_fields) if n not in ORDER_LISTS]
    element = etree.Element("Order" if depth == 0 else "Item")
    if depth == 0 and draw(st.integers(0, 9)):  # mostly a loadable order, so what follows is compared loaded
        etree.SubElement(element, "OxID").text = "100005"
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["value", "value", "value", "empty", "holds-element", "comment", "namespaced"]))
        name = draw(st.sampled_from([*names, "Unknown"]))
        if kind == "comment":
            element.append(etree.Comment("note"))
            continue
        tag = f"{{urn:x}}{name}" if kind == "namespaced" else name
        child = etree.SubElement(element, tag)
        if kind == "holds-element":
            etree.SubElement(child, "Inner").text = "1"
        elif kind != "empty":
            child.text = draw(st.one_of(VALUES.filter(_xml_compatible), _XML_SAFE))
    if depth < 2 and draw(st.booleans()):
        container = etree.SubElement(element, "OrderItems" if depth == 0 else "BundledItems")
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                container.append(draw(order_elements(depth + 1)))
            else:
                etree.SubElement(container, "Stray").text = "x"
    return element


def _outcome(load: Any) -> Any:
    try:
        return load()
    except PayloadError as exc:
        return (str(exc), exc.messages, exc.order_id)


@settings(max_examples=300, deadline=None)
@given(order_elements(), st.sampled_from([None, "100005"]))
def test_the_element_loader_agrees_with_the_dict_path(element: etree._Element, order_id: str | None) -> None:
    def by_dict() -> Any:
        raw = element_to_dict(element, ORDER_LISTS)
        oxid = raw.get("OxID", order_id)
        return schemas.load(schemas.OrderSchema, raw, what="Order", order_id=str(oxid) if oxid is not None else None)

    def by_element() -> Any:
        return schemas.load_element(schemas.OrderSchema, element, lists=ORDER_LISTS, what="Order", order_id=order_id)

    assert _outcome(by_element) == _outcome(by_dict)


def test_a_list_without_its_item_tag_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="needs its item tag"):
        schemas.load_element(schemas.OrderSchema, etree.Element("Order"), what="Order")
