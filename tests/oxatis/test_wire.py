"""The reply parser: status codes, hardening against hostile XML, HTML and empty bodies."""

from __future__ import annotations

import pytest
from lxml import etree

from channel_core import (
    AuthenticationError,
    ClientError,
    NotFoundError,
    PayloadError,
    QuotaExhaustedError,
    ServerError,
)
from channel_oxatis.sandbox import replies
from channel_oxatis.wire import element_to_dict, parse_envelope, parse_xml, request_xml


def reply(status: int, sub: int = 0, details: str | None = None, data: str | None = None) -> bytes:
    return replies.envelope(data, status=status, sub_code=sub, details=details)


def test_200_returns_data() -> None:
    envelope = parse_envelope(reply(200, data="<OxID>42</OxID>"), operation="OrderUpdateTracking")
    assert envelope.status_code == 200 and envelope.data is not None


@pytest.mark.parametrize(
    ("status", "sub", "error"),
    [
        (503, 0, AuthenticationError),
        (504, 0, QuotaExhaustedError),
        (600, 0, ServerError),
        (500, 1001, NotFoundError),
        (500, 1002, ClientError),
        (700, 0, ServerError),
    ],
)
def test_status_codes_map_to_errors(status: int, sub: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        parse_envelope(reply(status, sub, "détails"), operation="OrderGet")
    assert info.value.status_code == status  # type: ignore[attr-defined]


def test_maintenance_is_retriable_even_for_writes() -> None:
    with pytest.raises(ServerError) as info:
        parse_envelope(reply(600), operation="OrderUpdateTracking")
    assert info.value.retriable and info.value.request_sent is False


def test_quota_is_not_retriable() -> None:
    with pytest.raises(QuotaExhaustedError) as info:
        parse_envelope(reply(504), operation="OrderGet")
    assert not info.value.retriable


@pytest.mark.parametrize("body", [replies.HTML_ERROR_PAGE, b"", b"   \n"])
def test_html_and_empty_bodies_are_server_errors(body: bytes) -> None:
    with pytest.raises(ServerError):
        parse_envelope(body, operation="OrderGet")


@pytest.mark.parametrize("body", [replies.ENTITY_BOMB, replies.EXTERNAL_ENTITY])
def test_dtds_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(PayloadError, match="DTD"):
        parse_xml(body, operation="OrderGet")


def test_malformed_xml_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="malformed XML"):
        parse_envelope(replies.MALFORMED, operation="OrderGet")


def test_entities_and_cdata_in_text_survive() -> None:
    root = parse_xml(
        b"<Order><ItemName><![CDATA[Film <A>]]></ItemName><ShippingAddress>12 rue Test &amp; Cie&#xD;\nB\xc3\xa2t B"
        b"</ShippingAddress><ShippingZipCode>01230</ShippingZipCode>"
        b'<Gone xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true" /></Order>',
        operation="x",
    )
    data = element_to_dict(root)
    assert data == {
        "ItemName": "Film <A>",
        "ShippingAddress": "12 rue Test & Cie\r\nBât B",
        "ShippingZipCode": "01230",
    }


def test_request_xml_escapes_values_and_keeps_order() -> None:
    xml = request_xml(
        "Order", [("OxID", 5), ("TrackingNumber", "A&B<'\">"), ("TransportName", None), ("TrackingUrl", "u")]
    )
    assert (
        "<OxID>5</OxID><TrackingNumber>A&amp;B&lt;&apos;&quot;&gt;</TrackingNumber><TrackingUrl>u</TrackingUrl>" in xml
    )
    assert "TransportName" not in xml
    assert 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in xml


def test_a_utf16_declaration_on_a_utf8_body_is_read_by_its_bytes() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-16"?><DataResultService><StatusCode>200</StatusCode>'
        "<Data><Name>Expédiée</Name></Data></DataResultService>"
    )
    for raw, charset in ((body.encode("utf-8"), None), (body.encode("utf-8"), "utf-8"), (body.encode("utf-16"), None)):
        envelope = parse_envelope(raw, operation="ProgressStateGetList", charset=charset)
        assert envelope.data is not None and envelope.data[0].text == "Expédiée"
    latin = body.replace("utf-16", "iso-8859-1").encode("latin-1")
    envelope = parse_envelope(latin, operation="ProgressStateGetList")
    assert envelope.data is not None and envelope.data[0].text == "Expédiée"


def test_list_items_match_by_local_name_in_a_namespaced_reply() -> None:
    ns = "http://webservices.oxatis.com/"
    xml = (
        f'<Order xmlns="{ns}"><OxID>5</OxID><OrderItems><Item><ItemSKU>A</ItemSKU></Item>'
        f"<Item><ItemSKU>B</ItemSKU></Item></OrderItems></Order>"
    ).encode()
    flat = element_to_dict(etree.fromstring(xml), {"OrderItems": "Item"})
    assert flat == {"OxID": "5", "OrderItems": [{"ItemSKU": "A"}, {"ItemSKU": "B"}]}
