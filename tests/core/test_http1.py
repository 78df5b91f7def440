"""The HTTP/1.1 exchange under the keep-alive transport: framing, interim replies, limits, and agreement with
http.client on every reply shape hypothesis draws."""

from __future__ import annotations

import gzip
import http.client
import io
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channel_core import http1
from channel_core.http1 import MAX_HEAD, ClosedBeforeReply, Link, ProtocolError, Reply
from channel_core.keepalive import IDLE_LINKS, IdleLinks, KeepAliveTransport, ReadResponse, _response


def _link_reading(reply: bytes, *, close: bool = True) -> tuple[Link, socket.socket]:
    """A link whose socket already holds ``reply`` from the other end (closed after it, unless ``close=False``)."""
    ours, theirs = socket.socketpair()
    theirs.sendall(reply)
    if close:
        theirs.shutdown(socket.SHUT_WR)
    link = Link("example.test", 80, host_header="example.test")
    link.sock = ours
    ours.settimeout(5)
    return link, theirs


def _read(reply: bytes, method: str = "GET") -> Reply:
    link, theirs = _link_reading(reply)
    try:
        return link.read_reply(method)
    finally:
        link.close()
        theirs.close()


def test_a_length_framed_reply_leaves_the_next_one_in_place() -> None:
    two = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    )
    link, theirs = _link_reading(two)
    first, second = link.read_reply("GET"), link.read_reply("GET")
    assert (first.status, first.content, first.headers, first.will_close) == (
        200,
        b"hello",
        [("Content-Length", "5"), ("X-A", "1")],
        False,
    )
    assert (second.status, second.content) == (404, b"")
    theirs.close()
    link.close()


def test_a_chunked_reply_is_joined_and_its_extensions_and_trailers_dropped() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    got = _read(reply)
    assert got.content == b"Wikipedia in\r\n\r\nchunks."
    assert not got.will_close


def test_a_reply_without_length_runs_to_the_end_and_closes() -> None:
    got = _read(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    assert (got.content, got.will_close) == (b"until the end", True)


def test_a_length_repeated_in_one_field_is_one_length() -> None:
    got = _read(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc")
    assert (got.content, got.will_close) == (b"abc", False)


def test_interim_replies_are_skipped() -> None:
    got = _read(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    assert (got.status, got.content, got.headers) == (201, b"ok", [("Content-Length", "2")])


@pytest.mark.parametrize(("status", "method"), [(204, "POST"), (304, "GET"), (200, "HEAD")])
def test_replies_that_have_no_body_read_none(status: int, method: str) -> None:
    link, theirs = _link_reading(f"HTTP/1.1 {status} X\r\nContent-Length: 7\r\n\r\n".encode(), close=False)
    got = link.read_reply(method)  # no body is awaited: the other end is still open
    assert (got.status, got.content) == (status, b"")
    theirs.close()
    link.close()


def test_connection_close_and_http_1_0_close_the_link() -> None:
    assert _read(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").will_close
    assert _read(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").will_close
    assert not _read(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").will_close


def test_folded_header_lines_are_joined() -> None:
    got = _read(b"HTTP/1.1 200 OK\r\nX-Long: first\r\n  second\r\n\tthird\r\nContent-Length: 0\r\n\r\n")
    assert got.headers[0] == ("X-Long", "first second third")


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "differing Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"), "not a length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc", "differing Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "5 bytes before the reply's end"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "does not end with CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "closed"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\n continued\r\n\r\n", "first header line is a continuation"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed inside the reply's head"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEAD + b"\r\n\r\n", "head passes"),
    ],
)
def test_malformed_replies_are_protocol_errors_naming_the_fault(reply: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        _read(reply)


def test_a_connection_closed_before_any_reply_byte_says_so() -> None:
    with pytest.raises(ClosedBeforeReply):
        _read(b"")


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nInjected: yes"}, {"X-Evil": "a\nb"}, {"X-Evil\r\nInjected": "1"}, {"X-Nul": "a\0b"}],
)
def test_a_header_with_a_line_break_or_nul_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    link, theirs = _link_reading(b"", close=False)
    with pytest.raises(ValueError, match="line break or NUL"):
        link.send("GET", "/", headers, b"")
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(1)  # nothing arrived
    theirs.close()
    link.close()


def test_the_request_is_written_as_http_client_writes_it() -> None:
    link, theirs = _link_reading(b"", close=False)
    link.send("POST", "/a?b=c", {"User-Agent": "ua", "Content-Length": "3", "Content-Type": "text/plain"}, b"xyz")
    sent = theirs.recv(65536)
    assert sent == (
        b"POST /a?b=c HTTP/1.1\r\nHost: example.test\r\nUser-Agent: ua\r\nContent-Length: 3\r\n"
        b"Content-Type: text/plain\r\nAccept-Encoding: identity\r\n\r\nxyz"
    )
    theirs.close()
    link.close()


# ------------------------------------------------------------------ agreement with http.client

_token = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding", "connection")
)
_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=30)


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([200, 201, 202, 204, 301, 400, 404, 429, 500, 503]))
    headers = draw(st.lists(st.tuples(_token, _value), max_size=8))
    body = draw(st.binary(max_size=3000)) if status != 204 else b""
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    head = [f"HTTP/1.1 {status} Reason Phrase"] + [f"{name}: {value}" for name, value in headers]
    if framing == "length" or status == 204:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    else:
        head.append("Connection: close")
        payload = body
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + payload


class _BytesSocket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


@settings(max_examples=150, deadline=None)
@given(_replies())
def test_every_reply_reads_as_http_client_reads_it(reply: bytes) -> None:
    expected = http.client.HTTPResponse(_BytesSocket(reply), method="GET")  # type: ignore[arg-type]
    expected.begin()
    expected_body = expected.read()
    got = _read(reply)
    assert got.status == expected.status
    assert got.headers == [(name, value.strip(" \t")) for name, value in expected.getheaders()]
    assert got.content == expected_body
    assert got.will_close == bool(expected.will_close)


def _outcome(read: Any) -> Any:
    try:
        return read()
    except httpx.StreamError as exc:  # the raw stream is gone once read: both say so
        return type(exc).__name__


def _public_state(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = "not JSON"
    return {
        "status": response.status_code,
        "reason": response.reason_phrase,
        "headers": response.headers.multi_items(),
        "raw_headers": response.headers.raw,
        "content": response.content,
        "text": response.text,
        "encoding": response.encoding,
        "charset": response.charset_encoding,
        "json": parsed,
        "http_version": response.http_version,
        "closed": (response.is_closed, response.is_stream_consumed),
        "downloaded": response.num_bytes_downloaded,
        "request": response.request,
        "again": (response.read(), b"".join(response.iter_bytes()), _outcome(lambda: b"".join(response.iter_raw()))),
        "lines": list(response.iter_lines()),
        "success": response.is_success,
    }


@settings(max_examples=150, deadline=None)
@given(_replies())
def test_a_reply_read_by_the_transport_is_the_response_httpx_builds_from_it(reply: bytes) -> None:
    """What channels get (ReadResponse, built without decoding the body again) holds what httpx.Response(content=)
    holds for the same reply: every public attribute, and reading it again gives the same bytes."""
    read = _read(reply)
    request = httpx.Request("GET", "http://shop.example/orders")
    built = _response(read, request)
    expected = httpx.Response(
        read.status,
        headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in read.headers],
        content=read.content,
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )
    assert _public_state(built) == _public_state(expected)
    assert type(built) is ReadResponse


def test_a_header_value_outside_ascii_is_read_not_refused() -> None:
    """httpx refuses a non-ASCII str header value (UnicodeEncodeError, no channel error): the reply's bytes go
    to it as bytes, a UTF-8 value reads as UTF-8 and any other byte as Latin-1."""
    read = _read("HTTP/1.1 200 OK\r\nX-Shop: Café\r\nContent-Length: 2\r\n\r\nok".encode())
    assert _response(read, None).headers["X-Shop"] == "Café"
    read = _read(b"HTTP/1.1 200 OK\r\nX-Shop: Caf\xe9\r\nContent-Length: 2\r\n\r\nok")
    assert _response(read, None).headers["X-Shop"] == "Café"


def test_a_reply_with_a_content_encoding_is_decoded_as_httpx_decodes_it() -> None:
    body = gzip.compress(b"<Reply>ok</Reply>")
    read = Reply(200, [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))], body, False)
    built = _response(read, None)
    assert type(built) is not ReadResponse
    assert built.content == b"<Reply>ok</Reply>"


@settings(max_examples=150, deadline=None)
@given(st.lists(_replies(), min_size=1, max_size=3), st.integers(1, 40))
def test_replies_arriving_a_few_bytes_at_a_time_read_the_same(replies: list[bytes], piece: int) -> None:
    """Every boundary (the head's empty line, a chunk size, a chunk's CRLF) split across reads, replies one after
    another on one connection: the same status, headers and body as read whole."""
    keep_alive = [reply for reply in replies if b"Connection: close" not in reply] or replies[:1]
    whole = [_read(reply) for reply in keep_alive]
    link, theirs = _link_reading(b"".join(keep_alive))
    original = http1._READ
    http1._READ = piece  # each recv returns at most this many bytes
    try:
        got = [link.read_reply("GET") for _ in keep_alive]
    finally:
        http1._READ = original
        link.close()
        theirs.close()
    assert got == whole


# ------------------------------------------------------------------ the transport over real sockets


@pytest.fixture
def scripted_server() -> Iterator[tuple[int, list[list[bytes | None]], list[int], threading.Event]]:
    """A loopback server: connection N answers each request with the next reply of ``replies[N]``, then
    closes; ``accepted`` counts connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    replies: list[list[bytes | None]] = []
    accepted: list[int] = [0]
    stopping = threading.Event()
    closed = threading.Event()  # set each time the server has closed a connection

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            if stopping.is_set():
                conn.close()
                return
            script = replies[accepted[0]] if accepted[0] < len(replies) else []
            accepted[0] += 1
            with conn:
                for reply in script:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if reply is None:  # read the request, then close without a reply
                        break
                    conn.sendall(reply)
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, replies, accepted, closed
    stopping.set()
    socket.create_connection(("127.0.0.1", port)).close()  # wakes the accept
    thread.join(timeout=5)
    listener.close()


def test_a_call_on_a_connection_the_server_closes_as_it_reads_may_have_arrived_and_the_next_one_reconnects(
    scripted_server: tuple[int, list[list[bytes | None]], list[int], threading.Event],
) -> None:
    port, replies, accepted, _ = scripted_server
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    replies.extend([[ok, None], [ok]])  # the first connection answers once, then closes on the next request
    transport = KeepAliveTransport(tls=lambda: pytest.fail("no TLS here"), idle=IdleLinks())
    url = httpx.URL(f"http://127.0.0.1:{port}/x")
    timeout: dict[str, float | None] = {"connect": 2.0, "read": 2.0}
    assert transport.send("GET", url, "/x", b"", {}, timeout).content == b"ok"
    with pytest.raises(httpx.RemoteProtocolError):  # it was written and read, then no reply: it may have arrived
        transport.send("GET", url, "/x", b"", {}, timeout)
    assert transport.send("GET", url, "/x", b"", {}, timeout).content == b"ok"  # a fresh connection
    assert accepted[0] == 2
    transport.close()


def test_the_transport_keeps_one_connection_for_a_thread(
    scripted_server: tuple[int, list[list[bytes | None]], list[int], threading.Event],
) -> None:
    port, replies, accepted, _ = scripted_server
    replies.append([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % n for n in range(3)])
    transport = KeepAliveTransport(tls=lambda: pytest.fail("no TLS here"))
    url = httpx.URL(f"http://127.0.0.1:{port}/x")
    got = [transport.send("POST", url, "/x", b"a=b", {"Content-Length": "3"}, {"read": 2.0}).content for _ in range(3)]
    assert got == [b"0", b"1", b"2"]
    assert accepted[0] == 1
    transport.close()


def test_a_refused_connect_is_a_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    transport = KeepAliveTransport(tls=lambda: pytest.fail("no TLS here"))
    with pytest.raises(httpx.ConnectError):
        transport.send("GET", httpx.URL(f"http://127.0.0.1:{port}/"), "/", b"", {}, {"connect": 2.0})


# ------------------------------------------------------------------ connections shared between transports

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TIMEOUT: dict[str, float | None] = {"connect": 2.0, "read": 2.0}


def _no_tls() -> ssl.SSLContext:
    raise AssertionError("no TLS here")


def test_a_closed_transport_leaves_its_connection_to_the_next_one_to_the_same_host(
    scripted_server: tuple[int, list[list[bytes | None]], list[int], threading.Event],
) -> None:
    port, replies, accepted, _ = scripted_server
    replies.append([OK, OK, OK, OK])  # one more than asked for: the server keeps the connection open
    idle = IdleLinks()
    url = httpx.URL(f"http://127.0.0.1:{port}/x")
    for _ in range(3):  # three clients one after another, as a worker runs three stores' jobs
        transport = KeepAliveTransport(tls=_no_tls, idle=idle)
        assert transport.send("GET", url, "/x", b"", {}, TIMEOUT).content == b"ok"
        transport.close()
        assert len(idle) == 1
    assert accepted[0] == 1
    idle.clear()
    assert len(idle) == 0


def test_a_connection_the_server_closed_while_idle_is_dropped_not_written_into(
    scripted_server: tuple[int, list[list[bytes | None]], list[int], threading.Event],
) -> None:
    port, replies, accepted, closed = scripted_server
    replies.extend([[OK], [OK]])  # the first connection answers once, then the server closes it
    idle = IdleLinks()
    url = httpx.URL(f"http://127.0.0.1:{port}/x")
    first = KeepAliveTransport(tls=_no_tls, idle=idle)
    assert first.send("GET", url, "/x", b"", {}, TIMEOUT).content == b"ok"
    assert closed.wait(5)
    link = first._links[0][1]
    assert link.sock is not None
    select.select([link.sock], [], [], 5)  # the server's FIN has arrived
    first.close()  # the pool refuses a connection already closed by the server
    assert len(idle) == 0
    second = KeepAliveTransport(tls=_no_tls, idle=idle)
    assert second.send("GET", url, "/x", b"", {}, TIMEOUT).content == b"ok"  # no error: a fresh connection
    assert accepted[0] == 2
    second.close()
    idle.clear()


def test_a_connection_closed_while_in_the_pool_is_not_handed_out() -> None:
    idle = IdleLinks()
    link, theirs = _link_reading(b"", close=False)
    key = ("http", "h", 80, 0)
    idle.give(key, link)
    assert len(idle) == 1
    theirs.close()  # the server ends the connection while nobody holds it
    assert idle.take(key) is None
    assert link.sock is None and len(idle) == 0


def test_idle_connections_expire_and_each_host_keeps_a_bounded_few() -> None:
    now = [0.0]
    idle = IdleLinks(per_host=2, max_idle=30.0, clock=lambda: now[0])
    pairs = [socket.socketpair() for _ in range(4)]
    links = []
    for ours, _ in pairs:
        link = Link("h", 80, host_header="h")
        link.sock = ours
        links.append(link)
    key = ("http", "h", 80, 0)
    for link in links[:3]:
        idle.give(key, link)
    assert len(idle) == 2 and links[0].sock is None  # the oldest beyond two was closed
    assert idle.take(key) is links[2]  # the most recent first
    now[0] = 31.0
    idle.give(("http", "other", 80, 0), links[3])  # any return sweeps what waited too long
    assert links[1].sock is None and idle.take(key) is None
    assert len(idle) == 1
    idle.clear()
    for _, theirs in pairs:
        theirs.close()


def test_the_pool_holds_a_bounded_number_of_connections_in_all_the_oldest_going_first() -> None:
    now = [0.0]
    idle = IdleLinks(per_host=2, total=3, clock=lambda: now[0])
    pairs = [socket.socketpair() for _ in range(5)]
    links = []
    for n, (ours, _) in enumerate(pairs):  # five stores, each on a host of its own
        link = Link(f"shop{n}", 443, host_header=f"shop{n}")
        link.sock = ours
        links.append(link)
        now[0] += 1
        idle.give(("https", f"shop{n}", 443, 0), link)
    assert len(idle) == 3
    assert [link.sock is None for link in links] == [True, True, False, False, False]
    assert idle.take(("https", "shop0", 443, 0)) is None and idle.take(("https", "shop4", 443, 0)) is links[4]
    idle.clear()
    for _, theirs in pairs:
        theirs.close()


def test_a_link_with_unasked_bytes_waiting_is_not_open_for_a_request() -> None:
    link, theirs = _link_reading(b"HTTP/1.1 200 OK\r\n\r\n", close=False)
    assert link.sock is not None
    select.select([link.sock], [], [], 5)
    assert not link.still_open()
    theirs.close()
    link.close()
    assert not link.still_open()


# ------------------------------------------------------------------ TLS


@pytest.fixture
def tls_server() -> Iterator[tuple[int, Any, list[int]]]:
    """A loopback HTTPS server for "localhost" (a throwaway CA's certificate) answering every request with
    OK on a kept connection; yields its port, the CA and a count of TLS connections accepted."""
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = [0]
    stopping = threading.Event()

    def serve_one(raw: socket.socket) -> None:
        try:
            with server_context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                    while b"\r\n\r\n" in data:
                        _, _, data = data.partition(b"\r\n\r\n")
                        conn.sendall(OK)
        except (ssl.SSLError, OSError):
            return  # a client that refused our certificate

    def serve() -> None:
        while True:
            raw, _ = listener.accept()
            if stopping.is_set():
                raw.close()
                return
            accepted[0] += 1
            threading.Thread(target=serve_one, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, ca, accepted
    stopping.set()
    socket.create_connection(("127.0.0.1", port)).close()
    thread.join(timeout=5)
    listener.close()


def test_https_goes_over_verified_tls_and_the_session_outlives_the_client(
    tls_server: tuple[int, Any, list[int]],
) -> None:
    port, ca, accepted = tls_server
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    idle = IdleLinks()
    url = httpx.URL(f"https://localhost:{port}/x")

    def tls() -> ssl.SSLContext:
        return trusting

    for _ in range(2):
        transport = KeepAliveTransport(tls=tls, idle=idle)
        assert transport.send("GET", url, "/x", b"", {}, TIMEOUT).content == b"ok"
        transport.close()
    assert accepted[0] == 1  # one handshake for both clients
    other = KeepAliveTransport(tls=lambda: trusting, idle=idle)  # another TLS set-up: never a shared connection
    assert other.send("GET", url, "/x", b"", {}, TIMEOUT).content == b"ok"
    other.close()
    assert accepted[0] == 2
    idle.clear()


def test_a_certificate_that_is_not_trusted_refuses_the_connection_before_anything_is_sent(
    tls_server: tuple[int, Any, list[int]],
) -> None:
    port, _, _ = tls_server
    transport = KeepAliveTransport(tls=ssl.create_default_context, idle=IdleLinks())  # the system's CAs only
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        transport.send("GET", httpx.URL(f"https://localhost:{port}/x"), "/x", b"", {}, TIMEOUT)
    transport.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the child only reads
def test_a_forked_child_never_reuses_the_parents_pooled_connections() -> None:
    link, theirs = _link_reading(b"", close=False)
    key = ("http", "forked", 80, 0)
    IDLE_LINKS.give(key, link)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: reports what the pool hands it, then leaves at once
        os.write(write, b"none" if IDLE_LINKS.take(key) is None else b"reused")
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"none"
    os.close(read)
    assert IDLE_LINKS.take(key) is link and link.still_open()  # the parent's connection is untouched
    link.close()
    theirs.close()
