"""A lean httpx transport: one keep-alive HTTP/1.1 connection per thread, to the one host a channel talks to.

httpx's default transport (httpcore and h11, with a connection pool shared by
every thread) cost more client CPU per call than decoding the reply did, and
``http.client`` after it three times the socket work itself. Each thread here keeps
its own :class:`~channel_core.http1.Link`, so a call is one write and one read on a
socket the thread already holds.

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

import http.client
import socket
import ssl
import threading
from collections.abc import Callable

import httpx

from channel_core.http1 import ClosedBeforeReply, Link, ProtocolError, Reply

__all__ = ["KeepAliveTransport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _intercepted() -> bool:
    """True while something (a cassette recorder) has put its own classes in place of http.client's."""
    return (
        http.client.HTTPConnection.__module__ != "http.client"
        or http.client.HTTPSConnection.__module__ != "http.client"
    )


class KeepAliveTransport(httpx.BaseTransport):
    """An :class:`httpx.BaseTransport` for one scheme and host, one connection per thread."""

    def __init__(self, *, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._local = threading.local()
        self._all: list[Link | http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _link(self, url: httpx.URL, timeout: dict[str, float | None]) -> Link:
        key = (url.scheme, url.host, url.port)
        cached: tuple[tuple[str, str, int | None], Link] | None = getattr(self._local, "link", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None:
            cached[1].close()
        host = url.raw_host.decode("ascii")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        shown = f"[{host}]" if ":" in host else host
        link = Link(
            host,
            port,
            host_header=shown if url.port is None or url.port == _DEFAULT_PORTS[url.scheme] else f"{shown}:{port}",
            connect_timeout=timeout.get("connect"),
            tls=self._tls if url.scheme == "https" else None,
        )
        self._local.link = (key, link)
        with self._lock:
            self._all.append(link)
        return link

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
            self._all.append(connection)
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
            link = self._link(url, timeout)
            fresh = link.sock is None
            if fresh:
                try:
                    link.connect()
                except TimeoutError as exc:
                    raise httpx.ConnectTimeout(str(exc), request=request) from exc
                except OSError as exc:
                    raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
            assert link.sock is not None
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
                    # a keep-alive connection the server had already closed: nothing was read, but the
                    # request may have arrived; only a read may go again, which HttpClient decides
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
            except BaseException:
                link.close()
                raise
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
                    try:
                        connection.connect()
                    except TimeoutError as exc:
                        raise httpx.ConnectTimeout(str(exc), request=request) from exc
                    except OSError as exc:
                        raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
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
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()


def _response(reply: Reply, request: httpx.Request | None) -> httpx.Response:
    return httpx.Response(
        reply.status,
        headers=reply.headers,
        content=reply.content,
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )
