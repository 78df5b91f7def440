"""HTTP/1.1 on one socket: a request's bytes out, a reply's status, headers and body in.

:class:`~channel_core.keepalive.KeepAliveTransport` sends every call of a thread over one
:class:`Link`. ``http.client`` cost three times the socket work itself per call (its
e-mail header parser above all), so the exchange is written here, by RFC 9112:

* the request is written in one ``sendall``; a header holding CR, LF or NUL is refused with
  ``ValueError`` before anything is sent (no header injection), and headers are Latin-1, as
  ``http.client`` has them;
* a reply's head ends at the first empty line (CRLF CRLF) and may not pass 64 KiB;
  interim 1xx replies are read and dropped; obsolete line folding is joined with a space;
* the body is framed by ``Transfer-Encoding: chunked`` (trailers dropped), else by
  ``Content-Length`` (differing values are refused), else it runs to the end of the
  connection; HEAD, 1xx, 204 and 304 replies have none;
* the connection is kept unless the reply says ``close``, is HTTP/1.0 without
  ``keep-alive``, or ran to the end of the connection.

Anything malformed is :class:`ProtocolError`; a connection the server had closed before
answering (no byte of a reply) is :class:`ClosedBeforeReply`, so the caller can tell a
stale keep-alive connection from a broken reply. Socket errors and timeouts propagate.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ClosedBeforeReply", "Link", "ProtocolError", "Reply"]

MAX_HEAD = 65536
MAX_HEADERS = 100
_READ = 65536
_NO_BODY = frozenset({204, 304})
_OWS = " \t"  # the only whitespace HTTP trims around a field value
_poll = getattr(select, "poll", None)  # no limit on descriptor numbers, unlike select(); absent on Windows


class ProtocolError(Exception):
    """The reply broke HTTP/1.1 framing (or the request could not be written as HTTP)."""


class ClosedBeforeReply(ProtocolError):
    """The server closed the connection without sending any byte of a reply."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    content: bytes
    will_close: bool


class Link:
    """One HTTP/1.1 connection to ``host``: opened on first use, reopened after :meth:`close`."""

    __slots__ = ("_buffer", "_host", "_host_header", "_port", "_tls", "sock")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        host_header: str,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._host_header = host_header
        self._tls = tls
        self._buffer = bytearray()
        self.sock: socket.socket | None = None

    def connect(self, timeout: float | None) -> None:
        """Open the connection (TLS when the link has a context factory); ``OSError``/``TimeoutError`` on failure.

        :param timeout: seconds for the connect and the TLS handshake (``None``: none), the caller's at the time:
            a pooled link may be reopened for a client other than the one that made it.
        """
        sock = socket.create_connection((self._host, self._port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls().wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buffer.clear()

    def still_open(self) -> bool:
        """False when the server has closed (or broken) a connection we hold idle: it is readable before any
        request, so what waits there is its end or bytes nobody asked for. Checked before reuse, so that a
        request is not written into a connection that is already gone."""
        sock = self.sock
        if sock is None or self._buffer:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        try:
            if _poll is not None:
                poller = _poll()
                poller.register(sock, select.POLLIN)
                return not poller.poll(0)
            readable, _, _ = select.select([sock], [], [], 0)
            return not readable
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._buffer.clear()
        if sock is not None:
            sock.close()

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        """Write one request. ``headers`` exclude Host (the link's own) and include Content-Length if any."""
        if self.sock is None:
            raise ProtocolError("the connection is not open")
        if " " in target or "\r" in target or "\n" in target:
            raise ValueError("the request target holds a space or line break")
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        count = len(headers)
        if fields.count("\n") != count or fields.count("\r") != count or "\0" in fields:
            raise ValueError("a header name or value holds a line break or NUL")  # injection: nothing is sent
        if not any(name.lower() == "accept-encoding" for name in headers):
            fields += "Accept-Encoding: identity\r\n"  # as http.client sends: no compressed reply unasked for
        head = f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{fields}\r\n".encode("latin-1")
        self.sock.sendall(head + body if body else head)

    def read_reply(self, method: str) -> Reply:
        """Read one reply to a request of ``method`` (HEAD replies have no body)."""
        while True:
            head = self._read_head()
            status, version, headers = _parse_head(head)
            if 100 <= status < 200 and status != 101:
                continue  # an interim reply (100 Continue, 103 Early Hints): the real one follows
            break
        tokens = {
            token.strip().lower()
            for name, value in headers
            if name.lower() == "connection"
            for token in value.split(",")
        }
        will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            return Reply(status, headers, b"", will_close)
        codings = [value for name, value in headers if name.lower() == "transfer-encoding"]
        if codings:
            last = ",".join(codings).split(",")[-1].strip().lower()
            if last != "chunked":
                return Reply(status, headers, self._read_to_end(), True)
            return Reply(status, headers, self._read_chunked(), will_close)
        lengths = {  # "Content-Length: 42, 42" is one length, as RFC 9110 lets a recipient read it
            part.strip(_OWS) for name, value in headers if name.lower() == "content-length" for part in value.split(",")
        }
        if lengths:
            if len(lengths) != 1:
                raise ProtocolError(f"differing Content-Length values: {', '.join(sorted(lengths))}")
            text = lengths.pop()
            if not (text.isascii() and text.isdigit()):
                raise ProtocolError(f"Content-Length is not a length: {text!r}")
            return Reply(status, headers, self._read_exactly(int(text)), will_close)
        return Reply(status, headers, self._read_to_end(), True)

    # ------------------------------------------------------------------ reading

    def _fill(self) -> int:
        assert self.sock is not None
        chunk = self.sock.recv(_READ)
        self._buffer += chunk
        return len(chunk)

    def _read_head(self) -> bytes:
        buffer = self._buffer
        searched = 0
        started = bool(buffer)
        while True:
            end = buffer.find(b"\r\n\r\n", max(0, searched - 3))
            if end > MAX_HEAD or (end < 0 and len(buffer) > MAX_HEAD):
                raise ProtocolError(f"the reply's head passes {MAX_HEAD} bytes")
            if end >= 0:
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                return head
            searched = len(buffer)
            if not self._fill():
                if not started and not buffer:
                    raise ClosedBeforeReply("the server closed the connection without replying")
                raise ProtocolError("the connection closed inside the reply's head")
            started = True

    def _read_exactly(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size:
            if not self._fill():
                raise ProtocolError(f"the connection closed {size - len(buffer)} bytes before the reply's end")
        content = bytes(buffer[:size])
        del buffer[:size]
        return content

    def _read_line(self) -> bytes:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                return line
            if len(buffer) > MAX_HEAD:
                raise ProtocolError("a chunk-size or trailer line passes 64 KiB")
            if not self._fill():
                raise ProtocolError("the connection closed inside a chunked body")

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()  # chunk extensions are ignored
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}")
            if size == 0:
                while self._read_line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            if self._read_exactly(2) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")

    def _read_to_end(self) -> bytes:
        while self._fill():
            if len(self._buffer) > 1 << 30:
                raise ProtocolError("a reply without a length passes 1 GiB")
        content = bytes(self._buffer)
        self._buffer.clear()
        return content


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    if len(lines) > MAX_HEADERS + 1:
        raise ProtocolError(f"the reply has more than {MAX_HEADERS} header lines")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obsolete line folding: part of the previous value
            if not headers:
                raise ProtocolError("the reply's first header line is a continuation")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip(_OWS)}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip(_OWS):
            raise ProtocolError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip(_OWS)))
    return int(code), version, headers
