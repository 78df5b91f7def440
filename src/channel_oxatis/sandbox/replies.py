"""Rendering sandbox replies as Oxatis ``DataResultService`` XML, null fields omitted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from channel_oxatis.sandbox.wsdl import (
    BUNDLED_ITEM_FIELDS,
    ITEM_FIELDS,
    LOG_FIELDS,
    ORDER_FIELDS,
    PROGRESS_STATE_FIELDS,
    SUMMARY_FIELDS,
)

__all__ = [
    "ENTITY_BOMB",
    "EXTERNAL_ENTITY",
    "HTML_ERROR_PAGE",
    "MALFORMED",
    "envelope",
    "render_characteristics",
    "render_logs",
    "render_order",
    "render_states",
    "render_summary_list",
]

XML_DECL = '<?xml version="1.0" encoding="utf-8"?>'
XMLNS = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return escape(str(value), {"\r": "&#xD;"})


def _fields(entity: Mapping[str, Any], order: Iterable[str], nested: Mapping[str, tuple[str, Iterable[str]]]) -> str:
    out: list[str] = []
    for name in order:
        value = entity.get(name)
        if value is None:
            continue
        if name in nested:
            item_tag, item_order = nested[name]
            inner = "".join(f"<{item_tag}>{_fields(item, item_order, nested)}</{item_tag}>" for item in value)
            out.append(f"<{name}>{inner}</{name}>")
        else:
            out.append(f"<{name}>{_text(value)}</{name}>")
    return "".join(out)


_ORDER_NESTED = {
    "OrderItems": ("Item", ITEM_FIELDS),
    "BundledItems": ("BundledItem", BUNDLED_ITEM_FIELDS),
}


def envelope(data: str | None, *, status: int = 200, sub_code: int = 0, details: str | None = None) -> bytes:
    details_xml = f"<ErrorDetails>{escape(details)}</ErrorDetails>" if details else "<ErrorDetails />"
    data_xml = f"<Data>{data}</Data>" if data is not None else ""
    return (
        f"{XML_DECL}<DataResultService {XMLNS}><StatusCode>{status}</StatusCode>"
        f"<StatusSubCode>{sub_code}</StatusSubCode>{details_xml}{data_xml}</DataResultService>"
    ).encode()


def render_order(order: Mapping[str, Any], *, with_items: bool = True) -> str:
    fields = ORDER_FIELDS if with_items else tuple(f for f in ORDER_FIELDS if f != "OrderItems")
    return f"<Order>{_fields(order, fields, _ORDER_NESTED)}</Order>"


def render_summary_list(
    summaries: Iterable[Mapping[str, Any]],
    *,
    page_number: int,
    page_size: int,
    total_items: int,
    total_pages: int,
) -> str:
    body = "".join(f"<OrderSummary>{_fields(s, SUMMARY_FIELDS, {})}</OrderSummary>" for s in summaries)
    return (
        "<OrderSummaryList><SetOrderDesc>false</SetOrderDesc>"
        f"<PageInformation><PageNumber>{page_number}</PageNumber><PageSize>{page_size}</PageSize>"
        f"<TotalItems>{total_items}</TotalItems><TotalPages>{total_pages}</TotalPages></PageInformation>"
        f"<OrderSummaries>{body}</OrderSummaries></OrderSummaryList>"
    )


def render_account(account_id: int) -> str:
    """``AccountPropertiesGet``'s ``Data``: the WSDL's ``AccountProperties`` fields (docs/oxatis.md)."""
    return (
        f"<AccountProperties><SiteName>Sandbox store {account_id}</SiteName><Status>1</Status>"
        f"<AccountId>{account_id}</AccountId><LangId>1</LangId><IsoLang>fr</IsoLang>"
        "<CountryISOCode>FR</CountryISOCode><Email>boutique@exemple.fr</Email><IsAdmin>true</IsAdmin>"
        "<IsOpenEntreprise>false</IsOpenEntreprise><CurrencyCode>978</CurrencyCode></AccountProperties>"
    )


def render_states(states: Iterable[Mapping[str, Any]]) -> str:
    body = "".join(f"<ProgressState>{_fields(s, PROGRESS_STATE_FIELDS, {})}</ProgressState>" for s in states)
    return f"<ProgressStateList><ProgressStateList>{body}</ProgressStateList></ProgressStateList>"


LOG_CONTAINERS = ("wsdl", "xsd")


def render_logs(entries: Iterable[Mapping[str, Any]], *, container: str = "wsdl", with_codes: bool = True) -> str:
    """The two documented shapes (oxatis-api.md §7.2): the WSDL's container or the 2021 XSD's; entries with or
    without ``ID``/``Code``."""
    fields = LOG_FIELDS if with_codes else tuple(f for f in LOG_FIELDS if f not in ("ID", "Code"))
    body = "".join(
        f"<OrderProgressStateHistoryEntity>{_fields(e, fields, {})}</OrderProgressStateHistoryEntity>" for e in entries
    )
    outer = {"wsdl": "OrderProgressStateLogs", "xsd": "OrderProgressStateLogList"}[container]
    return f"<{outer}><OrderProgressStateLogs>{body}</OrderProgressStateLogs></{outer}>"


def render_characteristics(product: Mapping[str, Any]) -> str:
    """``Data/CharacteristicsId{ProductID, CharacteristicID{OptionTypeID, OptionValueID}*}``."""
    ids = "".join(
        f"<CharacteristicID><OptionTypeID>{c['OptionTypeID']}</OptionTypeID>"
        f"<OptionValueID>{c['OptionValueID']}</OptionValueID></CharacteristicID>"
        for c in product["CharacteristicID"]
    )
    return f"<CharacteristicsId><ProductID>{product['ProductID']}</ProductID>{ids}</CharacteristicsId>"


_NAMES = ("NameCA", "NameDE", "NameEN", "NameES", "NameFR", "NameIT", "NameNL", "NamePT")


def _named(entity: Mapping[str, Any], head: tuple[str, ...]) -> str:
    return "".join(
        f"<{key}>{escape(str(entity[key]))}</{key}>"
        for key in (*head, *_NAMES, "SystemName")
        if entity.get(key) is not None
    )


def render_option_type(option_type: Mapping[str, Any]) -> str:
    """``Data/OptionTypeDetail`` (``OptionTypeDetailEntity``), values under ``OptionValueArray``."""
    values = "".join(
        f"<OptionValue>{_named(v, ('OxID', 'Code'))}</OptionValue>" for v in option_type["OptionValueArray"]
    )
    head = _named(option_type, ("OxID",))
    return f"<OptionTypeDetail>{head}<OptionValueArray>{values}</OptionValueArray></OptionTypeDetail>"


HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>Runtime Error</title></head><body><h1>Server Error in '/' Application."
    b"</h1><p>An application error occurred on the server.</p></body></html>"
)
MALFORMED = XML_DECL.encode() + b"<DataResultService><StatusCode>200</StatusCode><Data><Order><OxID>1</Ox"
ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    b"<DataResultService><StatusCode>200</StatusCode><ErrorDetails>&lol4;</ErrorDetails></DataResultService>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<DataResultService><StatusCode>200</StatusCode><ErrorDetails>&xxe;</ErrorDetails></DataResultService>"
)
