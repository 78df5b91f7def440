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
