from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import structlog

from channel_core import (
    AuthenticationError,
    HttpClient,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    ServerError,
    TransportError,
)
from channel_core.http import parse_retry_after

Reply = httpx.Response | Exception


def scripted(replies: list[Reply]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue: Iterator[Reply] = iter(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = next(queue)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.MockTransport(handler), seen


def client(
    replies: list[Reply], sleeps: list[float], policy: RetryPolicy | None = None
) -> tuple[HttpClient, list[httpx.Request]]:
    transport, seen = scripted(replies)
    return (
        HttpClient(
            channel="test",
            base_url="https://api.example",
            transport=transport,
            sleep=sleeps.append,
            retry_policy=policy or RetryPolicy(max_attempts=4, jitter=0.0, backoff_initial=1.0),
        ),
        seen,
    )


text: Callable[[httpx.Response], str] = lambda r: r.text  # noqa: E731


def test_read_retries_5xx_with_exponential_backoff() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.Response(500), httpx.Response(502), httpx.Response(200, text="ok")], sleeps)
    assert http.post_form("/x", {}, operation="Read", idempotent=True, parse=text) == "ok"
    assert len(seen) == 3
    assert sleeps == [1.0, 2.0]


def test_429_retry_after_seconds_is_honoured_without_jitter() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, jitter=5.0)
    http, _ = client(
        [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, text="ok")], sleeps, policy
    )
    assert http.post_form("/x", {}, operation="Read", idempotent=True, parse=text) == "ok"
    assert sleeps == [7.0]


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == 30.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("-5") == 0.0


def test_a_retry_after_longer_than_the_budget_stops_at_once_carrying_the_wait() -> None:
    """The server said when: asking again early only spends the quota it protects (repro r13)."""
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=5, retry_after_cap=120.0, max_total_delay=60.0, jitter=0.0)
    http, seen = client([httpx.Response(429, headers={"Retry-After": "100"})] * 5, sleeps, policy)
    with pytest.raises(RateLimitedError) as caught:
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert caught.value.retry_after == 100.0 and "100 s" in str(caught.value)
    assert (len(seen), sleeps) == (1, [])


def test_a_retry_after_within_the_budget_is_waited_in_full() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=2, retry_after_cap=3600.0, max_total_delay=3600.0, jitter=0.0)
    http, _ = client(
        [httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, text="ok")], sleeps, policy
    )
    assert http.post_form("/x", {}, operation="Read", idempotent=True, parse=text) == "ok"
    assert sleeps == [3600.0]


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.Response(500)] * 10, sleeps)
    with pytest.raises(ServerError):
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert len(seen) == 4


def test_total_delay_is_bounded() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=50, max_total_delay=5.0, jitter=0.0, backoff_initial=2.0)
    http, seen = client([httpx.Response(500)] * 50, sleeps, policy)
    with pytest.raises(ServerError):
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert sum(sleeps) <= 5.0
    assert len(seen) < 50


def test_read_timeout_is_retried_for_reads() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.ReadTimeout("slow"), httpx.Response(200, text="ok")], sleeps)
    assert http.post_form("/x", {}, operation="Read", idempotent=True, parse=text) == "ok"
    assert len(seen) == 2


def test_write_is_not_retried_after_a_read_timeout() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.ReadTimeout("slow"), httpx.Response(200, text="ok")], sleeps)
    with pytest.raises(TransportError) as info:
        http.post_form("/x", {}, operation="Write", idempotent=False, parse=text)
    assert info.value.request_sent is True
    assert len(seen) == 1 and sleeps == []


def test_write_is_not_retried_after_a_500() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.Response(500), httpx.Response(200, text="ok")], sleeps)
    with pytest.raises(ServerError):
        http.post_form("/x", {}, operation="Write", idempotent=False, parse=text)
    assert len(seen) == 1


@pytest.mark.parametrize(
    "first",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.Response(429), httpx.Response(503)],
    ids=["connect-error", "connect-timeout", "429", "503"],
)
def test_write_is_retried_when_the_server_never_processed_it(first: Reply) -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.Response(200, text="hello"), first, httpx.Response(200, text="ok")], sleeps)
    assert http.post_form("/x", {}, operation="Read", idempotent=True, parse=text) == "hello"  # it answered once
    assert http.post_form("/x", {}, operation="Write", idempotent=False, parse=text) == "ok"
    assert len(seen) == 3


@pytest.mark.parametrize("first", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")])
def test_a_server_that_never_answered_is_not_retried(first: Exception) -> None:
    sleeps: list[float] = []
    http, seen = client([first, httpx.Response(200, text="ok")], sleeps)
    with pytest.raises(TransportError, match="could not connect to") as info:
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert info.value.request_sent is False and len(seen) == 1 and sleeps == []


def test_parse_errors_inside_the_loop_are_retried_when_retriable() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def parse(response: httpx.Response) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ServerError("maintenance", request_sent=False)
        return response.text

    http, _ = client([httpx.Response(200, text="a"), httpx.Response(200, text="b")], sleeps)
    assert http.post_form("/x", {}, operation="Write", idempotent=False, parse=parse) == "b"


def test_authentication_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    http, seen = client([httpx.Response(401), httpx.Response(200)], sleeps)
    with pytest.raises(AuthenticationError):
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert len(seen) == 1


def test_rate_limited_error_carries_retry_after() -> None:
    sleeps: list[float] = []
    http, _ = client([httpx.Response(429, headers={"Retry-After": "2"})], sleeps, RetryPolicy.never())
    with pytest.raises(RateLimitedError) as info:
        http.post_form("/x", {}, operation="Read", idempotent=True, parse=text)
    assert info.value.retry_after == 2.0


def test_one_log_event_per_http_call() -> None:
    sleeps: list[float] = []
    http, _ = client([httpx.Response(500), httpx.Response(200, text="ok")], sleeps)
    with structlog.testing.capture_logs() as logs:
        http.post_form("/x", {"Token": "s3cr3t"}, operation="OrderGet", idempotent=True, parse=text)
    calls = [e for e in logs if e["event"] == "http_request"]
    assert [(e["status"], e["attempt"]) for e in calls] == [(500, 1), (200, 2)]
    assert all(e["operation"] == "OrderGet" and e["channel"] == "test" and "duration_ms" in e for e in calls)
    assert "s3cr3t" not in repr(logs)


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    # 2 immediately (burst), then one every 0.1 s
    assert waits == pytest.approx([0.1, 0.1, 0.1])


def test_the_default_transport_survives_a_server_that_drops_idle_connections() -> None:
    import http.server
    import threading

    class Dropping(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True  # closes without saying so: the client's next write finds it gone

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dropping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http_client = HttpClient(
            channel="t",
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            retry_policy=RetryPolicy(backoff_initial=0),
        )
        for _ in range(5):
            assert http_client.post_form("/x", {"a": "1"}, operation="Read", idempotent=True, parse=text) == "ok"
        assert http_client.server_time() is not None  # the stdlib server's Date header was read
        http_client.close()
    finally:
        server.shutdown()
        server.server_close()
