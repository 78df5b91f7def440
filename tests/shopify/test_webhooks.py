"""Shopify webhooks: verification, the receiver's answers, and deliveries that bring a change in without a poll."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from channel_core import Channel, Order, to_dict
from channel_core.errors import WebhookRejected
from channel_core.sync import Importer, SQLiteStore
from channel_core.webhooks.local import LocalWebhooks
from channel_core.webhooks.receiver import Target, make_receiver
from channel_shopify.connection import ShopifyConnection
from channel_shopify.webhooks import signature
from tests.shopify.conftest import DOMAIN, MakeSandbox, shop_settings
from tests.shopify.simulation import truth

SECRET = "sandbox-secret-1"


def _headers(body: bytes, *, secret: str = SECRET, shop: str = DOMAIN, event: str = "e1") -> dict[str, str]:
    return {
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Event-Id": event,
        "X-Shopify-Triggered-At": "2026-11-30T10:00:00Z",
    }


def _settings() -> dict[str, Any]:
    return {"shop": DOMAIN, "client_id": "c", "client_secret": SECRET}


def test_a_verified_delivery_names_its_order_and_account(shopify: Channel) -> None:
    body = json.dumps({"id": 5432109876, "admin_graphql_api_id": "gid://shopify/Order/5432109876"}).encode()
    event = shopify.parse_webhook(_settings(), _headers(body), body)
    assert event is not None
    assert (event.event_id, event.topic, event.account_id, event.order_ids) == (
        "e1",
        "orders/updated",
        DOMAIN,
        ("5432109876",),
    )
    held = json.dumps({"fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/77", "status": "ON_HOLD"}}).encode()
    headers = {**_headers(held), "X-Shopify-Topic": "fulfillment_orders/placed_on_hold"}
    event = shopify.parse_webhook(_settings(), headers, held)
    assert event is not None and event.order_ids == () and event.lookups == ("fulfillment_order:77",)


@pytest.mark.parametrize(
    "tamper, status",
    [
        (lambda body, headers: (body + b" ", headers), 401),  # altered after signing
        (lambda body, headers: (body, {**headers, "X-Shopify-Hmac-Sha256": signature("wrong", body)}), 401),
        (lambda body, headers: (body, {k: v for k, v in headers.items() if "Hmac" not in k}), 401),
        (lambda body, headers: (body, {**headers, "X-Shopify-Shop-Domain": "other.myshopify.com"}), 403),
    ],
)
def test_a_delivery_that_does_not_verify_is_rejected_before_its_body_is_read(
    shopify: Channel, tamper: Any, status: int
) -> None:
    body = b'{"id": 1, "note": "PRIVATE-NOTE"}'
    body, headers = tamper(body, _headers(body))
    with structlog.testing.capture_logs() as logs, pytest.raises(WebhookRejected) as caught:
        shopify.parse_webhook(_settings(), headers, body)
    assert caught.value.status == status
    assert "PRIVATE-NOTE" not in repr(logs) + str(caught.value) and SECRET not in str(caught.value)


@pytest.fixture
def receiver(tmp_path: Path, shopify: Channel) -> Iterator[tuple[TestClient, SQLiteStore, list[Any]]]:
    accepted: list[Any] = []
    db = SQLiteStore(tmp_path / "w.sqlite3")

    def resolve(channel: str, store: str | None) -> Target | None:
        return Target(shopify, "shopify", _settings()) if (channel, store) == ("shopify", None) else None

    def accept(delivery: Any) -> bool:
        fresh = db.record_webhook_event(delivery.channel, delivery.store, delivery.event, delivery.received_at)
        if fresh:
            accepted.append(delivery)
        return fresh

    with TestClient(make_receiver(resolve, accept, max_body=4096), raise_server_exceptions=False) as client:
        yield client, db, accepted
    db.close()


def test_the_receiver_answers_each_kind_of_delivery(receiver: tuple[TestClient, SQLiteStore, list[Any]]) -> None:
    client, db, accepted = receiver
    body = b'{"id": 42}'
    assert client.post("/webhooks/shopify", content=body, headers=_headers(body)).status_code == 200
    assert client.post("/webhooks/shopify", content=body, headers=_headers(body)).text == "already received"
    assert client.post("/webhooks/shopify", content=body + b" ", headers=_headers(body)).status_code == 401
    other = _headers(body, shop="other.myshopify.com")
    assert client.post("/webhooks/shopify", content=body, headers=other).status_code == 403
    big = b'{"id": 1, "x": "' + b"a" * 5000 + b'"}'
    assert client.post("/webhooks/shopify", content=big, headers=_headers(big, event="e2")).status_code == 413
    chunks = iter([b'{"id": 1, "x": "', b"a" * 3000, b"a" * 3000, b'"}'])
    assert client.post("/webhooks/shopify", content=chunks, headers=_headers(b"", event="e3")).status_code == 413
    assert client.post("/webhooks/oxatis", content=body, headers=_headers(body)).status_code == 404
    assert client.post("/webhooks/shopify/some-store", content=body, headers=_headers(body)).status_code == 404
    assert client.get("/webhooks/shopify").status_code == 405
    assert [d.event.order_ids for d in accepted] == [("42",)]
    assert [e["event_id"] for e in db.webhook_events()] == ["e1"]


def test_the_receiver_survives_a_thousand_malformed_requests(
    receiver: tuple[TestClient, SQLiteStore, list[Any]],
) -> None:
    client, _, accepted = receiver
    rng = random.Random(5)
    statuses = set()
    for n in range(1000):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        if n % 3 == 0:
            body = json.dumps(rng.choice([[], {"id": None}, {"id": "x" * 20}, "text", 3, {"id": -1}])).encode()
        headers = {
            "X-Shopify-Shop-Domain": rng.choice([DOMAIN, "", "\u00e9.myshopify.com"]),
            "X-Shopify-Topic": "orders/updated",
        }
        if n % 2:
            headers["X-Shopify-Hmac-Sha256"] = signature(SECRET, body) if n % 4 == 1 else "\u00ff" * rng.randint(0, 50)
        if n % 5:
            headers["X-Shopify-Event-Id"] = str(n)
        raw_headers = {k: v.encode("latin-1") for k, v in headers.items()}  # bytes: any octet, as on the wire
        statuses.add(client.post("/webhooks/shopify", content=body, headers=raw_headers).status_code)
    assert 500 not in statuses and statuses <= {200, 400, 401, 403}
    assert all(d.event.account_id == DOMAIN for d in accepted)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """uvicorn serving the receiver over loopback, applying events on a SQLite database."""

    def __init__(self, shopify: Channel, settings: dict[str, Any], path: Path) -> None:
        import uvicorn

        self.synced: list[int] = []
        self.local = LocalWebhooks(path, {"shopify": (shopify, settings)}, on_synced=self._synced).start()

        def resolve(channel: str, store: str | None) -> Target | None:
            return Target(shopify, "shopify", settings) if (channel, store) == ("shopify", None) else None

        self.port = _free_port()
        config = uvicorn.Config(
            make_receiver(resolve, self.local.accept), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def _synced(self, channel: str, summary: Any) -> None:
        self.synced.append(summary.imported + summary.updated + summary.unchanged + summary.skipped)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/shopify"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.local.stop()


def _wait(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_an_edited_address_arrives_by_webhook_without_a_poll(
    make_sandbox: MakeSandbox, shopify: Channel, tmp_path: Path
) -> None:
    server = make_sandbox(orders=10, webhook_backoff=0.05)
    settings = shop_settings(server)
    path = tmp_path / "orders.sqlite3"
    with SQLiteStore(path) as db, shopify.connect(settings) as connection:
        assert Importer(shopify, connection, db).run().completed
    receiver = Receiver(shopify, settings, path)
    try:
        server.subscribe(DOMAIN, receiver.url)
        shop = server.shop(DOMAIN)
        order = next(o for o in shop.orders.values() if o.ship_to and not o.cancelled_at)
        with shop.lock:
            assert order.ship_to is not None
            order.ship_to["city"] = "Nancy"
            shop.touch(order)

        def arrived() -> bool:
            with SQLiteStore(path) as db:
                stored = db.get_order("shopify", str(order.id))
                return stored is not None and stored.order.ship_to.city == "Nancy"

        _wait(arrived, "the edited address")
    finally:
        receiver.stop()


def test_lost_and_doubled_deliveries_are_made_whole_by_one_poll(
    make_sandbox: MakeSandbox, shopify: Channel, tmp_path: Path
) -> None:
    server = make_sandbox(orders=12, webhook_backoff=0.05, webhook_drop=0.3, webhook_duplicate=0.3)
    settings = shop_settings(server)
    path = tmp_path / "orders.sqlite3"
    with SQLiteStore(path) as db, shopify.connect(settings) as connection:
        assert Importer(shopify, connection, db).run().completed
    receiver = Receiver(shopify, settings, path)
    try:
        server.subscribe(DOMAIN, receiver.url, ("orders/create", "orders/updated"))
        shop = server.shop(DOMAIN)
        rng = random.Random(3)
        for _ in range(30):
            with shop.lock:
                if rng.random() < 0.3:
                    shop.create_order(rng)
                else:
                    shop.edit(rng.choice(sorted(shop.orders)))
        _wait(lambda: server.deliveries.pending() == 0, "the sandbox's deliveries")
        with SQLiteStore(path) as db:
            _wait(lambda: not db.pending_webhook_events("shopify", "shopify"), "the receiver's worker")
            events = db.webhook_events("shopify")
            assert len({e["event_id"] for e in events}) == len(events)  # a doubled delivery is one event
            assert server.deliveries.lost > 0 and len(events) <= server.deliveries.sent
            reads = [d for d in server.tenant(DOMAIN).documents if d["query"].startswith("query ChannelOrder(")]
            assert 0 < len(reads) <= len(events)  # each event's order fetched at most once (a burst coalesces)
            with shopify.connect(settings) as connection:
                assert Importer(shopify, connection, db).run().completed
                assert isinstance(connection, ShopifyConnection)
                expected = truth(server, connection, DOMAIN)
            stored = {s.order.order_id: s.order for s in db.iter_orders("shopify")}
            wrong = [
                oid
                for oid, want in expected.items()
                if isinstance(want, Order) and (oid not in stored or to_dict(stored[oid]) != to_dict(want))
            ]
            assert wrong == []
    finally:
        receiver.stop()


def test_subscribing_is_idempotent_and_covers_every_topic(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    from channel_shopify.webhooks import TOPICS

    server = make_sandbox(orders=2)
    url = "http://127.0.0.1:9/webhooks/shopify"
    with shopify.connect(shop_settings(server)) as connection:
        assert shopify.webhook_subscriptions(connection) == ()
        first = shopify.webhook_subscriptions(connection, url)
        again = shopify.webhook_subscriptions(connection, url)
    assert sorted(s.topic for s in first) == sorted(TOPICS) and first == again
    assert server.tenant(DOMAIN).subscriptions == [(topic, url) for topic in TOPICS]


def test_a_fulfillment_order_event_is_resolved_to_its_order(
    make_sandbox: MakeSandbox, shopify: Channel, tmp_path: Path
) -> None:
    server = make_sandbox(orders=3)
    order = server.shop(DOMAIN).place_order([("A", 1, 71001)])
    group = order.fulfillment_orders[0]
    with SQLiteStore(tmp_path / "o.sqlite3") as db, shopify.connect(shop_settings(server)) as connection:
        summary = Importer(shopify, connection, db).sync_orders([f"fulfillment_order:{group.id}"])
        assert summary.completed and summary.imported == 1
        stored = db.get_order("shopify", str(order.id))
        assert stored is not None and [s.order.order_id for s in db.iter_orders("shopify")] == [str(order.id)]
        assert db.load_checkpoint("shopify", connection.account_id) is None  # a targeted sync moves no checkpoint


def test_deliveries_signed_with_another_key_are_refused_and_queue_nothing(
    make_sandbox: MakeSandbox, shopify: Channel, tmp_path: Path
) -> None:
    server = make_sandbox(orders=4, webhook_backoff=0.01, webhook_wrong_secret=True)
    settings = shop_settings(server)
    receiver = Receiver(shopify, settings, tmp_path / "orders.sqlite3")
    try:
        server.subscribe(DOMAIN, receiver.url, ("orders/updated",))
        shop = server.shop(DOMAIN)
        shop.edit(sorted(shop.orders)[0], note="SECRET-NOTE")
        _wait(lambda: server.deliveries.failed == 1, "the sandbox to give up after 8 retries")
        with SQLiteStore(tmp_path / "orders.sqlite3") as db:
            assert db.webhook_events() == [] and list(db.iter_orders()) == []
        assert receiver.synced == []
    finally:
        receiver.stop()
