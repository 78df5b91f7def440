"""One HTTP client for every channel: timeouts, retries as data, a rate limit, a log line per call.

Retry rules:

* reads (``idempotent=True``) are retried on any :class:`~channel_core.errors.RetriableError`;
* writes are retried only when the error says the request never reached the
  server (``request_sent=False``: connect errors, 429, 503 before processing, or a
  channel-specific "not processed" reply such as maintenance);
* ``Retry-After`` (seconds or an HTTP date) is honoured as given, without jitter; a wait
  longer than ``retry_after_cap`` or than what is left of ``max_total_delay`` is not cut
  short: the call stops at once with :class:`~channel_core.errors.RateLimitedError`
  carrying the wait, so the caller resumes later. Otherwise the wait is exponential with jitter;
* attempts and the total time spent waiting are both bounded.

Budgets count cost: a request reserves ``cost`` (1 unless the channel says more, as a GraphQL query
costs its points) from the channel's limiter and the host's shared budget before it leaves; when the
reply tells what it really cost and how full the store's bucket is (``measure``), both are settled:
the unspent part comes back and the limiter adopts the store's own figures.

Channel-specific reply checks run inside the retry loop through the ``parse``
callable, so a channel can turn a body-level status into a retriable error.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import functools
import json as json_module
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote_plus, urlencode

import httpx

from channel_core import __version__
from channel_core.errors import (
    AuthenticationError,
    ChannelAPIError,
    ClientError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    StoreUnavailableError,
    TransportError,
)
from channel_core.keepalive import KeepAliveTransport
from channel_core.logs import get_logger

__all__ = [
    "DEFAULT_TIMEOUT",
    "BucketState",
    "CostBucket",
    "HttpClient",
    "Limiter",
    "Measured",
    "RateLimiter",
    "RetryPolicy",
    "guard_writes",
    "parse_retry_after",
    "run_scope",
]

logger = get_logger(__name__)
T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0  # seconds a reply may take, unless a channel sets its own
Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try again. All durations are seconds."""

    max_attempts: int = 5
    max_total_delay: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: float = 0.5
    retry_after_cap: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.max_total_delay < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("RetryPolicy durations must not be negative")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with jitter for the wait after ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        jitter = float((rng or random).uniform(0, self.jitter)) if self.jitter else 0.0
        return float(min(self.backoff_max, base + jitter))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A store's leaky bucket as a reply reported it: points it holds at most, holds now, restores per second."""

    maximum: float
    available: float
    restore_rate: float


@dataclass(frozen=True, slots=True)
class Measured:
    """What a reply says a call cost: ``actual`` points charged (``None``: unknown, keep the reservation), and
    the bucket's state after it, when the store reports one."""

    actual: float | None = None
    bucket: BucketState | None = None


class Limiter(Protocol):
    """Anything that paces requests: a limiter in one process, a shared budget across many.

    A request reserves its ``cost`` before it leaves (1 for a plain request); :meth:`settle` gives back
    what it did not spend and adopts the bucket state the store reported.
    """

    def acquire(self, cost: float = 1.0) -> float:
        """Wait until a request of ``cost`` may go; return how long that took in seconds."""
        ...

    def settle(self, reserved: float, measured: Measured) -> None:
        """A reply came back: return ``reserved - measured.actual`` and resynchronise from ``measured.bucket``."""
        ...


class RateLimiter:
    """A thread-safe limit of ``rate`` requests (cost units) per second with bursts of ``burst``."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("RateLimiter rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._tat = 0.0
        self._lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> float:
        """Wait for a slot; return how long we waited."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait = tat - (self.burst - 1) * self._interval - now
            self._tat = tat + self._interval * cost
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def settle(self, reserved: float, measured: Measured) -> None:
        """Requests cost what they reserved: nothing to settle."""


class CostBucket:
    """A mirror of a store's leaky bucket of cost points, in one process.

    It starts from a guess (``maximum`` points, ``restore_rate`` per second) and adopts what each reply
    reports: the bucket's size, restore rate and the points it holds, less what calls still in flight
    have reserved. A call waits until the mirror holds its requested cost, so calls that fit the bucket
    are never refused by the store for want of points; the caller keeps each call under ``maximum``.
    """

    def __init__(
        self,
        maximum: float,
        restore_rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if maximum <= 0 or restore_rate <= 0:
            raise ValueError("CostBucket maximum and restore_rate must be positive")
        self.maximum, self.restore_rate = float(maximum), float(restore_rate)
        self._available, self._at = float(maximum), clock()
        self._in_flight = 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def available(self) -> float:
        """Points the mirror holds now."""
        with self._lock:
            self._refill(self._clock())
            return self._available

    def acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` points, first waiting until the bucket holds them; return the wait."""
        cost = min(float(cost), self.maximum)
        with self._lock:
            now = self._clock()
            self._refill(now)
            wait = max(0.0, (cost - self._available) / self.restore_rate)
            self._available -= cost  # may go below zero: later callers wait for the debt too
            self._in_flight += cost
        if wait > 0:
            self._sleep(wait)
        return wait

    def settle(self, reserved: float, measured: Measured) -> None:
        reserved = min(float(reserved), self.maximum)
        with self._lock:
            self._refill(self._clock())
            self._in_flight = max(0.0, self._in_flight - reserved)
            bucket = measured.bucket
            if bucket is not None and bucket.maximum > 0 and bucket.restore_rate > 0:
                self.maximum, self.restore_rate = float(bucket.maximum), float(bucket.restore_rate)
                self._available = min(self.maximum, float(bucket.available)) - self._in_flight
            elif measured.actual is not None:
                self._available = min(self.maximum, self._available + max(0.0, reserved - measured.actual))

    def __repr__(self) -> str:
        return f"CostBucket(maximum={self.maximum:g}, restore_rate={self.restore_rate:g})"


@dataclass(frozen=True, slots=True)
class _RunScope:
    label: str | None
    budget: Limiter | None
    timeout: float | None = None


_RUN_SCOPE: contextvars.ContextVar[_RunScope | None] = contextvars.ContextVar("channel_core_run_scope", default=None)


@contextlib.contextmanager
def run_scope(
    *, label: str | None = None, budget: Limiter | None = None, timeout: float | None = None
) -> Iterator[None]:
    """Settings a host applies to every :class:`HttpClient` a channel creates inside the block.

    :param label: names the run: it goes into each request's log line and, as a product comment,
        into the ``User-Agent`` (``channel-core/1.0 (run 3f2a)``), so a store's logs show whose
        requests they were. Never a secret.
    :param budget: a rate budget shared with other processes (an account's
        :class:`~channel_core.fleet.budget.PostgresRateBudget`), taken after the channel's own limiter,
        just before each request (retries included) goes out.
    :param timeout: the longest any request may take, in seconds, whatever the channel's own setting:
        what a host's claim leases are measured against.
    """
    token = _RUN_SCOPE.set(_RunScope(label, budget, timeout))
    try:
        yield
    finally:
        _RUN_SCOPE.reset(token)


_WRITE_GUARD: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "channel_core_write_guard", default=None
)


@contextlib.contextmanager
def guard_writes(check: Callable[[], None]) -> Iterator[None]:
    """Call ``check`` just before every write request (``idempotent=False``) made in this thread's block
    leaves: after the rate limiter's and the shared budget's waits, retries included.

    ``check`` raises to stop the write: the notifier uses it to renew its claim on the order, so a
    notifier paused past its lease (or queued behind a busy budget) never writes after another took
    the order over.
    """
    token = _WRITE_GUARD.set(check)
    try:
        yield
    finally:
        _WRITE_GUARD.reset(token)


def _stop(policy: RetryPolicy, attempt: int, idle: float, exc: ChannelAPIError) -> bool:
    """Whether a failed ``attempt`` is the last, after ``idle`` seconds already slept between attempts."""
    if attempt >= policy.max_attempts or idle >= policy.max_total_delay:
        return True
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        # the server said when: waiting less and asking early only spends the budget it protects
        return exc.retry_after > min(policy.max_total_delay - idle, policy.retry_after_cap)
    return False


def _wait(policy: RetryPolicy, attempt: int, idle: float, exc: ChannelAPIError) -> float:
    """The wait before the attempt after ``attempt``: the server's ``Retry-After`` whole, else the backoff."""
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        return exc.retry_after  # the whole wait the server asked for (_stop gave up on longer ones)
    return max(0.0, min(policy.backoff(attempt), policy.max_total_delay - idle))


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One logical call, as every attempt sends it."""

    method: str
    path: str
    data: Mapping[str, str] | None
    json: Any
    headers: Mapping[str, str] | None
    operation: str
    cost: float
    parse: Callable[[httpx.Response], T]
    measure: Callable[[httpx.Response], Measured | None] | None
    classify: Callable[[httpx.Response], None] | None
    content: bytes | None = None
    content_type: str | None = None


@functools.lru_cache(maxsize=64)
def _http_date(value: str) -> datetime | None:
    """A ``Date`` header's instant (aware UTC), or ``None`` when it does not read as one. Cached: replies within a
    second carry the same text, whichever client of the process reads them."""
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return (date if date.tzinfo is not None else date.replace(tzinfo=UTC)).astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _parsed_base(base_url: str) -> tuple[httpx.URL, str]:
    """``base_url`` parsed (an immutable httpx.URL) and as text, once per process: a fleet worker makes a client
    per job, for the same few hosts."""
    url = httpx.URL(base_url)
    return url, str(url)


@functools.lru_cache(maxsize=4096)
def _joined(base_url: str, path: str) -> tuple[httpx.URL, str]:
    """``path`` under ``base_url``: the URL and its request target (path and query). Cached for the process: a
    fleet worker makes a client per job, for the same few endpoints."""
    base = httpx.URL(base_url)
    url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/" + path.lstrip("/").encode("ascii"))
    return url, url.raw_path.decode("ascii")


FORM = "application/x-www-form-urlencoded"


# quote_plus of one ASCII character: letters, digits and "_.-~" as they are, space as "+", the rest as %XX
_FORM_ASCII = {
    code: chr(code) if chr(code).isalnum() or chr(code) in "_.-~" else "+" if code == 32 else f"%{code:02X}"
    for code in range(128)
}


def _quote_plus(text: str) -> str:
    # str.translate does in C what quote_plus does a character at a time in Python (an XML payload is long)
    return text.translate(_FORM_ASCII) if text.isascii() else quote_plus(text)


def encode_form(form: Mapping[str, str]) -> bytes:
    """``form`` url-encoded as httpx encodes ``data=`` (so recorded cassettes match the bytes)."""
    if all(type(value) is str for value in form.values()):
        return "&".join(f"{_quote_plus(key)}={_quote_plus(value)}" for key, value in form.items()).encode()
    return urlencode(list(form.items()), doseq=True).encode("utf-8")


def content_charset(response: httpx.Response) -> str | None:
    """The ``charset`` of a reply's ``Content-Type``, as ``httpx.Response.charset_encoding`` reads it, without
    the e-mail parser it goes through (a good share of a small reply's cost)."""
    value = response.headers.get("content-type")
    if not value:
        return None
    for parameter in value.split(";")[1:]:
        name, _, found = parameter.partition("=")
        if name.strip().lower() == "charset":
            return found.strip().strip("\"'").lower() or None
    return None


def _encode_body(call: _Call[Any]) -> tuple[bytes, str | None]:
    """The body of ``call`` as httpx would encode it (cassettes match these bytes), and its content type."""
    if call.content is not None:
        return call.content, call.content_type
    if call.data:
        return encode_form(call.data), FORM
    if call.json is not None:
        text = json_module.dumps(call.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8"), "application/json"
    return b"", None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process (loading the CA bundle costs ~30 ms)."""
    return httpx.create_ssl_context()


class HttpClient:
    """The HTTP client channel plugins share: httpx requests and responses over a lean transport.

    :param channel: channel name, used in errors and logs.
    :param base_url: the API root; paths are joined to it.
    :param transport: an httpx transport; the default keeps one keep-alive ``http.client``
        connection per thread (:mod:`channel_core.keepalive`), which vcrpy records and replays.
    :param sleep: the sleeper used between retries and by the rate limiter.
    """

    def __init__(
        self,
        *,
        channel: str,
        base_url: str,
        timeout: httpx.Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        rate_limiter: Limiter | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 20,
    ) -> None:
        self.channel = channel
        self.retry_policy = retry_policy or RetryPolicy()
        self.rate_limiter = rate_limiter
        self._sleep = sleep
        self._server_date: tuple[datetime, float] | None = None
        self._answered = False  # has the server ever replied on this client?
        self._server_date_lock = threading.Lock()
        self._base_url, self._base_text = _parsed_base(base_url)  # the text: the key of _joined's cache
        # Requests go straight to the transport: no client-level cookies, auth or redirect machinery, which
        # cost more CPU per call than decoding the reply. The default transport keeps one keep-alive
        # connection per thread (:mod:`channel_core.keepalive`), so parallel calls share no lock.
        self._transport = transport or KeepAliveTransport(tls=_tls_context)
        scope = _RUN_SCOPE.get()
        self.run_label = scope.label if scope is not None else None
        self.budget = scope.budget if scope is not None else None
        agent = f"channel-core/{__version__}" + (f" (run {self.run_label})" if self.run_label else "")
        self._headers = {"User-Agent": agent, **dict(headers or {})}
        limits = (timeout or httpx.Timeout(DEFAULT_TIMEOUT, connect=10.0)).as_dict()
        if scope is not None and scope.timeout is not None:  # the host's cap on every request
            cap = scope.timeout
            limits = {k: cap if v is None else min(v, cap) for k, v in limits.items()}
        self._timeout = limits
        del max_connections  # one connection per calling thread: the caller's thread count bounds them

    def _url(self, path: str) -> httpx.URL:
        return _joined(self._base_text, path)[0]

    def server_time(self) -> datetime | None:
        """A lower bound of the server's clock now (aware UTC), or ``None`` before any dated reply.

        Taken from the ``Date`` header of the latest reply plus the time elapsed
        on our monotonic clock since it arrived. ``Date`` is truncated to the
        second and written before the reply leaves, so the result never runs
        ahead of the server, whatever the host's own clock says.
        """
        with self._server_date_lock:
            seen = self._server_date
        if seen is None:
            return None
        date, received = seen
        return date + timedelta(seconds=max(0.0, time.monotonic() - received))

    def _note_server_date(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        date = _http_date(value) if value else None
        if date is not None:
            with self._server_date_lock:
                self._server_date = (date, time.monotonic())

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient(channel={self.channel!r}, base_url={self.base_url!r})"

    def post_form(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        operation: str,
        idempotent: bool,
        parse: Callable[[httpx.Response], T],
        prefix: bytes = b"",
    ) -> T:
        """POST ``form`` url-encoded and return ``parse(response)``, retrying per the policy.

        :param prefix: fields encoded once by :func:`encode_form` (a channel's token, the same on every call),
            sent before ``form``'s.
        """
        if not prefix:
            return self.request("POST", path, data=form, operation=operation, idempotent=idempotent, parse=parse)
        body = prefix + b"&" + encode_form(form) if form else prefix
        return self.request(
            "POST",
            path,
            content=body,
            content_type=FORM,
            operation=operation,
            idempotent=idempotent,
            parse=parse,
        )

    def post_json(
        self,
        path: str,
        body: Any,
        *,
        operation: str,
        idempotent: bool,
        parse: Callable[[httpx.Response], T],
        headers: Mapping[str, str] | None = None,
        cost: float = 1.0,
        measure: Callable[[httpx.Response], Measured | None] | None = None,
        classify: Callable[[httpx.Response], None] | None = None,
    ) -> T:
        """POST ``body`` as JSON and return ``parse(response)``, retrying per the policy (see :meth:`request`)."""
        return self.request(
            "POST",
            path,
            json=body,
            operation=operation,
            idempotent=idempotent,
            parse=parse,
            headers=headers,
            cost=cost,
            measure=measure,
            classify=classify,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        idempotent: bool,
        parse: Callable[[httpx.Response], T],
        data: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cost: float = 1.0,
        measure: Callable[[httpx.Response], Measured | None] | None = None,
        classify: Callable[[httpx.Response], None] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> T:
        """Send one request (retried per the policy) and return ``parse(response)``.

        :param parse: the channel's reading of a reply that passed the HTTP status checks; it runs inside
            the retry loop, so it may raise a :class:`~channel_core.errors.RetriableError` for a reply that
            says "try again" (a GraphQL ``THROTTLED`` in a 200).
        :param headers: headers of this call only (a credential that may change between calls).
        :param cost: what the call reserves from the limiter and the shared budget (1: a plain request).
        :param measure: reads a reply's actual cost and bucket state; every reply's measure settles the
            reservation, before ``parse`` runs.
        :param classify: the channel's reading of any reply before the HTTP status checks: it raises the
            error a reply means when the status alone would mislead (a GraphQL ``THROTTLED`` with its
            bucket state, a 200 carrying a refusal); returning lets the usual checks run.
        :param content: a body already encoded (instead of ``data`` or ``json``), of ``content_type``.
        """
        call = _Call(
            method, path, data, json, headers, operation, cost, parse, measure, classify, content, content_type
        )
        guard = None if idempotent else _WRITE_GUARD.get()
        policy = self.retry_policy
        attempt, idle = 0, 0.0  # attempts made; seconds slept between them
        while True:
            attempt += 1
            try:
                return self._send_once(call, attempt, guard)
            except ChannelAPIError as exc:
                if not self._should_retry(exc, idempotent) or _stop(policy, attempt, idle, exc):
                    raise
                wait = _wait(policy, attempt, idle, exc)
                logger.warning(
                    "http_retry",
                    channel=self.channel,
                    operation=operation,
                    attempt=attempt,
                    wait=round(wait, 3),
                    error=type(exc).__name__,
                )
                self._sleep(wait)
                idle += wait

    def _should_retry(self, exc: ChannelAPIError, idempotent: bool) -> bool:
        if not exc.retriable:
            return False
        if isinstance(exc, TransportError) and not exc.request_sent and not self._answered:
            return False  # a server that never answered is a wrong address, not a hiccup: say so at once
        return idempotent or not exc.request_sent

    def _exchange(self, call: _Call[T]) -> httpx.Response:
        """Send ``call`` once and read its reply. Over the default transport the bytes are built here and go
        straight to the thread's connection; another transport (a test's, a host's) gets an httpx.Request."""
        if isinstance(self._transport, KeepAliveTransport):
            url, target = _joined(self._base_text, call.path)
            body, content_type = _encode_body(call)
            headers = self._headers if not call.headers else {**self._headers, **call.headers}
            if content_type is not None:
                headers = {**headers, "Content-Length": str(len(body)), "Content-Type": content_type}
            elif call.method in ("POST", "PUT", "PATCH"):
                headers = {**headers, "Content-Length": "0"}
            return self._transport.send(call.method, url, target, body, headers, self._timeout)
        headers = {**self._headers, **(call.headers or {})}
        if call.content is not None and call.content_type is not None:
            headers["Content-Type"] = call.content_type
        request = httpx.Request(
            call.method,
            self._url(call.path),
            data=call.data,
            json=call.json,
            content=call.content,
            headers=headers,
            extensions={"timeout": self._timeout},
        )
        response = self._transport.handle_request(request)
        response.read()
        return response

    def _limiters(self) -> tuple[Limiter, ...]:
        return tuple(x for x in (self.rate_limiter, self.budget) if x is not None)

    def _send_once(self, call: _Call[T], attempt: int, guard: Callable[[], None] | None = None) -> T:
        limiters = self._limiters()
        for limiter in limiters:
            if call.cost == 1.0:
                limiter.acquire()  # a plain request: also what limiters written before costs counted take
            else:
                limiter.acquire(call.cost)
        if guard is not None:  # after every wait, the last thing before the bytes leave
            guard()  # raises to stop the write; not retried (not a RetriableError)
        started = time.perf_counter()
        status: int | str = "error"
        try:
            try:
                response = self._exchange(call)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self._settle(limiters, call.cost, Measured(actual=0.0))  # it never left
                raise TransportError(
                    f"could not connect to {self.base_url} ({type(exc).__name__})",
                    channel=self.channel,
                    operation=call.operation,
                    request_sent=False,
                ) from None
            except httpx.TimeoutException as exc:
                self._settle(limiters, call.cost, Measured(actual=0.0))  # the next reply tells the store's count
                raise TransportError(
                    f"timed out waiting for the reply ({type(exc).__name__})",
                    channel=self.channel,
                    operation=call.operation,
                ) from None
            except httpx.TransportError as exc:
                self._settle(limiters, call.cost, Measured(actual=0.0))
                raise TransportError(
                    f"connection failed ({type(exc).__name__})", channel=self.channel, operation=call.operation
                ) from None
            status = response.status_code
            self._answered = True
            self._note_server_date(response)
            if call.measure is not None:
                measured = call.measure(response)
                if measured is not None:
                    self._settle(limiters, call.cost, measured)
            if call.classify is not None:
                call.classify(response)
            self._raise_for_status(response, call.operation)
            result = call.parse(response)
            return result
        except ChannelAPIError as exc:
            if exc.status_code is not None:
                status = exc.status_code
            raise
        finally:
            logger.info(
                "http_request",
                channel=self.channel,
                operation=call.operation,
                status=status,
                attempt=attempt,
                run=self.run_label,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )

    @staticmethod
    def _settle(limiters: tuple[Limiter, ...], reserved: float, measured: Measured) -> None:
        for limiter in limiters:
            settle = getattr(limiter, "settle", None)  # limiters written before budgets counted cost have none
            if settle is not None:
                settle(reserved, measured)

    def _raise_for_status(self, response: httpx.Response, operation: str) -> None:
        code = response.status_code
        if code < 400:
            return
        kwargs: dict[str, Any] = {"channel": self.channel, "operation": operation, "status_code": code}
        if code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            asked = f"; it asks to wait {retry_after:g} s" if retry_after is not None else ""
            raise RateLimitedError(
                f"rate limited by the server{asked}", retry_after=retry_after, request_sent=False, **kwargs
            )
        if code in (402, 423):
            why = "frozen (unpaid bill)" if code == 402 else "locked"
            raise StoreUnavailableError(f"the store is {why}; nothing was processed", request_sent=False, **kwargs)
        if code in (401, 403):
            raise AuthenticationError("credentials rejected", **kwargs)
        if code == 404:
            raise NotFoundError("not found", **kwargs)
        if code == 503:
            raise ServerError("service unavailable", request_sent=False, **kwargs)
        if code >= 500:
            raise ServerError(f"server error HTTP {code}", **kwargs)
        raise ClientError(f"request rejected HTTP {code}", **kwargs)
