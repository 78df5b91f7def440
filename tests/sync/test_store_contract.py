"""The OrderStore contract, run unchanged against SQLiteStore and PostgresStore.

PostgreSQL comes from ``CHANNEL_TEST_POSTGRES_DSN`` (``.ci/run`` starts a throwaway
cluster with ``scripts/throwaway-postgres`` and sets ``CHANNEL_REQUIRE_POSTGRES=1``,
so there it is required, never skipped). Each test gets its own schema.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import (
    Address,
    Channel,
    FencedOutError,
    NotificationResult,
    NotificationStatus,
    Order,
    OrderStatus,
    Shipment,
)
from channel_core.sync import Checkpoint, Importer, NotificationRecord, SQLiteStore
from channel_core.sync.store import WriteOutcome
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from tests.oxatis.conftest import sandbox_settings
from tests.sync.postgres import fresh_database, postgres_dsn
from tests.sync.simulation import check_content

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "contract.sqlite3") as sqlite:
            yield sqlite
        return
    from channel_core.sync.postgres import PostgresStore

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with PostgresStore(postgres_dsn(), schema=schema) as postgres:
        yield postgres
        with postgres.transaction():
            postgres._db.execute(f'DROP SCHEMA "{schema}" CASCADE')


def order(order_id: str = "1", *, city: str = "Lyon", status: OrderStatus = OrderStatus.AWAITING_SHIPMENT) -> Order:
    return Order(
        channel="oxatis",
        order_id=order_id,
        order_number=order_id,
        status=status,
        channel_status="paid",
        created_at=T0,
        modified_at=T0,
        ship_to=Address(name="Jean", line1="1 rue X", city=city, postal_code="69001", country_code="FR"),
        currency="EUR",
    )


def test_orders_insert_update_unchanged_and_one_row_per_account(store: Any) -> None:
    assert store.save_order("acct-a", order(), "v1") == WriteOutcome.INSERTED
    assert store.save_order("acct-a", order(), "v1") == WriteOutcome.UNCHANGED
    assert store.save_order("acct-a", order(city="Brest"), "v2") == WriteOutcome.UPDATED
    assert store.save_order("acct-b", order(), "v1") == WriteOutcome.INSERTED
    assert store.count_orders("oxatis") == 2
    mine = store.get_order("oxatis", "1", "acct-a")
    assert mine.order.ship_to.city == "Brest" and mine.account_id == "acct-a"
    assert store.get_order("oxatis", "1", "acct-b").order.ship_to.city == "Lyon"
    with pytest.raises(ValueError, match="several accounts"):
        store.get_order("oxatis", "1")
    assert store.known_version("oxatis", "acct-a", "1") == "v2"
    assert [s.order.order_id for s in store.iter_orders("oxatis")] == ["1", "1"]


def test_checkpoints_round_trip(store: Any) -> None:
    assert store.load_checkpoint("oxatis", "a") is None
    checkpoint = Checkpoint(T0, T0 + timedelta(minutes=15), '{"v": 3}', T0 - timedelta(days=1))
    store.save_checkpoint("oxatis", "a", checkpoint)
    assert store.load_checkpoint("oxatis", "a") == checkpoint
    store.save_checkpoint("oxatis", "a", Checkpoint(T0))
    assert store.load_checkpoint("oxatis", "a") == Checkpoint(T0)


def test_a_failed_transaction_leaves_nothing(store: Any) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.save_order("a", order("7"), "v")
        store.save_checkpoint("oxatis", "a", Checkpoint(T0))
        raise RuntimeError("crash between the page and its checkpoint")
    assert store.get_order("oxatis", "7", "a") is None and store.load_checkpoint("oxatis", "a") is None


def test_skipped_then_imported(store: Any) -> None:
    store.save_skipped("oxatis", "a", "9", "no ship-to address", "v1")
    assert store.skipped("oxatis") == [("oxatis", "9", "no ship-to address")]
    store.save_order("a", order("9"), "v2")
    assert store.skipped("oxatis") == []


def test_failed_orders_back_off_park_hide_their_version_and_retry(store: Any) -> None:
    store.save_version("oxatis", "a", "5", "v0")
    first = store.save_failed("oxatis", "a", "5", "boom", now=T0, max_attempts=3, version="v1")
    assert (first.attempts, first.parked) == (1, False)
    assert store.known_version("oxatis", "a", "5") is None  # fetched whenever listed while it fails
    assert store.failed_order_ids("oxatis", "a", now=T0) == ["5"]
    second = store.save_failed("oxatis", "a", "5", "boom", now=T0, max_attempts=3, version="v1")
    assert second.next_attempt == T0 + timedelta(minutes=5)
    assert store.failed_order_ids("oxatis", "a", now=T0) == []
    third = store.save_failed("oxatis", "a", "5", "boom", now=T0, max_attempts=3, version="v1")
    assert third.parked and store.failed_order_ids("oxatis", "a") == []
    assert store.known_version("oxatis", "a", "5") == "v1"  # parked: fetched again once it changes
    (record,) = store.failed_orders("oxatis")
    assert (record.order_id, record.attempts, record.parked) == ("5", 3, True)
    assert store.retry_failed("oxatis", None, "5") == 1
    assert store.failed_order_ids("oxatis", "a", now=T0) == ["5"]
    store.save_order("a", order("5"), "v2")
    assert store.failed_orders("oxatis") == []


def test_notification_ledger(store: Any) -> None:
    shipment = Shipment(order_id="1", tracking_number="6A1", carrier="DPD")
    record = NotificationRecord("n1", "oxatis", "a", shipment, "pending", (), None, 1, T0 + timedelta(minutes=2))
    store.save_notification(record)
    assert store.get_notification("n1").shipment == shipment
    assert store.pending_notifications("oxatis", "a", now=T0) == []
    assert [r.notification_id for r in store.pending_notifications("oxatis", "a", now=T0 + timedelta(hours=1))] == [
        "n1"
    ]
    store.record_result("n1", NotificationResult(NotificationStatus.SENT, ("tracking_number",), None))
    got = store.get_notification("n1")
    assert (got.status, got.fields_sent) == ("sent", ("tracking_number",))
    assert store.pending_notifications("oxatis", "a") == []
    assert [r.notification_id for r in store.notifications(["sent"])] == ["n1"]
    assert store.latest_shipments("oxatis")[("oxatis", "a", "1")] == shipment


def test_claims_are_exclusive_expire_and_release_by_owner_only(store: Any) -> None:
    lease = timedelta(minutes=5)
    assert store.claim_order("oxatis", "a", "1", "w1", now=T0, lease=lease)
    assert not store.claim_order("oxatis", "a", "1", "w2", now=T0 + timedelta(minutes=1), lease=lease)
    assert store.claim_order("oxatis", "a", "1", "w1", now=T0 + timedelta(minutes=1), lease=lease)  # renewal
    store.release_order("oxatis", "a", "1", "w2")  # not the owner: no effect
    assert not store.claim_order("oxatis", "a", "1", "w2", now=T0 + timedelta(minutes=2), lease=lease)
    assert store.claim_order("oxatis", "a", "1", "w2", now=T0 + timedelta(minutes=7), lease=lease)  # w1 crashed
    store.release_order("oxatis", "a", "1", "w2")
    assert store.claim_order("oxatis", "a", "1", "w3", now=T0 + timedelta(minutes=7), lease=lease)


def test_a_claim_is_renewed_only_by_the_owner_still_holding_it(store: Any) -> None:
    lease, claim = timedelta(minutes=5), ("oxatis", "a", "1")
    assert not store.renew_claim(*claim, "w1", now=T0, lease=lease)  # never takes a free claim
    assert store.claim_order(*claim, "w1", now=T0, lease=lease)
    assert store.renew_claim(*claim, "w1", now=T0 + timedelta(minutes=4), lease=lease)
    assert not store.claim_order(*claim, "w2", now=T0 + timedelta(minutes=8), lease=lease)  # renewed to 9 min
    assert store.renew_claim(*claim, "w1", now=T0 + timedelta(minutes=20), lease=lease)  # past its lease, untaken
    assert store.claim_order(*claim, "w2", now=T0 + timedelta(minutes=30), lease=lease)  # w1 presumed dead
    assert not store.renew_claim(*claim, "w1", now=T0 + timedelta(minutes=31), lease=lease)  # taken over
    store.release_order(*claim, "w2")
    assert not store.renew_claim(*claim, "w1", now=T0 + timedelta(minutes=32), lease=lease)  # released, still not w1's


def test_claims_hold_under_threads(store: Any) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(6, timeout=60)

    def claim(owner: str) -> None:
        barrier.wait()
        if store.claim_order("oxatis", "a", "42", owner, now=T0, lease=timedelta(minutes=5)):
            winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_mark_shipped(store: Any) -> None:
    store.save_order("a", order("3"), "v")
    assert store.mark_shipped("oxatis", "a", "3") and not store.mark_shipped("oxatis", "a", "404")
    assert store.get_order("oxatis", "3", "a").order.status is OrderStatus.SHIPPED


def test_an_import_equals_the_store_by_content(store: Any, oxatis: Channel) -> None:
    with SandboxServer(SandboxConfig(count=30)) as server:
        connection = oxatis.connect(sandbox_settings(server, page_size=7))
        first = Importer(oxatis, connection, store).run()
        second = Importer(oxatis, connection, store).run()
        assert first.completed and second.completed and second.imported == second.updated == 0
        check = check_content(oxatis, server, store)
        assert check.ok and check.checked == 30, check


def test_the_channel_command_runs_on_postgresql(tmp_path: Path) -> None:
    """``database = "postgresql://…"`` in channel.toml switches the store."""
    import json

    from click.testing import CliRunner

    from channel_core.cli import cli

    with fresh_database("cli") as dsn:
        config = tmp_path / "channel.toml"
        config.write_text(f'database = "{dsn}"\n', encoding="utf-8")
        with SandboxServer(SandboxConfig(count=12)) as server:
            args = ["--config", str(config), "import", "oxatis", "--json", "--set", f"base_url={server.url}",
                    "--set", "store_timezone='Europe/Paris'", "--set", "retry_backoff=0"]  # fmt: skip
            env = {"OXATIS_TOKEN": server.config.token}
            done = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
            assert done.exit_code == 0, done.output
            assert json.loads(done.stdout)["imported"] == 11
            listed = CliRunner().invoke(cli, ["--config", str(config), "orders", "--format", "jsonl"], env=env)
            assert len(listed.stdout.splitlines()) == 11


def test_fences_rise_and_a_stale_one_is_refused(store: Any) -> None:
    from channel_core import FencedOutError

    first = store.take_fence("oxatis", "a")
    second = store.take_fence("oxatis", "a")
    assert second > first and store.take_fence("oxatis", "b") == 1
    store.check_fence("oxatis", "a", second)
    with pytest.raises(FencedOutError, match="took over"):
        store.check_fence("oxatis", "a", first)


def test_a_run_that_lost_its_fence_moves_no_checkpoint_and_stores_no_page(store: Any, oxatis: Channel) -> None:
    with SandboxServer(SandboxConfig(count=30)) as server:
        connection = oxatis.connect(sandbox_settings(server, page_size=10, max_concurrency=1))
        pages: list[int] = []

        def another_worker_takes_over(page: Any, summary: Any) -> None:
            pages.append(summary.pages)
            if len(pages) == 1:
                store.take_fence("oxatis", connection.account_id)  # a second run of this store starts

        summary = Importer(oxatis, connection, store).run(on_page=another_worker_takes_over)
        assert summary.stopped == "fenced" and "took over" in (summary.stop_error or "")
        assert summary.pages == 1 and store.count_orders("oxatis") + len(store.skipped("oxatis")) == 10
        checkpoint = store.load_checkpoint("oxatis", connection.account_id)
        assert checkpoint is not None and checkpoint.complete_until is None  # nothing promised by the fenced run
        again = Importer(oxatis, connection, store).run()
        assert again.completed and store.count_orders("oxatis") + len(store.skipped("oxatis")) == 30


def test_a_page_of_orders_is_saved_in_one_batch_with_the_outcome_of_each(store: Any) -> None:
    store.save_order("a", order("1"), "v1")
    store.save_order("a", order("2"), None)
    store.save_skipped("oxatis", "a", "3", "no ship-to address", None)
    store.save_failed("oxatis", "a", "4", "boom", now=T0, max_attempts=5)
    page = [(order("1"), "v1"), (order("2", city="Brest"), "v2"), (order("3"), None), (order("4"), "v4")]
    with store.transaction():
        outcomes = store.save_orders("a", page)
    assert outcomes == [WriteOutcome.UNCHANGED, WriteOutcome.UPDATED, WriteOutcome.INSERTED, WriteOutcome.INSERTED]
    assert store.get_order("oxatis", "2", "a").order.ship_to.city == "Brest"
    assert store.skipped("oxatis") == [] and store.failed_order_ids("oxatis", "a") == []  # cleared by the save
    assert [store.known_version("oxatis", "a", n) for n in "1234"] == ["v1", "v2", None, "v4"]
    assert store.save_orders("a", []) == []
    assert store.save_orders("b", [(order("1"), None)]) == [WriteOutcome.INSERTED]  # another account's own row


def test_an_order_twice_in_one_page_is_stored_as_its_second_reading(store: Any) -> None:
    store.save_order("a", order("1"), "v1")
    page = [(order("2"), "v1"), (order("1", city="Brest"), "v2"), (order("2", city="Nantes"), "v3")]
    with store.transaction():
        outcomes = store.save_orders("a", page)
    assert outcomes == [WriteOutcome.INSERTED, WriteOutcome.UPDATED, WriteOutcome.UPDATED]
    assert store.get_order("oxatis", "2", "a").order.ship_to.city == "Nantes"
    assert store.known_version("oxatis", "a", "2") == "v3"
    with store.transaction():
        again = store.save_orders("a", [(order("2", city="Nantes"), "v3"), (order("2", city="Nantes"), "v3")])
    assert again == [WriteOutcome.UNCHANGED, WriteOutcome.UNCHANGED]


def test_a_batch_in_a_failed_transaction_leaves_nothing(store: Any) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.save_orders("a", [(order("1"), "v1"), (order("2"), "v2")])
        raise RuntimeError("crash before the checkpoint")
    assert store.count_orders("oxatis") == 0 and store.known_version("oxatis", "a", "1") is None


def test_a_run_begins_with_a_new_fence_its_checkpoint_and_the_failed_orders_due(store: Any) -> None:
    first = store.begin_run("oxatis", "a", now=T0)
    assert first.checkpoint is None and first.failed_order_ids == ()
    checkpoint = Checkpoint(T0, T0 + timedelta(minutes=5), "cursor", T0 - timedelta(days=1), timedelta(seconds=2))
    store.save_checkpoint("oxatis", "a", checkpoint)
    store.save_failed("oxatis", "a", "9", "boom", now=T0, max_attempts=5)
    store.save_failed("oxatis", "a", "8", "boom", now=T0, max_attempts=5)
    later = store.begin_run("oxatis", "a", now=T0 + timedelta(days=1))
    assert later.fence > first.fence and later.checkpoint == checkpoint
    assert later.failed_order_ids == ("8", "9")
    with pytest.raises(FencedOutError), store.transaction():  # the earlier run's fence is stale now
        store.check_fence("oxatis", "a", first.fence)
        store.save_checkpoint("oxatis", "a", Checkpoint(T0 + timedelta(days=9)))
    assert store.load_checkpoint("oxatis", "a") == checkpoint  # nothing of the fenced transaction stayed


def test_a_fence_lost_inside_a_page_stores_none_of_it(store: Any) -> None:
    fence = store.take_fence("oxatis", "a")
    store.take_fence("oxatis", "a")  # another run took the store
    with pytest.raises(FencedOutError, match="took over"), store.transaction():
        store.check_fence("oxatis", "a", fence)
        store.save_orders("a", [(order("1"), "v1")])
        store.save_checkpoint("oxatis", "a", Checkpoint(T0))
    assert store.count_orders("oxatis") == 0 and store.load_checkpoint("oxatis", "a") is None
    with store.transaction():  # the connection is usable afterwards
        store.save_order("a", order("1"), "v1")
    assert store.count_orders("oxatis") == 1


def test_rows_kept_under_an_older_id_of_the_store_are_adopted_when_a_run_begins(store: Any, oxatis: Channel) -> None:
    from channel_oxatis.connection import legacy_account_id
    from channel_oxatis.settings import parse_settings

    with SandboxServer(SandboxConfig(count=10)) as server:
        settings = sandbox_settings(server, max_concurrency=1)
        old_id = legacy_account_id(parse_settings(settings))
        with oxatis.connect(settings) as connection:
            Importer(oxatis, connection, store).run()
            new_id = connection.account_id
        assert store.adopt_account("oxatis", new_id, old_id) > 0  # as an older release left them
        details = server.detail_calls()
        with oxatis.connect(settings) as connection:
            again = Importer(oxatis, connection, store).run()
        assert again.completed and again.imported == 0 and server.detail_calls() == details  # nothing fetched again
        assert {s.account_id for s in store.iter_orders("oxatis")} == {new_id}
        assert store.load_checkpoint("oxatis", old_id) is None and store.load_checkpoint("oxatis", new_id) is not None


def test_a_list_pages_versions_are_read_in_one_lookup_and_a_failed_orders_is_not_trusted(store: Any) -> None:
    store.save_orders("a", [(order(str(n)), f"v{n}") for n in range(1, 5)])
    store.save_failed("oxatis", "a", "2", "boom", now=T0, max_attempts=5, version="v2-new")  # fetched when listed
    store.save_version("oxatis", "b", "3", "another account's")
    found = store.known_versions("oxatis", "a", ["1", "2", "3", "9"])
    assert found == {"1": "v1", "3": "v3"}
    assert found == {n: v for n in "1239" if (v := store.known_version("oxatis", "a", n)) is not None}
    assert store.known_versions("oxatis", "a", []) == {}
    assert len(store.known_versions("oxatis", "a", [str(n) for n in range(1, 1201)])) == 3  # beyond one chunk


def test_a_resync_asks_the_store_for_a_pages_versions_at_once(oxatis: Channel, tmp_path: Path) -> None:
    asked: list[int] = []

    class Counting(SQLiteStore):
        def known_version(self, channel: str, account_id: str, order_id: str) -> str | None:
            asked.append(1)
            return super().known_version(channel, account_id, order_id)

        def known_versions(self, channel: str, account_id: str, order_ids: Any) -> dict[str, str]:
            asked.append(len(order_ids))
            return super().known_versions(channel, account_id, order_ids)

    with SandboxServer(SandboxConfig(count=30)) as server, Counting(tmp_path / "c.sqlite3") as store:
        settings = sandbox_settings(server, page_size=10, max_concurrency=1)
        with oxatis.connect(settings) as connection:
            Importer(oxatis, connection, store, margin=timedelta(days=3650)).run()  # the next run reads it all again
            details = server.detail_calls()
            asked.clear()
            again = Importer(oxatis, connection, store).run()  # every order in the overlap, before the promise
        assert again.completed and server.detail_calls() == details  # every version trusted, nothing fetched
        assert asked and all(n > 1 for n in asked) and sum(asked) >= 30  # a page at a time, never one by one


def test_a_checkpoint_saved_with_a_stale_fence_is_refused_and_nothing_is_written(store: Any) -> None:
    first = store.take_fence("oxatis", "a")
    checkpoint = Checkpoint(T0, None, "cursor", T0 - timedelta(days=1), timedelta(seconds=2))
    store.save_checkpoint("oxatis", "a", checkpoint, fence=first)  # still the latest: saved
    assert store.load_checkpoint("oxatis", "a") == checkpoint
    store.take_fence("oxatis", "a")  # another run takes the store
    with pytest.raises(FencedOutError, match="took over"):
        store.save_checkpoint("oxatis", "a", Checkpoint(T0 + timedelta(days=9)), fence=first)
    assert store.load_checkpoint("oxatis", "a") == checkpoint
    with store.transaction():  # inside a page's transaction too
        store.save_orders("a", [(order("1"), "v1")])
        later = store.take_fence("oxatis", "a")
        store.save_checkpoint("oxatis", "a", Checkpoint(T0 + timedelta(days=1)), fence=later)
    assert store.load_checkpoint("oxatis", "a") == Checkpoint(T0 + timedelta(days=1))
