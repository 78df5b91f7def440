"""The Oxatis operations the sandbox implements, over a :class:`~channel_oxatis.sandbox.store.SandboxStore`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lxml import etree

from channel_oxatis.sandbox import data, replies
from channel_oxatis.sandbox.store import SandboxStore

__all__ = ["OLDEST", "Operations", "Reply", "xml_error"]

OLDEST = datetime(2010, 1, 15)


class Reply(Exception):
    """Raised to answer a request: a body, an HTTP status (-1: drop the connection) and headers."""

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body, self.status, self.headers = body, status, headers or {}


def xml_error(status: int, details: str, sub_code: int = 0, data: str | None = None) -> Reply:
    return Reply(replies.envelope(data, status=status, sub_code=sub_code, details=details))


class Operations:
    """Answers one call's ``Data`` for a method; writes change the store."""

    def __init__(
        self,
        store: SandboxStore,
        *,
        modify_between_pages: tuple[int, int] | None = None,
        log_container: str = "wsdl",
        log_entry_codes: bool = True,
        server_date_clock: str = "database",
    ) -> None:
        if log_container not in replies.LOG_CONTAINERS:
            raise ValueError(f"log_container must be one of {', '.join(replies.LOG_CONTAINERS)}")
        self.store = store
        self.server_date_clock = server_date_clock
        self.log_container = log_container
        self.log_entry_codes = log_entry_codes
        self.modify_between_pages = modify_between_pages
        self._page_mods_done = False

    def dispatch(self, method: str, data_xml: str) -> bytes:
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            root = etree.fromstring(data_xml.encode("utf-8"), parser) if data_xml.strip() else None
        except etree.XMLSyntaxError as exc:
            line, col = exc.position
            raise xml_error(500, f"Invalid XML ({line}, {col})") from None
        fields = _children(root)
        if method == "ProgressStateGetList":
            return replies.envelope(replies.render_states(self.store.states()))
        if method == "GetServerDate":
            when = self.store.now() if self.server_date_clock == "database" else self.store.web_now()
            return replies.envelope(f"<DateTime>{when.replace(microsecond=0).isoformat()}</DateTime>")
        if method == "AccountPropertiesGet":
            return replies.envelope(replies.render_account(self.store.account_id))
        if method in ("OrderGetSummaryList", "OrderGetList", "OrderCount"):
            return self._list(method, fields)
        if method in ("OrderGet", "OrderGetDetails", "OrderGetMoreDetails"):
            order = self._order(fields)
            if method == "OrderGetDetails":
                order = {
                    **order,
                    "OrderItems": [
                        {k: v for k, v in item.items() if k not in ("ItemMainImageUrl", "ItemThumbnailImageUrl")}
                        for item in order.get("OrderItems") or []
                    ],
                }
            return replies.envelope(replies.render_order(order, with_items=method != "OrderGet"))
        if method == "GetOrderProgressStateLogs":
            order = self._order(fields)
            logs = self.store.logs(order["OxID"])
            return replies.envelope(
                replies.render_logs(logs, container=self.log_container, with_codes=self.log_entry_codes)
            )
        if method == "ProductCharacteristicsGet":
            if root is None or root.tag != "ProductId":  # the WSDL input is a ProductIdEntity (§7.1)
                raise xml_error(500, "ProductId is required", 1002)
            product = self.store.characteristics(_int(fields.get("OxID")), fields.get("ItemSKU"))
            if product is None:
                raise xml_error(500, "Produit introuvable", 1001)
            return replies.envelope(replies.render_characteristics(product))
        if method == "OptionTypesGetDetail":
            option_type = self.store.option_type(_int(fields.get("OxID")))
            if option_type is None:
                raise xml_error(500, "Type d'option introuvable", 1001)
            return replies.envelope(replies.render_option_type(option_type))
        if method == "OrderUpdateTransportInfo":
            oxid = _int(fields.get("OxID"))
            if oxid is None or self.store.n_for(oxid) is None:
                raise xml_error(500, "Commande introuvable", 1001, "<OxID>-1</OxID>")
            self.store.set_transport(
                oxid,
                tracking_number=fields.get("TrackingNumber"),
                tracking_url=fields.get("TrackingUrl"),
                transport_name=fields.get("TransportName"),
            )
            return replies.envelope(f"<OxID>{oxid}</OxID>")
        if method == "OrderUpdateTracking":
            return self._update_tracking(fields)
        raise xml_error(500, f"Unknown method '{method}'")

    def _order(self, fields: dict[str, Any]) -> dict[str, Any]:
        oxid = _int(fields.get("OxID"))
        order = self.store.order(oxid) if oxid is not None else None
        if order is None:
            raise xml_error(500, "Commande introuvable", 1001)
        return order

    def _update_tracking(self, fields: dict[str, Any]) -> bytes:
        oxid = _int(fields.get("OrderID"))
        when = _date(fields.get("Date"), self.store)
        if oxid is None or self.store.n_for(oxid) is None:
            raise xml_error(500, "Commande introuvable", 1001, "<OxID>-1</OxID>")
        if when is None:
            raise xml_error(500, "Date is required", 1002, "<OxID>-1</OxID>")
        log_id = self.store.add_progress_state(
            oxid,
            code=fields.get("ProgressStateMnemonicName"),
            state_id=_int(fields.get("ProgressStateID")),
            when=when,
            comment=fields.get("Comment"),
            publish=fields.get("Publish") == "true",
            update_order=fields.get("UpdateOrderProgressState") == "true",
        )
        if log_id is None:
            raise xml_error(500, "Etat d'avancement inconnu", 1002, "<OxID>-1</OxID>")
        return replies.envelope(f"<OxID>{log_id}</OxID>")

    def _list(self, method: str, fields: dict[str, Any]) -> bytes:
        start = _date(fields.get("OrderDateStart"), self.store)
        end = _date(fields.get("OrderDateEnd"), self.store)
        for value in (start, end):
            if value is not None and value < OLDEST:
                raise xml_error(500, "Only sales orders from 2010-01-15 can be handled", 1002)
        numbers = self.store.window(start, end)
        payment = _int(fields.get("PaymentStatusCode"))
        shipped = fields.get("OrdersShipped")
        if payment is not None or shipped is not None:
            numbers = [n for n in numbers if self._matches(n, payment, shipped)]
        if method == "OrderCount":
            return replies.envelope(f"<Count>{len(numbers)}</Count>")
        if fields.get("SetOrderDesc", "true") != "false":
            numbers = numbers[::-1]
        info = fields.get("PageInformation") or {}
        page_number = max(1, _int(info.get("PageNumber")) or 1)
        page_size = max(1, _int(info.get("PageSize")) or 50)
        total = len(numbers)
        total_pages = (total + page_size - 1) // page_size
        chosen = numbers[(page_number - 1) * page_size : page_number * page_size]
        orders = [self.store.order(data.order_id_for(n)) for n in chosen]
        if method == "OrderGetList":
            ids = "".join(f"<OrderID><OxID>{o['OxID']}</OxID></OrderID>" for o in orders if o)
            info_xml = (
                f"<PageInformation><PageNumber>{page_number}</PageNumber><PageSize>{page_size}</PageSize>"
                f"<TotalItems>{total}</TotalItems><TotalPages>{total_pages}</TotalPages></PageInformation>"
            )
            reply = replies.envelope(
                f"<OrderList><SetOrderDesc>false</SetOrderDesc>{info_xml}<OrderIDs>{ids}</OrderIDs></OrderList>"
            )
        else:
            reply = replies.envelope(
                replies.render_summary_list(
                    [o for o in orders if o],
                    page_number=page_number,
                    page_size=page_size,
                    total_items=total,
                    total_pages=total_pages,
                )
            )
        self._maybe_modify_after_page(page_number, [o["OxID"] for o in orders if o])
        return reply

    def _matches(self, n: int, payment: int | None, shipped: str | None) -> bool:
        order = self.store.order(data.order_id_for(n))
        if order is None:
            return False
        if payment is not None and order.get("PaymentStatusCode") != payment:
            return False
        return shipped is None or bool(order.get("Shipped")) == (shipped == "true")

    def _maybe_modify_after_page(self, page_number: int, served: Iterable[int]) -> None:
        plan = self.modify_between_pages
        if plan is None or self._page_mods_done or page_number != plan[0]:
            return
        self._page_mods_done = True
        for oxid in list(served)[: plan[1]]:
            self.store.modify(oxid, {"InternalNote": "modifiée pendant la pagination"})


def _children(root: Any) -> dict[str, Any]:
    if root is None:
        return {}
    out: dict[str, Any] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        out[child.tag] = _children(child) if len(child) else (child.text or "")
    return out


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _date(value: Any, store: SandboxStore) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise xml_error(500, f"Invalid date '{value}'", 1002) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(store.tz).replace(tzinfo=None)
    return parsed
