"""Importing from the Shopify sandbox: the invariant under an adversarial shop, windows under the depth
cap, queries shaped to the bucket, and the faults a real shop brings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from channel_core import Channel
from channel_core.sync import Importer, SQLiteStore
from channel_shopify.connection import ShopifyConnection
from tests.shopify.conftest import DOMAIN, MakeSandbox, shop_settings
from tests.shopify.simulation import describe, simulate

SEEDS = range(int(os.environ.get("CHANNEL_SIM_SEEDS", "30")))


@pytest.mark.parametrize("seed", SEEDS)
def test_after_a_quiet_run_the_database_equals_the_shop(shopify: Channel, seed: int) -> None:
    outcome = simulate(shopify, seed)
    assert outcome.ok, describe(outcome)


@pytest.mark.parametrize("seed", [9, 13])
def test_the_simulation_catches_a_channel_that_ignores_the_search_lag(shopify: Channel, seed: int) -> None:
    """The same seeds with the channel told the index never lags: orders edited while it reads go missing."""
    outcome = simulate(shopify, seed, index_lag=0.0)
    assert outcome.missing, describe(outcome)
    assert simulate(shopify, seed).ok


def _import(shopify: Channel, settings: dict[str, object]) -> tuple[int, ShopifyConnection]:
    with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "o.sqlite3") as db:
        connection = shopify.connect(settings)
        assert isinstance(connection, ShopifyConnection)
        with connection:
            summary = Importer(shopify, connection, db).run()
            assert summary.completed and not summary.failed, summary
            return len(list(db.iter_orders("shopify"))) + summary.skipped, connection


def test_a_bucket_smaller_than_one_rich_page_is_never_overdrawn(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=6, bucket_size=100.0, restore_rate=50.0)
    count, connection = _import(shopify, shop_settings(server))
    tenant = server.tenant(DOMAIN)
    assert count == 6
    assert tenant.bucket.throttled == 0  # no query was refused for want of points
    assert max(requested for requested, _ in tenant.costs) <= 100
    assert connection.client.costs.throttled == 0


def test_queries_fill_a_large_bucket_up_to_the_single_query_limit(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=30)
    count, _ = _import(shopify, shop_settings(server))
    tenant = server.tenant(DOMAIN)
    listing = [requested for requested, _ in tenant.costs if requested > 100]
    assert count == 30 and listing and max(listing) <= 1000 and max(listing) > 600


def test_a_listing_deeper_than_the_cap_is_cut_into_windows(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=40, depth_cap=6, bucket_size=20000.0, restore_rate=2000.0)
    count, _ = _import(shopify, shop_settings(server, depth_cap=6))
    assert count == 40
    windows = {d["variables"]["query"] for d in server.tenant(DOMAIN).documents if d["variables"].get("query")}
    assert len(windows) > 5


def test_the_stores_pagination_limit_cuts_a_window_too(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=25, depth_cap=9)  # the channel believes 25,000
    count, _ = _import(shopify, shop_settings(server))
    assert count == 25


@pytest.mark.parametrize("status", [200, 429])
def test_throttled_queries_wait_what_the_bucket_says_and_go_on(
    make_sandbox: MakeSandbox, shopify: Channel, status: int
) -> None:
    server = make_sandbox(orders=10, throttle_status=status)
    server.add_fault("throttled", times=2, after=1)
    count, connection = _import(shopify, shop_settings(server, retry_backoff=0.0))
    assert count == 10 and connection.client.costs.throttled == 2


@pytest.mark.parametrize("fault", ["http500", "http503", "reset", "malformed"])
def test_transient_faults_are_retried(make_sandbox: MakeSandbox, shopify: Channel, fault: str) -> None:
    server = make_sandbox(orders=10)
    server.add_fault(fault, times=2, after=1)
    count, _ = _import(shopify, shop_settings(server, retry_backoff=0.0))
    assert count == 10


def test_a_shop_locked_mid_run_stops_it_as_unavailable(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(orders=30)
    with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "o.sqlite3") as db:
        with shopify.connect(shop_settings(server)) as connection:
            server.add_fault("locked", times=-1, after=2)
            summary = Importer(shopify, connection, db).run()
    assert summary.stopped == "error" and "locked" in (summary.stop_error or "")


def test_a_partial_listing_stores_nothing_of_its_page_and_the_next_run_completes(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox(orders=10)
    with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "o.sqlite3") as db:
        with shopify.connect(shop_settings(server)) as connection:
            server.add_fault("partial")  # the first listing page comes back partial
            first = Importer(shopify, connection, db).run()
            assert first.stopped == "error" and "partial" in (first.stop_error or "")
            assert list(db.iter_orders("shopify")) == []
            second = Importer(shopify, connection, db).run()
            assert second.completed and second.imported + second.skipped == 10
