"""The sandbox HTTP server: the Oxatis Web Services form interface on loopback.

Served by the standard library's ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive):
no extra dependency, one thread per connection, so injected latency overlaps
across parallel requests exactly as it would against the real service.

Faults are data (:class:`Fault`): which kind, for which operations, after how
many matching calls and for how many. They can be added while the server runs.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from channel_oxatis.sandbox import replies
from channel_oxatis.sandbox.faults import FAULT_KINDS, Fault
from channel_oxatis.sandbox.operations import Operations, Reply, xml_error
from channel_oxatis.sandbox.store import SandboxStore
from channel_oxatis.sandbox.variants import VARIANTS, apply_variants

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
    "optiontypesservices": frozenset({"OptionTypesGetDetail"}),
    "identityservices": frozenset({"AccountPropertiesGet"}),
    "adminpropertiesservices": frozenset({"GetServerDate"}),
}


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
    clock: Callable[[], datetime] | None = None  # the store's clock (aware); default: the host's plus clock_skew
    clock_skew: float = 0.0  # seconds the store's clock is ahead of the host's
    list_order: str = "modified"  # what the summary list sorts on: "modified" or "created" (§6)
    visible: int | None = None  # orders that exist at start (default: count); store.create_order() adds the rest
    account_id: int = 41001  # the merchant account AccountPropertiesGet names; add_store() numbers the others
    # GetServerDate answers the clock that stamps orders ("database", default) or the Date header's ("web")
    server_date_clock: str = "database"
    stamp_lag: float = 0.0  # seconds the clock stamping orders runs behind the Date header's
    date_header: bool = True  # False: replies carry an empty Date header (a proxy that drops it)
    log_container: str = "wsdl"  # progress-state logs: "wsdl" or "xsd" container (oxatis-api.md §7.2)
    log_entry_codes: bool = True  # entries carry ID and Code (WSDL); False: as the XSD, without them
    variants: frozenset[str] = frozenset()  # reply variants of a real store: see sandbox.variants.VARIANTS


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """One call the sandbox answered, as a store's access log would show it."""

    token: str
    method: str
    at: float  # time.monotonic() when it arrived
    user_agent: str


class SandboxServer:
    """A running sandbox. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        unknown = set(self.config.variants) - VARIANTS
        if unknown:
            raise ValueError(f"unknown sandbox variants: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        if self.config.anchor is not None:
            kwargs["anchor"] = self.config.anchor
        self.store = SandboxStore(
            count=self.config.count,
            seed=self.config.seed,
            timezone=self.config.timezone,
            with_shipped_state=self.config.with_shipped_state,
            wrong_type_order=self.config.wrong_type_order,
            clock=self.config.clock,
            clock_skew=self.config.clock_skew,
            list_order=self.config.list_order,
            visible=self.config.visible,
            account_id=self.config.account_id,
            stamp_lag=self.config.stamp_lag,
            **kwargs,
        )
        # called with the method before each call is answered; it may change the store, or raise a Reply
        self.on_request: Callable[[str], None] | None = None
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.operations = Operations(
            self.store,
            modify_between_pages=self.config.modify_between_pages,
            log_container=self.config.log_container,
            log_entry_codes=self.config.log_entry_codes,
            server_date_clock=self.config.server_date_clock,
        )
        # one sandbox, many stores: each token is a merchant's store with its own orders (add_store)
        self._tenants: dict[str, tuple[SandboxStore, Operations]] = {self.config.token: (self.store, self.operations)}
        self.calls_by_token: Counter[str] = Counter()
        # every answered call: who (token), what, when (monotonic), and the client's User-Agent
        self.requests: deque[SandboxRequest] = deque(maxlen=1_000_000)
        self._quotas: dict[str, int] = {}  # token -> calls a day before StatusCode 504
        self._quota_used: Counter[str] = Counter()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oxatis-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        """Release the listening socket (after ``serve_forever`` returned)."""
        self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and release the socket; a server that never started is only closed."""
        if self._thread is not None:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_store(
        self, token: str, *, count: int = 200, seed: int = 7, quota: int | None = None, account_id: int | None = None
    ) -> SandboxStore:
        """Host another merchant's store on this sandbox, reached with ``token``; returns its store.

        :param quota: the store's daily call quota: calls beyond it get StatusCode 504 until
            :meth:`reset_quota` (the day turning, §1.7).
        :param account_id: its merchant account (default: the next number after the stores hosted).
        """
        with self._lock:
            number = account_id or max(s.account_id for s, _ in self._tenants.values()) + 1
        store = SandboxStore(
            count=count, seed=seed, timezone=self.config.timezone, clock=self.config.clock, account_id=number
        )
        with self._lock:
            if token in self._tenants:
                raise ValueError(f"the sandbox already has a store for token {token!r}")
            self._tenants[token] = (store, Operations(store, server_date_clock=self.config.server_date_clock))
            if quota is not None:
                self._quotas[token] = quota
        return store

    def add_token(self, token: str, *, for_token: str) -> None:
        """Another token for the store ``for_token`` reaches (a merchant rotating its token): same account."""
        with self._lock:
            if token in self._tenants:
                raise ValueError(f"the sandbox already has a store for token {token!r}")
            self._tenants[token] = self._tenants[for_token]

    def tenant(self, token: str) -> SandboxStore:
        """The store reached with ``token``."""
        return self._tenants[token][0]

    def set_quota(self, token: str, calls: int | None) -> None:
        """``token``'s store may answer ``calls`` more calls today (``None``: no quota), then StatusCode 504."""
        with self._lock:
            self._quota_used[token] = 0
            if calls is None:
                self._quotas.pop(token, None)
            else:
                self._quotas[token] = calls

    def reset_quota(self, token: str) -> None:
        """A new day for ``token``'s quota."""
        with self._lock:
            self._quota_used[token] = 0

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

            def date_time_string(self, timestamp: float | None = None) -> str:
                if not sandbox.config.date_header:
                    return ""
                return email.utils.format_datetime(sandbox.store.instant(), usegmt=True)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet; the token must not reach any log either

            def do_GET(self) -> None:
                self._send(replies.envelope(None, status=503, details="Unauthorized"), 200, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    sandbox._handle(self.path, body, self.headers.get("User-Agent", ""))
                except Reply as reply:
                    if reply.status == -1:
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._send(reply.body, reply.status, reply.headers)

            def _send(self, body: bytes, status: int, headers: dict[str, str]) -> None:
                with contextlib.suppress(ConnectionError):  # the client gave up (a timeout test): nothing to say
                    self._write(body, status, headers)

            def _write(self, body: bytes, status: int, headers: dict[str, str]) -> None:
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

    def _handle(self, path: str, body: bytes, user_agent: str = "") -> None:
        form = {k.lower(): v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        method = form.get("method", "")
        service = path.rsplit("/", 1)[-1].removesuffix(".aspx").lower()
        if "/webservices/httpservices/" not in path.lower() or service not in SERVICES:
            raise xml_error(503, "Unauthorized")
        tenant = self._tenants.get(form.get("token", ""))
        if tenant is None:
            raise xml_error(503, "Unauthorized")
        if self.config.app_id is not None and form.get("appid") != self.config.app_id:
            raise xml_error(503, "Unauthorized")
        if method not in SERVICES[service]:
            raise xml_error(500, f"Unknown method '{method}'")
        token = form.get("token", "")
        with self._lock:
            self.calls[method] += 1
            self.calls_by_token[token] += 1
            self.requests.append(SandboxRequest(token, method, time.monotonic(), user_agent))
            self._quota_used[token] += 1
            over_quota = token in self._quotas and self._quota_used[token] > self._quotas[token]
        if over_quota:
            raise xml_error(504, "Daily web services calls limit reached")
        if self.on_request is not None:
            self.on_request(method)
        if self.config.latency:
            time.sleep(self.config.latency)
        fault = self._fault_for(method)
        if fault is not None:
            self._apply_fault(fault, method, form, tenant[1])
        raise Reply(apply_variants(tenant[1].dispatch(method, form.get("data", "")), self.config.variants))

    def _apply_fault(self, fault: Fault, method: str, form: dict[str, str], operations: Operations) -> None:
        kind = fault.kind
        if kind == "slow":
            time.sleep(fault.delay)
            return
        if kind == "slow_after_apply":
            reply = operations.dispatch(method, form.get("data", ""))
            time.sleep(fault.delay)
            raise Reply(reply)
        simple: dict[str, Reply] = {
            "maintenance": xml_error(600, "Maintenance en cours"),
            "quota": xml_error(504, "Daily web services calls limit reached"),
            "unauthorized": xml_error(503, "Unauthorized"),
            "html500": Reply(replies.HTML_ERROR_PAGE, 500),
            "empty": Reply(b"", 200),
            "no_data": Reply(replies.envelope(None)),
            "malformed": Reply(replies.MALFORMED, 200),
            "entity_bomb": Reply(replies.ENTITY_BOMB, 200),
            "external_entity": Reply(replies.EXTERNAL_ENTITY, 200),
            "http429": Reply(b"Too Many Requests", 429, {"Retry-After": str(fault.retry_after)}),
            "http503": Reply(b"Service Unavailable", 503),
            "reset": Reply(b"", -1),
        }
        raise simple[kind]
