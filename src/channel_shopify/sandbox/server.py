"""The Shopify sandbox: the Admin GraphQL endpoint and the token endpoint of several shops on loopback.

A shop lives under ``/shops/{domain}`` (its ``base_url``): ``POST .../admin/oauth/access_token`` mints
tokens (client credentials, or a refresh token that rotates), ``POST .../admin/api/{version}/graphql.json``
executes a document with graphql-core against the subset SDL, so an invalid document gets the errors
Shopify gives. Each shop has a leaky bucket of cost points: a document reserves its requested cost,
is refused ``THROTTLED`` when the bucket holds less, and is refunded the difference after it runs.

Switches for the open questions of ``shopify-api.md`` §9 are fields of :class:`ShopifySandboxConfig`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)

from channel_shopify.sandbox.cost import actual_cost, requested_cost
from channel_shopify.sandbox.graph import PaginationDepthError, root_value
from channel_shopify.sandbox.store import SandboxShop

__all__ = ["FAULT_KINDS", "ShopifySandboxConfig", "ShopifySandboxServer", "sandbox_schema"]

FAULT_KINDS = frozenset(
    {
        "http500",
        "http503",
        "reset",
        "malformed",
        "throttled",
        "locked",
        "frozen",
        "unauthorized",
        "reset_after_apply",
        "partial",  # data with errors: one field of the reply failed (shopify-api.md §1)
    }
)
UNAUTHORIZED = b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}'


@cache
def sandbox_schema() -> GraphQLSchema:
    """The subset SDL the sandbox executes against."""
    text = resources.files("channel_shopify.sandbox").joinpath("schema.graphql").read_text(encoding="utf-8")
    return build_schema(text)


@dataclass
class Fault:
    kind: str
    times: int = 1
    after: int = 0
    seen: int = 0

    def take(self) -> bool:
        self.seen += 1
        return self.seen > self.after and (self.times < 0 or self.seen - self.after <= self.times)


@dataclass
class ShopifySandboxConfig:
    """How the sandbox behaves; each §9 open question is one field."""

    orders: int = 200
    seed: int = 7
    latency: float = 0.0
    api_version: str = "2026-04"
    bucket_size: float = 2000.0  # §9: plans differ (2000/100 seen in the captures)
    restore_rate: float = 100.0
    max_cost: int = 1000
    throttle_status: int = 200  # §9: THROTTLED answered with HTTP 200 (as seen) or 429
    search_lag: float = 0.0  # §9: seconds the updated_at search index runs behind edits
    search_precision: str = "second"  # §9: bounds compared to the second ("second") or exactly ("exact")
    write_touch_delay: float = 0.0  # §9: seconds before fulfillmentCreate / tracking updates move Order.updatedAt
    listing: str = "all"  # §9: the default orders listing holds cancelled and closed orders ("all") or not ("open")
    token_lifetime: float = 86400.0  # §9: client-credentials tokens live 24 h (reported)
    refresh_lifetime: float = 3600.0  # expiring offline tokens minted from a refresh token
    refresh_grace: bool = True  # §9: the previous refresh token works until the new one is used
    depth_cap: int = 25000  # how deep a connection may be paged
    clock_skew: float = 0.0  # seconds the shop's clock runs ahead of the host's
    clock: Callable[[], datetime] | None = None  # the shops' clock (aware UTC); default: the host's plus clock_skew
    before_request: Callable[[str], None] | None = None  # called with each GraphQL operation's name, before it runs
    faults: list[Fault] = field(default_factory=list)
    webhook_backoff: float = 1.0  # seconds before the first retry of a failed delivery (doubles, 8 retries)
    webhook_drop: float = 0.0  # share of deliveries lost on the way
    webhook_duplicate: float = 0.0  # share of deliveries sent twice
    webhook_wrong_secret: bool = False  # sign deliveries with another key
    scopes: tuple[str, ...] = (
        "read_orders",
        "read_merchant_managed_fulfillment_orders",
        "write_merchant_managed_fulfillment_orders",
    )


@dataclass
class _Bucket:
    maximum: float
    rate: float
    available: float
    at: float
    throttled: int = 0
    lowest: float = 0.0

    def refill(self, now: float) -> None:
        self.available = min(self.maximum, self.available + (now - self.at) * self.rate)
        self.at = now

    def state(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available, 1),
            "restoreRate": self.rate,
        }


@dataclass
class _Tenant:
    shop: SandboxShop
    client_id: str
    client_secret: str
    bucket: _Bucket
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)
    refresh_current: str | None = None
    refresh_previous: str | None = None  # still valid until refresh_current is used (grace)
    documents: list[dict[str, Any]] = field(default_factory=list)  # every document received, for tests
    subscriptions: list[tuple[str, str]] = field(default_factory=list)  # (topic, callback URL)
    costs: list[tuple[int, int | None]] = field(default_factory=list)  # (requested, actual) per query


class ShopifySandboxServer:
    """Serves shops on loopback; :meth:`add_shop` hosts one more."""

    def __init__(self, config: ShopifySandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or ShopifySandboxConfig()
        self.lock = threading.Lock()
        self.tenants: dict[str, _Tenant] = {}
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.deliveries = Deliveries(self)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ set-up

    def clock(self) -> datetime:
        if self.config.clock is not None:
            return self.config.clock()
        return datetime.now(UTC) + timedelta(seconds=self.config.clock_skew)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_url(self, domain: str) -> str:
        return f"{self.url}/shops/{domain}"

    def add_shop(
        self, domain: str, *, orders: int | None = None, seed: int | None = None, static_token: str | None = None
    ) -> _Tenant:
        number = len(self.tenants) + 1
        shop = SandboxShop(
            domain,
            shop_id=60_000 + number,
            clock=self.clock,
            search_lag=self.config.search_lag,
            write_touch_delay=self.config.write_touch_delay,
        )
        shop.scopes = list(self.config.scopes)
        shop.seed(
            self.config.orders if orders is None else orders, self.config.seed + number - 1 if seed is None else seed
        )
        tenant = _Tenant(
            shop=shop,
            client_id=f"sandbox-client-{number}",
            client_secret=f"sandbox-secret-{number}",
            bucket=_Bucket(
                self.config.bucket_size, self.config.restore_rate, self.config.bucket_size, time.monotonic()
            ),
        )
        if static_token:
            tenant.tokens[static_token] = float("inf")
        shop.on_change = lambda topic, body: self.deliveries.emit(domain, topic, body)
        tenant.refresh_current = f"shprt_{secrets.token_hex(8)}"
        with self.lock:
            self.tenants[domain] = tenant
        return tenant

    def shop(self, domain: str) -> SandboxShop:
        return self.tenants[domain].shop

    def tenant(self, domain: str) -> _Tenant:
        return self.tenants[domain]

    def add_fault(self, kind: str, *, times: int = 1, after: int = 0) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        fault = Fault(kind, times, after)
        with self.lock:
            self.config.faults.append(fault)
        return fault

    def expire_tokens(self, domain: str) -> None:
        """Every access token of the shop stops working now (as if their lifetime ran out)."""
        with self.lock:
            self.tenants[domain].tokens.clear()

    # ------------------------------------------------------------------ serving

    def start(self) -> ShopifySandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="shopify-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def subscribe(self, domain: str, url: str, topics: tuple[str, ...] | None = None) -> None:
        """Deliver the shop's webhooks (every topic by default) to ``url``."""
        from channel_shopify.webhooks import TOPICS

        with self.lock:
            for topic in topics or TOPICS:
                if (topic, url) not in self.tenants[domain].subscriptions:
                    self.tenants[domain].subscriptions.append((topic, url))

    def stop(self) -> None:
        self.deliveries.stop()
        self._httpd.shutdown()
        self.close()

    def close(self) -> None:
        self._httpd.server_close()

    def __enter__(self) -> ShopifySandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_fault(self) -> Fault | None:
        with self.lock:
            for fault in self.config.faults:
                if fault.take():
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.format_datetime(server.clock(), usegmt=True)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, payload, headers = server.handle(self.path, dict(self.headers.items()), body)
                if status == 0:  # a reset: close without a reply
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json; charset=utf-8"))
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    # ------------------------------------------------------------------ requests

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) < 4 or parts[0] != "shops" or parts[1] not in self.tenants:
            return 404, b'{"errors":"Not Found"}', {}
        tenant = self.tenants[parts[1]]
        rest = "/".join(parts[2:])
        if self.config.latency:
            time.sleep(self.config.latency)
        if rest == "admin/oauth/access_token":
            return self._token(tenant, headers, body)
        expected = f"admin/api/{self.config.api_version}/graphql.json"
        if rest.startswith("admin/api/") and rest.endswith("/graphql.json") and rest != expected:
            return 404, b'{"errors":"Not Found"}', {}
        if rest != expected:
            return 404, b'{"errors":"Not Found"}', {}
        fault = self._take_fault()
        if fault is not None:
            reply = self._fault_reply(fault.kind, tenant)
            if reply is not None:
                return reply
        lower = {k.lower(): v for k, v in headers.items()}
        token = lower.get("x-shopify-access-token", "")
        with self.lock:
            expiry = tenant.tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            return 401, UNAUTHORIZED, {}
        status, payload, headers = self._graphql(tenant, body)
        if fault is not None and fault.kind == "reset_after_apply":
            return 0, b"", {}  # the document ran (a write is applied), the reply is lost
        if fault is not None and fault.kind == "partial":
            reply = json.loads(payload)
            reply.setdefault("errors", []).append(
                {"message": "Internal error", "path": ["orders"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
            )
            payload = json.dumps(reply).encode()
        return status, payload, headers

    def _fault_reply(self, kind: str, tenant: _Tenant) -> tuple[int, bytes, dict[str, str]] | None:
        if kind == "reset":
            return 0, b"", {}
        if kind in ("reset_after_apply", "partial"):
            return None  # handled after the document ran
        if kind == "http500":
            return 500, b"<html><body>Internal Server Error</body></html>", {"Content-Type": "text/html"}
        if kind == "http503":
            return 503, b'{"errors":"Service Unavailable"}', {"Retry-After": "1"}
        if kind == "malformed":
            return 200, b'{"data":{"orders":{"nodes":[{"id":', {}
        if kind == "locked":
            return 423, b'{"errors":"Shop is locked"}', {}
        if kind == "frozen":
            return 402, b'{"errors":"Unavailable Shop"}', {}
        if kind == "unauthorized":
            return 401, UNAUTHORIZED, {}
        if kind == "throttled":
            with self.lock:
                tenant.bucket.refill(time.monotonic())
                state = tenant.bucket.state()
                tenant.bucket.throttled += 1
            return self._throttled(max(state["currentlyAvailable"] + 1, 1), state)
        return None

    def _throttled(self, requested: float, state: dict[str, float]) -> tuple[int, bytes, dict[str, str]]:
        reply = {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
                }
            ],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None, "throttleStatus": state}},
        }
        return self.config.throttle_status, json.dumps(reply).encode(), {}

    def _token(self, tenant: _Tenant, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        try:
            if "json" in kind:
                form = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            else:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        except (ValueError, UnicodeDecodeError):
            return 400, b'{"error":"invalid_request"}', {}
        if form.get("client_id") != tenant.client_id or form.get("client_secret") != tenant.client_secret:
            return 400, b'{"error":"invalid_client","error_description":"Client authentication failed"}', {}
        grant = form.get("grant_type")
        access = f"shpat_{secrets.token_hex(16)}"
        with self.lock:
            if grant == "client_credentials":
                tenant.tokens[access] = time.monotonic() + self.config.token_lifetime
                reply: dict[str, Any] = {
                    "access_token": access,
                    "scope": ",".join(tenant.shop.scopes),
                    "expires_in": int(self.config.token_lifetime),
                }
            elif grant == "refresh_token":
                offered = form.get("refresh_token")
                grace = self.config.refresh_grace
                if offered is not None and offered == tenant.refresh_current:
                    keep = offered  # the one just used stays valid until its successor is used
                elif grace and offered is not None and offered == tenant.refresh_previous:
                    keep = offered  # the grace: the successor was never used, so this one still works
                else:
                    return 400, b'{"error":"invalid_grant","error_description":"refresh token is invalid"}', {}
                rotated = f"shprt_{secrets.token_hex(8)}"
                tenant.refresh_previous = keep if grace else None
                tenant.refresh_current = rotated
                tenant.tokens[access] = time.monotonic() + self.config.refresh_lifetime
                reply = {
                    "access_token": access,
                    "scope": ",".join(tenant.shop.scopes),
                    "expires_in": int(self.config.refresh_lifetime),
                    "refresh_token": rotated,
                    "refresh_token_expires_in": 7776000,
                }
            else:
                return 400, b'{"error":"unsupported_grant_type"}', {}
        return 200, json.dumps(reply).encode(), {}

    def _graphql(self, tenant: _Tenant, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        schema = sandbox_schema()
        try:
            request = json.loads(body)
            text, variables = request["query"], request.get("variables") or {}
            document = parse(text)
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return 400, json.dumps({"errors": [{"message": f"Parse error: {exc}"}]}).encode(), {}
        problems = validate(schema, document)
        if problems:
            reply = {
                "errors": [
                    {"message": p.message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}} for p in problems
                ]
            }
            return 200, json.dumps(reply).encode(), {}
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        if self.config.before_request is not None:
            self.config.before_request(operation.name.value if operation.name else "")
        try:
            requested = requested_cost(schema, operation, variables)
        except (KeyError, TypeError, ValueError) as exc:
            return 200, json.dumps({"errors": [{"message": str(exc)}]}).encode(), {}
        tenant.documents.append({"query": text, "variables": variables})
        if requested > self.config.max_cost:
            reply = {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                        f"({self.config.max_cost}). See https://shopify.dev/concepts/about-apis/rate-limits for more "
                        "information on how the cost of a query is calculated. To query larger amounts of data with "
                        "fewer limits, bulk operations should be used instead.",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": self.config.max_cost},
                    }
                ]
            }
            return 200, json.dumps(reply).encode(), {}
        with self.lock:
            bucket = tenant.bucket
            bucket.refill(time.monotonic())
            if bucket.available < requested:
                bucket.throttled += 1
                state = bucket.state()
                throttled = True
            else:
                bucket.available -= requested
                bucket.lowest = min(bucket.lowest, bucket.available)
                throttled = False
        if throttled:
            tenant.costs.append((requested, None))
            return self._throttled(requested, state)
        tenant.shop.apply_due_touches()
        root = root_value(
            tenant.shop,
            depth_cap=self.config.depth_cap,
            precision=self.config.search_precision,
            listing=self.config.listing,
            scopes=tenant.shop.scopes,
            subscriptions=tenant.subscriptions,
        )
        with tenant.shop.lock:
            result = execute_sync(schema, document, root_value=root, variable_values=variables)
        data = result.data
        errors = []
        for error in result.errors or ():
            original = error.original_error
            code = "PAGINATION_LIMIT" if isinstance(original, PaginationDepthError) else "BAD_REQUEST"
            errors.append({"message": error.message, "path": error.path, "extensions": {"code": code}})
        actual = actual_cost(schema, operation, variables, data or {}) if data else 0
        actual = min(actual, requested)
        with self.lock:
            bucket.refill(time.monotonic())
            bucket.available = min(bucket.maximum, bucket.available + requested - actual)
            state = bucket.state()
        tenant.costs.append((requested, actual))
        reply_body: dict[str, Any] = {"data": data}
        if errors:
            reply_body["errors"] = errors
        reply_body["extensions"] = {
            "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": state}
        }
        return 200, json.dumps(reply_body).encode(), {}


class Deliveries:
    """Sends the shops' webhooks: signed as Shopify signs them, retried 8 times with a doubling backoff,
    some lost or doubled on the switches. One background thread; ``emit`` never blocks the shop."""

    def __init__(self, server: ShopifySandboxServer) -> None:
        import random

        self.server = server
        self.rng = random.Random(server.config.seed)
        self.queue: list[tuple[float, str, str, bytes, dict[str, str], int]] = []  # (due, url, ...)
        self.cond = threading.Condition()
        self.sent = 0
        self.lost = 0
        self.failed = 0
        self.thread: threading.Thread | None = None
        self.stopping = False

    def emit(self, domain: str, topic: str, body: dict[str, Any]) -> None:
        tenant = self.server.tenants.get(domain)
        if tenant is None:
            return
        urls = [url for subscribed, url in tenant.subscriptions if subscribed == topic]
        if not urls:
            return
        config = self.server.config
        raw = json.dumps(body).encode()
        key = "not-the-secret" if config.webhook_wrong_secret else tenant.client_secret
        from channel_shopify.webhooks import signature

        event_id = secrets.token_hex(8)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature(key, raw),
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-API-Version": config.api_version,
            "X-Shopify-Webhook-Id": secrets.token_hex(8),
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": self.server.clock().isoformat(),
        }
        with self.cond:
            for url in urls:
                if self.rng.random() < config.webhook_drop:
                    self.lost += 1
                    continue
                copies = 2 if self.rng.random() < config.webhook_duplicate else 1
                for _ in range(copies):
                    self.queue.append((time.monotonic(), url, topic, raw, headers, 0))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="shopify-webhooks", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as client:
            while True:
                with self.cond:
                    while not self.stopping and not any(due <= time.monotonic() for due, *_ in self.queue):
                        waits = [due - time.monotonic() for due, *_ in self.queue]
                        self.cond.wait(timeout=min(waits) if waits else None)
                    if self.stopping:
                        return
                    ready = min((q for q in self.queue if q[0] <= time.monotonic()), key=lambda q: q[0])
                    self.queue.remove(ready)
                _, url, topic, raw, headers, attempt = ready
                try:
                    ok = client.post(url, content=raw, headers=headers).status_code < 300
                except httpx.HTTPError:
                    ok = False
                with self.cond:
                    if ok:
                        self.sent += 1
                    elif attempt < 8:
                        backoff = self.server.config.webhook_backoff * 2**attempt
                        self.queue.append((time.monotonic() + backoff, url, topic, raw, headers, attempt + 1))
                    else:
                        self.failed += 1

    def pending(self) -> int:
        with self.cond:
            return len(self.queue)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=10)
