"""OxatisClient: the Oxatis Web Services operations this channel uses, over the HTTP form interface.

Every call is a POST of ``AppId``, ``Token``, ``Method`` and ``Data`` (XML) to
``<base>/webservices/httpservices/<Service>.aspx`` (oxatis-api.md §1.3). Replies
go through :func:`channel_oxatis.wire.parse_envelope`, then the marshmallow
schemas. Reads are retried on transient faults; the two writes only when the
server provably did not process them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from channel_core.errors import ClientError, PayloadError, ServerError
from channel_core.http import HttpClient, RateLimiter, RetryPolicy, content_charset, encode_form
from channel_oxatis import schemas
from channel_oxatis.settings import OxatisSettings
from channel_oxatis.wire import CHANNEL, Envelope, element_to_dict, local_name, parse_envelope, request_xml

__all__ = ["SERVICES", "OxatisClient", "SummaryPage", "decode_order"]

SERVICES = {
    "OrderCount": "OrderServices",
    "OrderGetList": "OrderServices",
    "OrderGetSummaryList": "OrderServices",
    "OrderGet": "OrderServices",
    "OrderGetDetails": "OrderServices",
    "OrderGetMoreDetails": "OrderServices",
    "OrderUpdateTransportInfo": "OrderServices",
    "OrderUpdateTracking": "OrderServices",
    "ProgressStateGetList": "ProgressStateServices",
    "GetOrderProgressStateLogs": "ProgressStateLogServices",
    # Both paths are in the official guide's endpoint table (oxatis-api.md §7.3).
    "ProductCharacteristicsGet": "ProductCharacteristicsServices",
    "OptionTypesGetDetail": "OptionTypesServices",
    "AccountPropertiesGet": "IdentityServices",
    "GetServerDate": "AdminPropertiesServices",
}
LOG_CONTAINERS = ("OrderProgressStateLogs", "OrderProgressStateLogList")  # WSDL, then the 2021 XSD (§7.2)
LOG_ENTRY = "OrderProgressStateHistoryEntity"
ORDER_LISTS = {"OrderItems": "Item", "BundledItems": "BundledItem", "OrderTaxDetails": "Item"}


def _find(element: Any, *path: str) -> Any:
    node = element
    for tag in path:
        if node is None:
            return None
        node = next((child for child in node if local_name(child) == tag), None)
    return node


def decode_order(envelope: Envelope, *, order_id: str | None = None) -> dict[str, Any]:
    """``Data/Order`` of an ``OrderGet*`` reply, validated by :class:`~channel_oxatis.schemas.OrderSchema`."""
    element = _find(envelope.data, "Order")
    if element is None:
        raise PayloadError("reply has no Data/Order", order_id=order_id)
    return schemas.load_element(schemas.OrderSchema, element, lists=ORDER_LISTS, what="Order", order_id=order_id)


def _checked(envelope: Envelope, check: Callable[[Envelope], None] | None) -> Envelope:
    if check is not None:
        check(envelope)
    return envelope


def _has_order(envelope: Envelope) -> None:
    """A successful detail reply without ``Data/Order`` is a transient server fault, never "no order"."""
    if _find(envelope.data, "Order") is None:
        raise ServerError(
            "reply has no Data/Order",
            channel=CHANNEL,
            operation="OrderGetMoreDetails",
            status_code=envelope.status_code,
        )


@dataclass(frozen=True, slots=True)
class SummaryPage:
    page_number: int
    total_items: int
    total_pages: int
    summaries: list[dict[str, Any]]


class OxatisClient:
    """The operations the plugin needs. Thread-safe: detail calls run in parallel."""

    def __init__(
        self,
        settings: OxatisSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._http = HttpClient(
            channel=CHANNEL,
            base_url=settings.base_url,
            timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            retry_policy=retry_policy,
            rate_limiter=RateLimiter(settings.requests_per_second, burst=settings.max_concurrency, sleep=sleep),
            transport=transport,
            sleep=sleep,
            headers={"Accept-Language": "en-US"},
            max_connections=max(settings.max_concurrency + 1, 4),  # the details in flight plus a list page
        )
        credentials = {"Token": settings.token.reveal()}
        if settings.app_id is not None:
            credentials = {"AppId": settings.app_id.reveal(), **credentials}
        self._credentials_form = encode_form(credentials)  # the same first fields on every call, encoded once

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"OxatisClient(base_url={self.settings.base_url!r})"

    # ------------------------------------------------------------------ transport

    def store_time(self) -> datetime | None:
        """A lower bound of the store's clock now (aware UTC), from the replies' ``Date`` headers."""
        return self._http.server_time()

    def call(
        self,
        method: str,
        data_xml: str,
        *,
        idempotent: bool = True,
        check: Callable[[Envelope], None] | None = None,
    ) -> Envelope:
        """One call; ``check`` runs inside the retry loop, so a :class:`RetriableError` it raises is retried."""
        path = f"/webservices/httpservices/{SERVICES[method]}.aspx"
        return self._http.post_form(
            path,
            {"Method": method, "Data": data_xml},
            prefix=self._credentials_form,
            operation=method,
            idempotent=idempotent,
            parse=lambda response: _checked(
                parse_envelope(response.content, operation=method, charset=content_charset(response)), check
            ),
        )

    # ------------------------------------------------------------------ reads

    def progress_states(self) -> list[dict[str, Any]]:
        """``ProgressStateGetList``: note the doubled ``ProgressStateList`` (§1.4)."""
        envelope = self.call("ProgressStateGetList", request_xml("ProgressStateList"))
        container = _find(envelope.data, "ProgressStateList", "ProgressStateList")
        if container is None:
            return []
        return [
            schemas.load(schemas.ProgressStateSchema, element_to_dict(el), what="ProgressState")
            for el in container
            if isinstance(el.tag, str)
        ]

    def summary_page(
        self, start: datetime, end: datetime | None, page_number: int, *, descending: bool = True
    ) -> SummaryPage:
        """One page of ``OrderGetSummaryList`` over a modification window (naive store-local bounds).

        ``end=None`` leaves the window open (the element is sent nil-free: left out).
        """
        data = request_xml(
            "OrderSummaryList",
            [
                ("SetOrderDesc", descending),
                ("OrderDateStart", start),
                ("OrderDateEnd", end),
                ("PageInformation", {"PageNumber": page_number, "PageSize": self.settings.page_size}),
            ],
        )
        envelope = self.call("OrderGetSummaryList", data)
        root = _find(envelope.data, "OrderSummaryList")
        if root is None:
            raise PayloadError("reply has no Data/OrderSummaryList", operation="OrderGetSummaryList")
        info_el = _find(root, "PageInformation")
        if info_el is None:  # never assume one page: the rest of the window would be dropped silently
            raise PayloadError("summary list reply has no PageInformation", operation="OrderGetSummaryList")
        info = schemas.load(schemas.PageInformationSchema, element_to_dict(info_el), what="PageInformation")
        if info.get("TotalItems") is None:
            raise PayloadError("summary list reply has no PageInformation/TotalItems", operation="OrderGetSummaryList")
        container = _find(root, "OrderSummaries")
        summaries: list[dict[str, Any]] = []
        for el in container if container is not None else ():
            if not isinstance(el.tag, str):
                continue
            summaries.append(schemas.load_element(schemas.OrderSummarySchema, el, what="OrderSummary"))
        total_items = info.get("TotalItems") or 0
        total_pages = max(1, info.get("TotalPages") or 1)
        return SummaryPage(page_number, total_items, total_pages, summaries)

    def order_details(self, order_id: str) -> dict[str, Any]:
        """``OrderGetMoreDetails``: the fullest order, lines with images (§2.3)."""
        envelope = self.call("OrderGetMoreDetails", request_xml("OrderId", [("OxID", order_id)]), check=_has_order)
        return decode_order(envelope, order_id=order_id)

    def progress_state_logs(self, order_id: str) -> list[dict[str, Any]]:
        """``GetOrderProgressStateLogs`` for one order, in reply order.

        Two containers are documented (oxatis-api.md §7.2): the WSDL's
        ``Data/OrderProgressStateLogs/OrderProgressStateLogs`` and the 2021 XSD's
        ``Data/OrderProgressStateLogList/OrderProgressStateLogs``; entries may lack
        ``ID`` and ``Code``. This read guards a write, so anything else is a
        :class:`PayloadError`, never "no entries".
        """
        envelope = self.call("GetOrderProgressStateLogs", request_xml("OrderId", [("OxID", order_id)]))
        outer = next(
            (el for el in (_find(envelope.data, name) for name in LOG_CONTAINERS) if el is not None),
            None,
        )
        if outer is None:
            found = (
                [local_name(el) for el in envelope.data if isinstance(el.tag, str)] if envelope.data is not None else []
            )
            raise PayloadError(
                f"progress-state log reply has none of Data/{' or Data/'.join(LOG_CONTAINERS)} (found: "
                f"{', '.join(found) or 'nothing'})",
                operation="GetOrderProgressStateLogs",
                order_id=order_id,
            )
        array = _find(outer, "OrderProgressStateLogs")
        entries: list[dict[str, Any]] = []
        for el in array if array is not None else ():
            if not isinstance(el.tag, str):
                continue
            if local_name(el) != LOG_ENTRY:
                raise PayloadError(
                    f"unexpected {local_name(el)!r} among progress-state log entries",
                    operation="GetOrderProgressStateLogs",
                    order_id=order_id,
                )
            entries.append(
                schemas.load(
                    schemas.ProgressStateLogSchema, element_to_dict(el), what="ProgressStateLog", order_id=order_id
                )
            )
        return entries

    def product_characteristics(self, item_oxid: int | None, sku: str | None) -> list[dict[str, Any]]:
        """``ProductCharacteristicsGet``: the product's characteristics as ``{OptionTypeID, OptionValueID}`` ids.

        The request is a ``ProductId``; the reply is ``Data/CharacteristicsId`` with one
        ``CharacteristicID`` or several (oxatis-api.md §7.1): ids only, names come from
        :meth:`option_type`.
        """
        data = request_xml("ProductId", [("OxID", item_oxid), ("ItemSKU", sku)])
        envelope = self.call("ProductCharacteristicsGet", data)
        root = _find(envelope.data, "CharacteristicsId")
        if root is None:
            raise PayloadError("reply has no Data/CharacteristicsId", operation="ProductCharacteristicsGet")
        return [
            schemas.load(schemas.CharacteristicIdSchema, element_to_dict(el), what="CharacteristicID")
            for el in root
            if local_name(el) == "CharacteristicID"
        ]

    def option_type(self, option_type_id: int) -> dict[str, Any]:
        """``OptionTypesGetDetail`` (OptionTypesServices): an option type's names and its values' names."""
        envelope = self.call("OptionTypesGetDetail", request_xml("OptionTypes", [("OxID", option_type_id)]))
        root = _find(envelope.data, "OptionTypeDetail")
        if root is None:
            raise PayloadError("reply has no Data/OptionTypeDetail", operation="OptionTypesGetDetail")
        raw = element_to_dict(root)
        values = _find(root, "OptionValueArray")
        raw["OptionValueArray"] = [element_to_dict(el) for el in values if local_name(el)] if values is not None else []
        return schemas.load(schemas.OptionTypeDetailSchema, raw, what="OptionTypeDetail")

    def account_id(self) -> str:
        """``AccountPropertiesGet`` (IdentityServices): the merchant account the token opens.

        The reply's ``Data/AccountProperties/AccountId`` (the WSDL's ``AccountProperties``). A reply
        without a positive ``AccountId`` is an error: the account guards every later write.
        """
        envelope = self.call("AccountPropertiesGet", "")
        root = _find(envelope.data, "AccountProperties")
        value = _find(root, "AccountId") if root is not None else None
        text = (value.text or "").strip() if value is not None else ""
        if not text.isdigit() or int(text) <= 0:
            raise PayloadError(
                "AccountPropertiesGet: the reply has no Data/AccountProperties/AccountId; the store's account "
                "cannot be told",
                operation="AccountPropertiesGet",
            )
        return str(int(text))

    def server_date(self) -> datetime | None:
        """``GetServerDate`` (AdminPropertiesServices): the store server's naive wall time now, or ``None``
        when its reply holds no ``DateTime`` (only a measurement: a missing one widens nothing)."""
        envelope = self.call("GetServerDate", "")
        for element in envelope.data.iter() if envelope.data is not None else ():
            if isinstance(element.tag, str) and local_name(element) == "DateTime" and element.text:
                try:
                    return datetime.fromisoformat(element.text.strip()).replace(tzinfo=None)
                except ValueError:
                    return None
        return None

    # ------------------------------------------------------------------ writes

    def update_transport_info(
        self, order_id: str, *, tracking_number: str, tracking_url: str | None, transport_name: str
    ) -> int:
        """``OrderUpdateTransportInfo``: fields in WSDL order OxID, TrackingNumber, TransportName, TrackingUrl."""
        data = request_xml(
            "Order",
            [
                ("OxID", order_id),
                ("TrackingNumber", tracking_number),
                ("TransportName", transport_name),
                ("TrackingUrl", tracking_url),
            ],
        )
        return self._written_id(
            self.call("OrderUpdateTransportInfo", data, idempotent=False), "OrderUpdateTransportInfo"
        )

    def update_tracking(
        self,
        order_id: str,
        *,
        when: datetime,
        code: str,
        publish: bool,
        send_email: bool,
        comment: str | None,
    ) -> int:
        """``OrderUpdateTracking``: appends a progress-state entry and moves the order to ``code``."""
        data = request_xml(
            "ProgressState",
            [
                ("OrderID", order_id),
                ("Date", when),
                ("ProgressStateMnemonicName", code),
                ("Comment", comment),
                ("Publish", publish),
                ("SendEmail", send_email),
                ("UpdateOrderProgressState", True),
            ],
        )
        return self._written_id(self.call("OrderUpdateTracking", data, idempotent=False), "OrderUpdateTracking")

    @staticmethod
    def _written_id(envelope: Envelope, operation: str) -> int:
        oxid_el = _find(envelope.data, "OxID")
        text = (oxid_el.text or "").strip() if oxid_el is not None else ""
        try:
            oxid = int(text)
        except ValueError:
            raise PayloadError("write reply has no Data/OxID", operation=operation) from None
        if oxid <= 0:
            raise ClientError(
                f"write refused (OxID {oxid}): {envelope.error_details or 'no details'}",
                channel=CHANNEL,
                operation=operation,
                status_code=envelope.status_code,
            )
        return oxid
