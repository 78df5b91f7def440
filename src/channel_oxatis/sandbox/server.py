"""The sandbox HTTP server: the Oxatis Web Services form interface on loopback.

Served by the standard library's ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive):
no extra dependency, one thread per connection, so injected latency overlaps
across parallel requests exactly as it would against the real service.

Faults are data (:class:`Fault`): which kind, for which operations, after how
many matching calls and for how many. They can be added while the server runs.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from lxml import etree

from channel_oxatis.sandbox import data, replies
from channel_oxatis.sandbox.store import SandboxStore

__all__ = ["FAULT_KINDS", "Fault", "SandboxConfig", "SandboxServer"]

SERVICES: dict[str, frozenset[str]] = {
    "orderservices": frozenset(
        {
            "OrderCount",
            "OrderGetList",
            "OrderGetSummaryList",
            "OrderGet",
            "OrderGetDetails",
            "OrderGetMoreDetails",
            "OrderUpdateTransportInfo",
            "OrderUpdateTracking",
        }
    ),
    "progressstateservices": frozenset({"ProgressStateGetList"}),
    "progressstatelogservices": frozenset({"GetOrderProgressStateLogs"}),
    "productcharacteristicsservices": frozenset({"ProductCharacteristicsGet"}),
}
WRITES = frozenset({"OrderUpdateTransportInfo", "OrderUpdateTracking"})
FAULT_KINDS = frozenset(
    {
        "maintenance",  # StatusCode 600
        "quota",  # StatusCode 504
        "unauthorized",  # StatusCode 503
        "html500",  # HTTP 500 with an IIS-like HTML page
        "empty",  # HTTP 200 with an empty body
        "malformed",  # truncated XML
        "entity_bomb",  # a DTD with nested entities
        "external_entity",  # a DTD with a SYSTEM entity
        "http429",  # HTTP 429 with Retry-After
        "http503",  # HTTP 503 before processing
        "reset",  # close the connection without replying
        "slow",  # wait ``delay`` seconds before processing
        "slow_after_apply",  # process (writes applied), then wait ``delay`` seconds before replying
    }
)
OLDEST = datetime(2010, 1, 15)


@dataclass
class Fault:
    """Make ``times`` matching calls fail as ``kind`` (``times=-1``: every call), after skipping ``after``."""

    kind: str
    times: int = 1
    methods: frozenset[str] | None = None
    after: int = 0
    delay: float = 0.0
    retry_after: int = 1
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        if self.methods is not None:
            self.methods = frozenset(self.methods)

    def take(self, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times < 0 or self.seen - self.after <= self.times


@dataclass
class SandboxConfig:
    count: int = 200
    seed: int = 7
    token: str = "sandbox-token"  # noqa: S105 - the sandbox's own, published test token
    app_id: str | None = None
    latency: float = 0.0
    timezone: str = "Europe/Paris"
    with_shipped_state: bool = True
    wrong_type_order: int | None = None
    modify_between_pages: tuple[int, int] | None = None  # (after page P, modify K orders of that page)
    faults: list[Fault] = field(default_factory=list)
    anchor: datetime | None = None


class _Reply(Exception):
    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body, self.status, self.headers = body, status, headers or {}


def _xml_error(status: int, details: str, sub_code: int = 0, data: str | None = None) -> _Reply:
    return _Reply(replies.envelope(data, status=status, sub_code=sub_code, details=details))


class SandboxServer:
    """A running sandbox. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        kwargs: dict[str, Any] = {}
        if self.config.anchor is not None:
            kwargs["anchor"] = self.config.anchor
        self.store = SandboxStore(
            count=self.config.count,
            seed=self.config.seed,
            timezone=self.config.timezone,
            with_shipped_state=self.config.with_shipped_state,
            wrong_type_order=self.config.wrong_type_order,
            **kwargs,
        )
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._page_mods_done = False
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oxatis-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_fault(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, **kwargs)
        with self._lock:
            self.config.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.config.faults.clear()

    def detail_calls(self) -> int:
        return sum(self.calls[m] for m in ("OrderGet", "OrderGetDetails", "OrderGetMoreDetails"))

    # ------------------------------------------------------------------ request handling

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "Microsoft-IIS/10.0"
            sys_version = ""

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet; the token must not reach any log either

            def do_GET(self) -> None:
                self._send(replies.envelope(None, status=503, details="Unauthorized"), 200, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    sandbox._handle(self.path, body)
                except _Reply as reply:
                    if reply.status == -1:
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._send(reply.body, reply.status, reply.headers)

            def _send(self, body: bytes, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                content_type = (
                    "text/html; charset=utf-8"
                    if body.lstrip().startswith(b"<!DOCTYPE html")
                    else ("text/xml; charset=utf-8")
                )
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _fault_for(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self.config.faults:
                if fault.take(method):
                    return fault
        return None

    def _handle(self, path: str, body: bytes) -> None:
        form = {k.lower(): v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        method = form.get("method", "")
        service = path.rsplit("/", 1)[-1].removesuffix(".aspx").lower()
        if "/webservices/httpservices/" not in path.lower() or service not in SERVICES:
            raise _xml_error(503, "Unauthorized")
        if form.get("token") != self.config.token:
            raise _xml_error(503, "Unauthorized")
        if self.config.app_id is not None and form.get("appid") != self.config.app_id:
            raise _xml_error(503, "Unauthorized")
        if method not in SERVICES[service]:
            raise _xml_error(500, f"Unknown method '{method}'")
        with self._lock:
            self.calls[method] += 1
        if self.config.latency:
            time.sleep(self.config.latency)
        fault = self._fault_for(method)
        if fault is not None:
            self._apply_fault(fault, method, form)
        raise _Reply(self._dispatch(method, form.get("data", "")))

    def _apply_fault(self, fault: Fault, method: str, form: dict[str, str]) -> None:
        kind = fault.kind
        if kind == "slow":
            time.sleep(fault.delay)
            return
        if kind == "slow_after_apply":
            reply = self._dispatch(method, form.get("data", ""))
            time.sleep(fault.delay)
            raise _Reply(reply)
        simple: dict[str, _Reply] = {
            "maintenance": _xml_error(600, "Maintenance en cours"),
            "quota": _xml_error(504, "Daily web services calls limit reached"),
            "unauthorized": _xml_error(503, "Unauthorized"),
            "html500": _Reply(replies.HTML_ERROR_PAGE, 500),
            "empty": _Reply(b"", 200),
            "malformed": _Reply(replies.MALFORMED, 200),
            "entity_bomb": _Reply(replies.ENTITY_BOMB, 200),
            "external_entity": _Reply(replies.EXTERNAL_ENTITY, 200),
            "http429": _Reply(b"Too Many Requests", 429, {"Retry-After": str(fault.retry_after)}),
            "http503": _Reply(b"Service Unavailable", 503),
            "reset": _Reply(b"", -1),
        }
        raise simple[kind]

    # ------------------------------------------------------------------ operations

    def _dispatch(self, method: str, data_xml: str) -> bytes:
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            root = etree.fromstring(data_xml.encode("utf-8"), parser) if data_xml.strip() else None
        except etree.XMLSyntaxError as exc:
            line, col = exc.position
            raise _xml_error(500, f"Invalid XML ({line}, {col})") from None
        fields = _children(root)
        if method == "ProgressStateGetList":
            return replies.envelope(replies.render_states(self.store.states()))
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
            return replies.envelope(replies.render_logs(self.store.logs(order["OxID"])))
        if method == "ProductCharacteristicsGet":
            product = self.store.characteristics(_int(fields.get("OxID")), fields.get("ItemSKU"))
            if product is None:
                raise _xml_error(500, "Produit introuvable", 1001)
            return replies.envelope(replies.render_characteristics(product))
        if method == "OrderUpdateTransportInfo":
            oxid = _int(fields.get("OxID"))
            if oxid is None or self.store.n_for(oxid) is None:
                raise _xml_error(500, "Commande introuvable", 1001, "<OxID>-1</OxID>")
            self.store.set_transport(
                oxid,
                tracking_number=fields.get("TrackingNumber"),
                tracking_url=fields.get("TrackingUrl"),
                transport_name=fields.get("TransportName"),
            )
            return replies.envelope(f"<OxID>{oxid}</OxID>")
        if method == "OrderUpdateTracking":
            return self._update_tracking(fields)
        raise _xml_error(500, f"Unknown method '{method}'")

    def _order(self, fields: dict[str, Any]) -> dict[str, Any]:
        oxid = _int(fields.get("OxID"))
        order = self.store.order(oxid) if oxid is not None else None
        if order is None:
            raise _xml_error(500, "Commande introuvable", 1001)
        return order

    def _update_tracking(self, fields: dict[str, Any]) -> bytes:
        oxid = _int(fields.get("OrderID"))
        when = _date(fields.get("Date"), self.store)
        if oxid is None or self.store.n_for(oxid) is None:
            raise _xml_error(500, "Commande introuvable", 1001, "<OxID>-1</OxID>")
        if when is None:
            raise _xml_error(500, "Date is required", 1002, "<OxID>-1</OxID>")
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
            raise _xml_error(500, "Etat d'avancement inconnu", 1002, "<OxID>-1</OxID>")
        return replies.envelope(f"<OxID>{log_id}</OxID>")

    def _list(self, method: str, fields: dict[str, Any]) -> bytes:
        start = _date(fields.get("OrderDateStart"), self.store)
        end = _date(fields.get("OrderDateEnd"), self.store)
        for value in (start, end):
            if value is not None and value < OLDEST:
                raise _xml_error(500, "Only sales orders from 2010-01-15 can be handled", 1002)
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
        plan = self.config.modify_between_pages
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
        raise _xml_error(500, f"Invalid date '{value}'", 1002) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(store.tz).replace(tzinfo=None)
    return parsed
