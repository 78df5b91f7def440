"""A lean httpx transport over the standard library's ``http.client``: one keep-alive connection per thread.

httpx's default transport (httpcore and h11, with a connection pool shared by
every thread) cost more client CPU per call than decoding the reply did. Each
thread here keeps its own ``http.client`` connection to the one host a channel
talks to, so a call is a write and a read on a socket the thread already holds.

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

__all__ = ["KeepAliveTransport"]


class KeepAliveTransport(httpx.BaseTransport):
    """An :class:`httpx.BaseTransport` for one scheme and host, one connection per thread."""

    def __init__(self, *, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self, url: httpx.URL, timeout: dict[str, float | None]) -> http.client.HTTPConnection:
        key = (url.scheme, url.host, url.port)
        cached: tuple[tuple[str, str, int | None], http.client.HTTPConnection] | None = getattr(
            self._local, "connection", None
        )
        if cached is not None and cached[0] == key:
            return cached[1]
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
                    if attempt == 1 and not fresh:  # the server closed an idle connection before we wrote
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
                if attempt == 1 and not fresh and isinstance(exc, http.client.RemoteDisconnected):
                    # a keep-alive connection the server had already closed: nothing was read, but the
                    # request may have arrived; only a read may go again, which HttpClient decides
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
            if getattr(response, "will_close", False):  # a recorded (vcrpy) reply has no such flag
                connection.close()
            return httpx.Response(
                response.status,
                headers=response.getheaders(),
                content=content,
                request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
