"""A lean httpx transport: one keep-alive HTTP/1.1 connection per thread, to the one host a channel talks to.

httpx's default transport (httpcore and h11, with a connection pool shared by
every thread) cost more client CPU per call than decoding the reply did, and
``http.client`` after it three times the socket work itself. Each thread here keeps
its own :class:`~channel_core.http1.Link`, so a call is one write and one read on a
socket the thread already holds.

A transport that closes hands its idle connections to a process-wide pool (:data:`IDLE_LINKS`), from which
the next transport to the same host takes them: a worker running one store after another on the same
platform host reuses connections (and their TLS sessions) instead of opening one per job. A connection is
checked before every reuse; one the server closed while it sat idle is dropped, not written into.

Something that replaces ``http.client``'s connection classes (vcrpy does, to record
and replay cassettes) is honoured: while they are replaced, calls go through
``http.client`` and whatever stands in for it.

Errors come out as httpx's own exceptions, so :class:`~channel_core.http.HttpClient`
classifies them exactly as before: a refused or timed-out connect is a
``ConnectError``/``ConnectTimeout`` (the request never left); anything after the
request was written is a read timeout or a protocol error (it may have arrived).
A connection found closed by the server before anything was sent is reopened once.
"""

from __future__ import annotations

import functools
import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable

import httpx

from channel_core.http1 import ClosedBeforeReply, Link, ProtocolError, Reply

__all__ = ["IDLE_LINKS", "IdleLinks", "KeepAliveTransport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

LinkKey = tuple[str, str, int, object]  # scheme, host, port, and the TLS context factory (itself: never an id reused)


class IdleLinks:
    """Open connections no transport holds, by host, for the next transport to take.

    At most ``per_host`` wait per host and ``total`` in all (the oldest are closed beyond that: a platform
    that gives every store a host of its own, as Shopify does, reuses nothing across stores and must not
    pile up descriptors), and none longer than ``max_idle`` seconds (servers close idle connections after a
    minute or two; a connection taken is checked anyway).
    """

    def __init__(
        self,
        *,
        per_host: int = 16,
        total: int = 64,
        max_idle: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_host = per_host
        self.total = total
        self.max_idle = max_idle
        self._clock = clock
        self._lock = threading.Lock()
        self._links: dict[LinkKey, list[tuple[float, Link]]] = {}

    def take(self, key: LinkKey) -> Link | None:
        """The most recently returned open connection to ``key``'s host, or None."""
        stale: list[Link] = []
        found = None
        with self._lock:
            waiting = self._links.get(key)
            now = self._clock()
            while waiting:
                since, link = waiting.pop()
                if now - since <= self.max_idle and link.still_open():
                    found = link
                    break
                stale.append(link)
        for link in stale:
            link.close()
        return found

    def give(self, key: LinkKey, link: Link) -> None:
        """Keep ``link`` for the next transport to its host; connections that waited too long are closed."""
        if not link.still_open():
            link.close()
            return
        closing: list[Link] = []
        with self._lock:
            now = self._clock()
            for other in list(self._links):  # a host nobody called again lets its connections go
                kept = [(since, waiting) for since, waiting in self._links[other] if now - since <= self.max_idle]
                closing += [waiting for since, waiting in self._links[other] if now - since > self.max_idle]
                if kept:
                    self._links[other] = kept
                else:
                    del self._links[other]
            waiting_here = self._links.setdefault(key, [])
            waiting_here.append((now, link))
            while len(waiting_here) > self.per_host:
                closing.append(waiting_here.pop(0)[1])
            count = sum(len(waiting) for waiting in self._links.values())
            while count > self.total:  # the oldest connection of any host goes first
                oldest = min(self._links, key=lambda host: self._links[host][0][0])
                closing.append(self._links[oldest].pop(0)[1])
                if not self._links[oldest]:
                    del self._links[oldest]
                count -= 1
        for old in closing:
            old.close()

    def clear(self) -> None:
        """Close every waiting connection."""
        with self._lock:
            everything, self._links = self._links, {}
        for waiting in everything.values():
            for _, link in waiting:
                link.close()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(waiting) for waiting in self._links.values())

    def forget(self) -> None:
        """Drop every waiting connection without touching the lock (a forked child's: its copies of the
        parent's sockets must never carry a request, and the lock may have been held as the process forked)."""
        links, self._links, self._lock = self._links, {}, threading.Lock()
        for waiting in links.values():
            for _, link in waiting:
                link.close()  # the child's descriptor only: the parent's connection stays open


IDLE_LINKS = IdleLinks()  # the process's: connections outlive the client that opened them, never the process
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=IDLE_LINKS.forget)


def _intercepted() -> bool:
    """True while something (a cassette recorder) has put its own classes in place of http.client's."""
    return (
        http.client.HTTPConnection.__module__ != "http.client"
        or http.client.HTTPSConnection.__module__ != "http.client"
    )


class KeepAliveTransport(httpx.BaseTransport):
    """An :class:`httpx.BaseTransport` for one scheme and host, one connection per thread."""

    def __init__(self, *, tls: Callable[[], ssl.SSLContext], idle: IdleLinks | None = None) -> None:
        """:param idle: where connections wait between transports (the process's :data:`IDLE_LINKS`)."""
        self._tls = tls
        self._idle = IDLE_LINKS if idle is None else idle
        self._local = threading.local()
        self._links: list[tuple[LinkKey, Link]] = []
        self._connections: list[http.client.HTTPConnection] = []
        self._busy: set[Link] = set()
        self._lock = threading.Lock()

    def _link(self, url: httpx.URL, timeout: dict[str, float | None]) -> tuple[LinkKey, Link]:
        cached: tuple[LinkKey, Link] | None = getattr(self._local, "link", None)
        host = url.raw_host.decode("ascii")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        key: LinkKey = (url.scheme, host, port, self._tls)
        if cached is not None and cached[0] == key:
            return cached
        if cached is not None:
            cached[1].close()
        link = self._idle.take(key)
        if link is None:
            shown = f"[{host}]" if ":" in host else host
            link = Link(
                host,
                port,
                host_header=shown if port == _DEFAULT_PORTS[url.scheme] else f"{shown}:{port}",
                tls=self._tls if url.scheme == "https" else None,
            )
        self._local.link = (key, link)
        with self._lock:
            self._links.append((key, link))
        return key, link

    def _connection(self, url: httpx.URL, timeout: dict[str, float | None]) -> http.client.HTTPConnection:
        key = (url.scheme, url.host, url.port)
        cached: tuple[tuple[str, str, int | None], http.client.HTTPConnection] | None = getattr(
            self._local, "connection", None
        )
        current = (http.client.HTTPConnection, http.client.HTTPSConnection)
        if cached is not None and cached[0] == key and type(cached[1]) in current:
            return cached[1]  # made by the classes in place now (a cassette's own, not an earlier one's)
        if cached is not None:
            cached[1].close()
        connect = timeout.get("connect")
        if url.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.host, url.port, timeout=connect, context=self._tls()
            )
        else:
            connection = http.client.HTTPConnection(url.host, url.port, timeout=connect)
        self._local.connection = (key, connection)
        with self._lock:
            self._connections.append(connection)
        return connection

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw if k.lower() != b"host"}
        target = request.url.raw_path.decode("ascii")
        return self.send(request.method, request.url, target, request.read(), headers, timeout, request=request)

    def send(
        self,
        method: str,
        url: httpx.URL,
        target: str,
        body: bytes,
        headers: dict[str, str],
        timeout: dict[str, float | None],
        *,
        request: httpx.Request | None = None,
    ) -> httpx.Response:
        """Send one request whose parts are already encoded (the lean path of :class:`~channel_core.http.HttpClient`,
        which builds no :class:`httpx.Request`): ``target`` is the path and query, ``headers`` without Host."""
        if _intercepted():
            return self._send_intercepted(method, url, target, body, headers, timeout, request)
        for attempt in (1, 2):
            _, link = self._link(url, timeout)
            fresh = link.sock is None or not link.still_open()  # one the server closed while idle: reopened
            if fresh:
                link.close()
                _connect(functools.partial(link.connect, timeout.get("connect")), request)
            assert link.sock is not None
            with self._lock:
                self._busy.add(link)
            try:
                link.sock.settimeout(timeout.get("read"))
                try:
                    link.send(method, target, headers, body)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    link.close()
                    if attempt == 1 and not fresh:  # the server closed an idle connection before we wrote
                        continue
                    raise httpx.WriteError(str(exc), request=request) from exc
                reply = link.read_reply(method)
            except TimeoutError as exc:
                link.close()
                raise httpx.ReadTimeout(str(exc), request=request) from exc
            except (ProtocolError, OSError) as exc:
                link.close()
                if isinstance(exc, ClosedBeforeReply | ConnectionResetError) and not fresh:
                    # a keep-alive connection the server closed as we wrote: nothing was read, but the
                    # request may have arrived; only a read may go again, which HttpClient decides
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
            except BaseException:
                link.close()
                raise
            finally:
                with self._lock:
                    self._busy.discard(link)
            if reply.will_close:
                link.close()
            return _response(reply, request)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_intercepted(
        self,
        method: str,
        url: httpx.URL,
        target: str,
        body: bytes,
        headers: dict[str, str],
        timeout: dict[str, float | None],
        request: httpx.Request | None,
    ) -> httpx.Response:
        """The same exchange through http.client's connection classes, as whatever replaced them provides."""
        for attempt in (1, 2):
            connection = self._connection(url, timeout)
            fresh = connection.sock is None
            try:
                if fresh:
                    _connect(connection.connect, request)
                    if connection.sock is not None:
                        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if connection.sock is not None:
                    connection.sock.settimeout(timeout.get("read"))
                try:
                    connection.request(method, target, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    connection.close()
                    if attempt == 1 and not fresh:
                        continue
                    raise httpx.WriteError(str(exc), request=request) from exc
                response = connection.getresponse()
                content = response.read()
            except httpx.TransportError:
                connection.close()
                raise
            except TimeoutError as exc:
                connection.close()
                raise httpx.ReadTimeout(str(exc), request=request) from exc
            except (http.client.HTTPException, OSError) as exc:
                connection.close()
                raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
            if getattr(response, "will_close", False):  # a recorded (vcrpy) reply has no such flag
                connection.close()
            return _response(Reply(response.status, response.getheaders(), content, False), request)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Hand idle connections to the pool for the next transport to the same host; close the rest."""
        with self._lock:
            links, self._links = self._links, []
            connections, self._connections = self._connections, []
            busy = set(self._busy)
            self._local = threading.local()  # no thread of this transport holds on to a connection it gave up
        for key, link in links:
            if link in busy or link.sock is None:
                link.close()  # a call still on it (a host closing mid-call): as before, it is cut
            else:
                self._idle.give(key, link)
        for connection in connections:
            connection.close()


def _connect(connect: Callable[[], None], request: httpx.Request | None) -> None:
    """Open a connection; failing, the request never left: httpx's connect errors say so."""
    try:
        connect()
    except TimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except OSError as exc:
        raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc


def _response(reply: Reply, request: httpx.Request | None) -> httpx.Response:
    # As bytes: httpx reads a value in ASCII, else UTF-8, else Latin-1 (it would refuse a non-ASCII str).
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
    names = {name.lower() for name, _ in headers}
    if b"content-encoding" in names:
        # what httpx.Response(content=...) does for such a reply: decode it (gzip sent despite "identity")
        return httpx.Response(reply.status, headers=headers, content=reply.content, request=request, extensions=_HTTP11)
    if reply.content and b"content-length" not in names:  # as httpx.Response(content=...) adds it
        headers.append((b"Content-Length", str(len(reply.content)).encode()))
    return ReadResponse(reply.status, headers, reply.content, request)


_HTTP11 = {"http_version": b"HTTP/1.1"}


class ReadResponse(httpx.Response):
    """A reply already read whole off its connection, as :class:`httpx.Response` with ``content=`` holds it (the
    same headers, body and state), built without streaming the body through httpx's decoders again: 4 µs per
    reply instead of 18. Only a reply without ``Content-Encoding`` is built this way; tests/core/test_http1.py
    compares the two attribute by attribute."""

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], content: bytes, request: httpx.Request | None
    ) -> None:
        super().__init__(status, headers=headers, stream=httpx.ByteStream(content), request=request, extensions=_HTTP11)
        self._content = content
        self.is_stream_consumed = self.is_closed = True
