"""Shopify shops on the fleet: workers sync them, a rotating refresh token is written back before it is
used, and two workers sharing one shop's cost budget never overdraw the shop's bucket."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from channel_core import Channel
from channel_core.http import run_scope
from channel_core.sync import Importer, ImportSummary, SQLiteStore
from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer
from tests.shopify.conftest import DOMAIN, MakeSandbox, shop_settings
from tests.sync.postgres import fresh_database

SHOPS = ("north-shop.myshopify.com", "south-shop.myshopify.com")


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("shopify_fleet") as dsn:
        yield dsn


def test_workers_sync_shopify_shops_and_write_back_each_rotated_refresh_token(
    shopify: Channel, database: str, tmp_path: Path
) -> None:
    from channel_core.fleet.credentials import FileCredentials
    from channel_core.fleet.engine import enqueue_sync, make_app, prepare_database
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore

    server = ShopifySandboxServer(ShopifySandboxConfig(orders=12)).start()
    try:
        first_tokens = {}
        for domain in SHOPS:
            tenant = server.add_shop(domain)
            first_tokens[domain] = tenant.refresh_current
            secrets = {"client_secret": tenant.client_secret, "refresh_token": tenant.refresh_current}
            (tmp_path / f"{domain}.json").write_text(json.dumps(secrets), encoding="utf-8")
        prepare_database(database)
        with PostgresStore(database) as db:
            for domain in SHOPS:
                plain = {
                    "shop": domain,
                    "base_url": server.base_url(domain),
                    "client_id": server.tenant(domain).client_id,
                }
                StoreRegistry(db, schemes=("file",)).add(
                    domain, shopify.info(), settings=plain, credentials=f"file:{domain}", every=timedelta(minutes=5)
                )
        summaries: list[ImportSummary] = []
        lock = threading.Lock()

        def finished(store_key: str, summary: ImportSummary) -> None:
            with lock:
                summaries.append(summary)

        app = make_app(database, credentials=FileCredentials(tmp_path), on_summary=finished, schedule=None)
        for _ in range(2):  # the second round connects with the refresh tokens the first one wrote back
            with app.open():
                assert all(enqueue_sync(app, domain) for domain in SHOPS)
            app.run_worker(queues=["channel-sync"], wait=False, concurrency=2, install_signal_handlers=False)
        assert len(summaries) == 4 and all(s.completed for s in summaries), summaries
        for domain in SHOPS:
            kept = json.loads((tmp_path / f"{domain}.json").read_text(encoding="utf-8"))
            assert kept["refresh_token"] == server.tenant(domain).refresh_current != first_tokens[domain]
            assert (tmp_path / f"{domain}.json").stat().st_mode & 0o777 == 0o600
        with PostgresStore(database) as db:
            assert {o.order.channel for o in db.iter_orders("shopify")} == {"shopify"}
            stored = db.execute("SELECT count(DISTINCT account_id) FROM orders WHERE channel = 'shopify'")
            assert stored == [(2,)]
            everything = " ".join(
                str(row) for table in ("procrastinate_jobs", "stores") for row in db.execute(f"SELECT * FROM {table}")
            )
            assert not [t for t in first_tokens.values() if t and t in everything]
    finally:
        server.stop()


def test_two_workers_sharing_one_shops_budget_never_overdraw_its_bucket(
    make_sandbox: MakeSandbox, shopify: Channel, database: str
) -> None:
    from channel_core.fleet.budget import PostgresRateBudget
    from channel_core.sync.postgres import PostgresStore

    with PostgresStore(database):
        pass  # its migrations create the budgets' table
    dsn = database
    server = make_sandbox(orders=8, bucket_size=100.0, restore_rate=50.0)
    key = f"shopify:{DOMAIN}:{threading.get_ident()}"
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=30)

    def worker() -> None:
        try:
            with (
                tempfile.TemporaryDirectory() as folder,
                SQLiteStore(Path(folder) / "o.sqlite3") as db,
                PostgresRateBudget(dsn, key, 50.0, burst=100.0) as budget,
                run_scope(budget=budget),
                shopify.connect(shop_settings(server)) as connection,
            ):
                barrier.wait()
                assert Importer(shopify, connection, db).run().completed
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    tenant = server.tenant(DOMAIN)
    assert tenant.bucket.throttled == 0, tenant.costs
    assert len([c for c in tenant.costs if c[1] is not None]) >= 6


def test_a_webhook_reaches_the_fleet_and_a_worker_applies_it_without_a_poll(
    shopify: Channel, database: str, tmp_path: Path
) -> None:
    import socket
    import time

    import uvicorn

    from channel_core.fleet.credentials import FileCredentials
    from channel_core.fleet.engine import WEBHOOK_TASK, enqueue_sync, make_app, prepare_database
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore
    from channel_core.webhooks.fleet import fleet_receiver

    server = ShopifySandboxServer(ShopifySandboxConfig(orders=6, webhook_backoff=0.05)).start()
    receiver: uvicorn.Server | None = None
    try:
        tenant = server.add_shop(DOMAIN)
        (tmp_path / "north.json").write_text(json.dumps({"client_secret": tenant.client_secret}), encoding="utf-8")
        prepare_database(database)
        with PostgresStore(database) as db:
            plain = {"shop": DOMAIN, "base_url": server.base_url(DOMAIN), "client_id": tenant.client_id}
            StoreRegistry(db).add(
                "north", shopify.info(), settings=plain, credentials="file:north", every=timedelta(hours=1)
            )
        credentials = FileCredentials(tmp_path)
        app = make_app(database, credentials=credentials, schedule=None)
        with app.open():
            enqueue_sync(app, "north")
        app.run_worker(
            queues=["channel-sync"], wait=False, install_signal_handlers=False
        )  # the first sync pins the shop

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        web = fleet_receiver(
            database, make_app(database, credentials=credentials, schedule=None), credentials=credentials
        )
        receiver = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=receiver.run, daemon=True)
        thread.start()
        while not receiver.started:
            time.sleep(0.02)
        server.subscribe(DOMAIN, f"http://127.0.0.1:{port}/webhooks/shopify/north", ("orders/updated",))
        shop = server.shop(DOMAIN)
        order = next(o for o in shop.orders.values() if o.ship_to and not o.cancelled_at)
        with shop.lock:
            assert order.ship_to is not None
            order.ship_to["city"] = "Nancy"
            shop.touch(order)
        with PostgresStore(database) as db:
            deadline = time.monotonic() + 30
            while not db.pending_webhook_events("shopify", "north"):
                assert time.monotonic() < deadline, "the delivery never arrived"
                time.sleep(0.05)
            app.run_worker(queues=["channel-sync"], wait=False, install_signal_handlers=False)
            stored = db.get_order("shopify", str(order.id))
            assert stored is not None and stored.order.ship_to.city == "Nancy"
            assert db.pending_webhook_events("shopify", "north") == []
            jobs = db.execute("SELECT task_name, status FROM procrastinate_jobs ORDER BY id")
            assert jobs == [("channel_core.sync_store", "succeeded"), (WEBHOOK_TASK, "succeeded")]
            everything = " ".join(str(row) for row in db.execute("SELECT * FROM webhook_events"))
            assert tenant.client_secret not in everything and "Nancy" not in everything
    finally:
        if receiver is not None:
            receiver.should_exit = True
        server.stop()
