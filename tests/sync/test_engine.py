"""The sync engine against a live sandbox, into SQLite: nothing lost, nothing duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, NotificationStatus, Shipment
from channel_core.sync import Importer, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxServer, data
from tests.oxatis.conftest import sandbox_settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "orders.sqlite3") as db:
        yield db


def importer(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore, *, later: bool = False, **settings: object
) -> Importer:
    """``later=True``: the run happens a minute from now, like the next scheduled sync."""
    connection = oxatis.connect(sandbox_settings(sandbox, **settings))
    clock = (lambda: datetime.now(UTC) + timedelta(minutes=1)) if later else (lambda: datetime.now(UTC))
    return Importer(oxatis, connection, store, clock=clock)


def stored_ids(store: SQLiteStore) -> set[str]:
    return {s.order.order_id for s in store.iter_orders()} | {oid for _, oid, _ in store.skipped()}


def every_id(count: int) -> set[str]:
    return {str(data.order_id_for(n)) for n in range(1, count + 1)}


@pytest.mark.sandbox_config(count=60)
def test_second_run_with_no_change_writes_nothing_and_makes_no_detail_calls(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    first = importer(oxatis, sandbox, store, page_size=20).run()
    assert first.completed and first.imported + first.skipped == 60
    assert stored_ids(store) == every_id(60)
    details_after_first = sandbox.detail_calls()
    assert details_after_first == 60  # at most one detail call per new order
    second = importer(oxatis, sandbox, store, page_size=20).run()
    assert (second.imported, second.updated, second.failed) == (0, 0, 0)
    assert sandbox.detail_calls() == details_after_first  # list calls only


@pytest.mark.sandbox_config(count=30)
def test_order_modified_between_runs_is_updated_not_duplicated(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    importer(oxatis, sandbox, store).run()
    assert store.count_orders() == 29
    sandbox.store.modify(100010, {"PaymentStatusCode": 0, "PaymentStatusLastModifiedDate": sandbox.store.now()})
    second = importer(oxatis, sandbox, store, later=True).run()
    assert (second.imported, second.updated) == (0, 1)
    assert store.count_orders() == 29
    stored = store.get_order("oxatis", "100010")
    assert stored is not None and stored.order.status == "cancelled"


@pytest.mark.sandbox_config(count=50, modify_between_pages=(1, 3))
def test_order_modified_between_page_requests_is_still_imported(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    summary = importer(oxatis, sandbox, store, page_size=10).run()
    assert summary.completed
    assert stored_ids(store) == every_id(50)
    # the modified orders come back changed on the next run, and are updated in place
    importer(oxatis, sandbox, store, page_size=10).run()
    assert stored_ids(store) == every_id(50)


@pytest.mark.sandbox_config(count=50)
def test_quota_stop_then_resume_loses_nothing(oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore) -> None:
    fault = sandbox.add_fault("quota", times=-1, after=25)
    first = importer(oxatis, sandbox, store, page_size=10, max_concurrency=1).run()
    assert first.stopped == "quota"
    assert 0 < len(stored_ids(store)) < 50
    sandbox.config.faults.remove(fault)  # the next day: quota renewed
    second = importer(oxatis, sandbox, store, page_size=10, max_concurrency=1).run()
    assert second.completed
    assert stored_ids(store) == every_id(50)
    assert second.imported + first.imported + first.skipped + second.skipped == 50


@pytest.mark.sandbox_config(count=40)
def test_interrupt_between_pages_keeps_a_consistent_checkpoint(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    pages_seen: list[Any] = []
    summary = importer(oxatis, sandbox, store, page_size=10).run(
        should_stop=lambda: len(pages_seen) >= 2, on_page=lambda page, s: pages_seen.append(page)
    )
    assert summary.stopped == "interrupted"
    assert len(stored_ids(store)) == 20  # exactly the two stored pages
    details = sandbox.detail_calls()
    resumed = importer(oxatis, sandbox, store, page_size=10).run()
    assert resumed.completed
    assert stored_ids(store) == every_id(40)
    assert sandbox.detail_calls() - details == 20  # resumed at page 3, nothing fetched twice


@pytest.mark.sandbox_config(count=20)
def test_failed_detail_call_is_retried_next_run(oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore) -> None:
    sandbox.add_fault("malformed", times=1, methods=frozenset({"OrderGetMoreDetails"}))
    first = importer(oxatis, sandbox, store, max_concurrency=1).run()
    assert first.failed == 1
    (failed_id,) = first.failures
    assert failed_id not in stored_ids(store)
    second = importer(oxatis, sandbox, store, max_concurrency=1).run()
    assert second.imported == 1 and second.failed == 0
    assert stored_ids(store) == every_id(20)


@pytest.mark.sandbox_config(count=10)
def test_ship_twice_second_is_already_sent_with_one_state_entry(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    connection = oxatis.connect(sandbox_settings(sandbox))
    notifier = Notifier(oxatis, connection, store)
    shipment = Shipment(order_id="100002", tracking_number="6A42", carrier="Colissimo")
    first = notifier.notify(shipment)
    second = notifier.notify(shipment)
    assert first.result.status is NotificationStatus.SENT
    assert second.result.status is NotificationStatus.ALREADY_SENT and second.from_ledger
    assert sandbox.store.shipped_entries(100002) == 1
    assert sandbox.calls["OrderUpdateTracking"] == 1


@pytest.mark.sandbox_config(count=10)
def test_notification_with_unknown_outcome_is_retried_next_run_without_second_entry(
    oxatis: Channel, sandbox: SandboxServer, store: SQLiteStore
) -> None:
    sandbox.add_fault("slow_after_apply", times=1, delay=1.0, methods=frozenset({"OrderUpdateTracking"}))
    connection = oxatis.connect(sandbox_settings(sandbox, timeout=0.3))
    notifier = Notifier(oxatis, connection, store)
    outcome = notifier.notify(Shipment(order_id="100003", tracking_number="6A43", carrier="Colissimo"))
    assert outcome.pending
    retried = Notifier(oxatis, oxatis.connect(sandbox_settings(sandbox)), store).retry_pending()
    assert [o.result.status for o in retried] == [NotificationStatus.ALREADY_SENT]
    assert sandbox.store.shipped_entries(100003) == 1
    assert Notifier(oxatis, connection, store).retry_pending() == []


def test_two_stores_with_the_same_order_ids_never_collide(oxatis: Channel, tmp_path: Path) -> None:
    from channel_oxatis.sandbox import SandboxConfig

    with (
        SandboxServer(SandboxConfig(count=5, seed=1, token="shop-a")) as a,
        SandboxServer(SandboxConfig(count=5, seed=2, token="shop-b")) as b,
        SQLiteStore(tmp_path / "two.sqlite3") as db,
    ):
        accounts = []
        for server in (a, b):
            connection = oxatis.connect(sandbox_settings(server))
            Importer(oxatis, connection, db).run()
            accounts.append(connection.account_id)
        assert accounts[0] != accounts[1]
        assert db.count_orders("oxatis") == 2 * len({s.order.order_id for s in db.iter_orders("oxatis")})
        first, second = (db.get_order("oxatis", "100001", account) for account in accounts)
        assert first is not None and second is not None and first.account_id == accounts[0]
        assert first.order.buyer != second.order.buyer  # each store's own order, both kept
        with pytest.raises(ValueError, match="several accounts"):
            db.get_order("oxatis", "100001")


V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_number TEXT NOT NULL,
    status TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS versions (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS failed (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    next_start TEXT,
    cursor TEXT,
    cursor_since TEXT,
    cursor_until TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id)
);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    shipment TEXT NOT NULL,
    status TEXT NOT NULL,
    fields_sent TEXT NOT NULL,
    message TEXT,
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


def test_a_version_1_database_migrates_and_keeps_its_orders(oxatis: Channel, tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)
        old.execute(
            "INSERT INTO checkpoints VALUES ('oxatis', 'acct', '2026-11-01T00:00:00+00:00', NULL, NULL, NULL, 'x')"
        )
        old.execute("INSERT INTO failed VALUES ('oxatis', 'acct', '100001', 'boom', 2, '2026-11-01T00:00:00+00:00')")
        old.execute("PRAGMA user_version=1")
    with SQLiteStore(path) as store:
        checkpoint = store.load_checkpoint("oxatis", "acct")
        assert checkpoint is not None and checkpoint.next_start is not None and checkpoint.complete_until is None
        (failed,) = store.failed_orders("oxatis")
        assert (failed.attempts, failed.parked) == (2, False)
        assert store.take_fence("oxatis", "acct") == 1
        assert store.claim_order("oxatis", "acct", "1", "me", now=datetime.now(UTC), lease=timedelta(minutes=1))
        assert checkpoint.clock_lag == timedelta(0)
        assert store.pending_webhook_events("shopify", "shopify") == []  # the webhook table came with version 4
        version = store._db.execute("PRAGMA user_version").fetchone()[0]
    assert version == 4


def test_many_connections_opening_one_new_database_at_once(tmp_path: Path) -> None:
    import threading

    errors: list[BaseException] = []
    for trial in range(10):
        path = tmp_path / f"fresh-{trial}.sqlite3"
        barrier = threading.Barrier(8, timeout=60)

        def open_it(target: Path = path, gate: threading.Barrier = barrier) -> None:
            try:
                gate.wait()
                with SQLiteStore(target) as store:
                    store.take_fence("oxatis", "a")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
