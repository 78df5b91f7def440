"""Sandbox replies validate against Oxatis's own XSDs (../shared/oxatis-xsd) for the fields they cover.

The XSDs predate the 2021 WSDL: elements they lack (``WSDL_ONLY``) are removed
before validation, and since real replies omit null fields every ``minOccurs``
is relaxed to 0. Element names, types and order are still checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from channel_oxatis.sandbox import SandboxStore, replies
from channel_oxatis.sandbox.wsdl import WSDL_ONLY

XSD_DIR = Path(__file__).resolve().parents[3] / "shared" / "oxatis-xsd"
pytestmark = pytest.mark.skipif(not XSD_DIR.is_dir(), reason=f"Oxatis XSDs not found at {XSD_DIR}")


def schema(name: str) -> etree.XMLSchema:
    doc = etree.parse(str(XSD_DIR / name))
    for element in doc.iter("{http://www.w3.org/2001/XMLSchema}element"):
        if element.get("minOccurs") == "1":
            element.set("minOccurs", "0")
    for imp in doc.iter("{http://www.w3.org/2001/XMLSchema}import"):
        imp.getparent().remove(imp)
    for element in list(doc.iter("{http://www.w3.org/2001/XMLSchema}element")):
        if element.get("type", "").startswith(("q1:", "q2:")):
            element.getparent().remove(element)
    return etree.XMLSchema(doc)


def data_child(reply: bytes, path: str) -> etree._Element:
    root = etree.fromstring(reply)
    node = root.find(f"Data/{path}")
    assert node is not None
    for element in list(node.iter()):
        if element.tag in WSDL_ONLY and element.getparent() is not None:
            element.getparent().remove(element)
    return node


@pytest.fixture(scope="module")
def store() -> SandboxStore:
    return SandboxStore(count=60)


def test_order_details_validate(store: SandboxStore) -> None:
    xsd = schema("Order.xsd")
    for oxid in range(100001, 100061):
        order = store.order(oxid)
        assert order is not None
        node = data_child(replies.envelope(replies.render_order(order)), "Order")
        xsd.assertValid(node)


def test_summary_list_validates(store: SandboxStore) -> None:
    xsd = schema("OrderSummaryList.xsd")
    orders = [store.order(o) for o in range(100001, 100031)]
    reply = replies.envelope(
        replies.render_summary_list(
            [o for o in orders if o], page_number=1, page_size=30, total_items=60, total_pages=2
        )
    )
    xsd.assertValid(data_child(reply, "OrderSummaryList"))


def test_progress_states_validate(store: SandboxStore) -> None:
    xsd = schema("ProgressStateList.xsd")
    node = data_child(replies.envelope(replies.render_states(store.states())), "ProgressStateList")
    xsd.assertValid(node)


def test_progress_state_logs_validate(store: SandboxStore) -> None:
    xsd = schema("OrderProgressStateLogList.xsd")
    oxid = next(o for o in range(100001, 100061) if store.logs(o))
    reply = replies.render_logs(store.logs(oxid), container="xsd", with_codes=False)  # the XSD's own shape
    node = data_child(replies.envelope(reply), "OrderProgressStateLogList")
    xsd.assertValid(node)


def test_characteristics_validate(store: SandboxStore) -> None:
    xsd = schema("Characteristics.xsd")
    product = store.characteristics(500101, None)
    assert product is not None
    xsd.assertValid(data_child(replies.envelope(replies.render_characteristics(product)), "Characteristics"))
