"""One test per finding of the import-correctness issue, each checked by content against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel
from channel_core.sync import Importer, ImportSummary, SQLiteStore
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, replies
from channel_oxatis.sandbox.operations import Reply
from tests.oxatis.conftest import sandbox_settings
from tests.sync.simulation import SimClock, check_content


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "orders.sqlite3") as store:
        yield store


def run(
    oxatis: Channel,
    server: SandboxServer,
    db: SQLiteStore,
    *,
    host_clock: Any = None,
    **settings: Any,
) -> ImportSummary:
    with oxatis.connect(sandbox_settings(server, **settings)) as connection:
        kwargs = {"clock": host_clock} if host_clock is not None else {}
        return Importer(oxatis, connection, db, **kwargs).run()


def assert_equal_by_content(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    check = check_content(oxatis, server, db)
    assert check.ok, check


def test_host_clock_ahead_of_the_store_loses_nothing(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 1: the window end came from the host's clock; a store 60 s behind lost orders for good."""
    with SandboxServer(SandboxConfig(count=30, clock_skew=-60.0, modify_between_pages=(1, 4))) as server:
        first = run(oxatis, server, db, page_size=10, max_concurrency=2)
        assert first.completed
        run(oxatis, server, db, page_size=10)
        assert_equal_by_content(oxatis, server, db)


def test_a_busy_store_loses_nothing_and_never_rescans_from_page_one(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 2: after five rescans further shrinkage was ignored and orders were lost."""
    with SandboxServer(SandboxConfig(count=60)) as server:
        edited: list[int] = []

        def busy(page_number: int, served: Any) -> None:
            for oxid in served:
                if oxid not in edited and len(edited) < 12:
                    edited.append(oxid)
                    server.store.modify(oxid, {"InternalNote": "edited while listed"})
                    return

        server.operations._maybe_modify_after_page = busy  # type: ignore[method-assign]
        first = run(oxatis, server, db, page_size=10, max_concurrency=2)
        assert first.completed and len(edited) >= 6
        list_calls = server.calls["OrderGetSummaryList"]
        assert list_calls <= 8  # 6 pages plus what the edits pushed back; no restart from page 1
        server.operations._maybe_modify_after_page = lambda *a: None  # type: ignore[method-assign]
        run(oxatis, server, db, page_size=10)
        assert_equal_by_content(oxatis, server, db)


def test_a_change_on_the_autumn_clock_change_night_is_imported(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 3: naive bounds around 02:00-03:00 on the fall-back night hid a cancellation."""
    clock = SimClock(datetime(2026, 10, 25, 0, 42, tzinfo=UTC))  # 02:42 CEST
    config = SandboxConfig(count=5, anchor=datetime(2026, 10, 24, 20, 0), clock=clock)
    with SandboxServer(config) as server:
        cancelled = False
        for _ in range(16):  # a sync every five minutes until 01:57 UTC, through the repeated hour
            if not cancelled and clock() >= datetime(2026, 10, 25, 1, 0, 40, tzinfo=UTC):
                server.store.modify(100005, {"PaymentStatusCode": 0})  # cancelled at 02:02 CET, the second 02:02
                cancelled = True
            run(oxatis, server, db, host_clock=clock)
            clock.advance(300)
        stored = db.get_order("oxatis", "100005")
        assert stored is not None and stored.order.status.value == "cancelled"
        assert_equal_by_content(oxatis, server, db)


def test_a_ship_to_change_the_summary_cannot_see_is_imported(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 4: the version hashed the summary only, so a new ship-to address was skipped as unchanged."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        run(oxatis, server, db)
        server.store.modify(100003, {"ShippingCity": "Lyon", "ShippingZipCode": "69001", "InternalNote": "moved"})
        details = server.detail_calls()
        again = run(oxatis, server, db)
        assert again.updated == 1 and server.detail_calls() - details == 1
        stored = db.get_order("oxatis", "100003")
        assert stored is not None and stored.order.ship_to.city == "Lyon"
        assert_equal_by_content(oxatis, server, db)


def test_an_order_skipped_for_no_ship_to_is_imported_once_it_has_one(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 4: a skipped order stayed skipped after the merchant added the address."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        first = run(oxatis, server, db)
        ((_, order_id, _),) = db.skipped("oxatis")
        assert first.skip_reasons == {"no ship-to address": 1}
        server.store.modify(
            int(order_id),
            {"ShippingFirstName": "Jean", "ShippingAddressL1": "1 rue X", "ShippingZipCode": "75001",
             "ShippingCity": "Paris", "ShippingCountryISOCode": "FR"},
        )  # fmt: skip
        again = run(oxatis, server, db)
        assert again.imported == 1 and db.skipped("oxatis") == []
        assert_equal_by_content(oxatis, server, db)


def test_a_blank_detail_reply_is_a_failure_retried_never_a_skip(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 5: one 200 reply without Data/Order made the order a SkippedOrder for good."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        blank = {"left": 5}  # more than the retry policy's attempts within one call

        def answer(method: str) -> None:
            if method == "OrderGetMoreDetails" and blank["left"] > 0:
                blank["left"] -= 1
                raise Reply(replies.envelope(None))

        server.on_request = answer
        first = run(oxatis, server, db, max_concurrency=1, retry_attempts=5)
        assert first.skipped == 1 and first.skip_reasons == {"no ship-to address": 1}  # the store's own skip only
        assert first.failed == 1 and "no Data/Order" in next(iter(first.failures.values()))
        second = run(oxatis, server, db)
        assert second.failed == 0
        assert_equal_by_content(oxatis, server, db)


def test_dotnet_min_value_dates_read_as_no_date(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 6: 0001-01-01T00:00:00 in one order crashed every run with OverflowError."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        server.store.modify(100006, {"InvoiceDate": datetime(1, 1, 1), "DateOfPicking": datetime(1, 1, 1)})
        summary = run(oxatis, server, db)
        assert summary.completed and summary.failed == 0
        assert db.get_order("oxatis", "100006") is not None
        assert_equal_by_content(oxatis, server, db)


def test_failed_orders_are_counted_once_backed_off_then_parked(oxatis: Channel, db: SQLiteStore) -> None:
    """Finding 7: a failing order was retried forever, with no cap, and counted twice per run."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        an_hour_ago = server.store.now() - timedelta(hours=1)  # before the first run: in later runs' overlap
        server.store.modify(100004, {"SpecialInstructions": "Porte\x0bB"}, when=an_hour_ago)  # malformed XML
        now = [datetime.now(UTC)]
        summaries = []
        for _ in range(7):
            summaries.append(run(oxatis, server, db, host_clock=lambda: now[0]))
            now[0] += timedelta(days=1)  # every backoff has passed
        assert [s.failed for s in summaries[:5]] == [1, 1, 1, 1, 1]  # once per run, not twice
        assert summaries[4].parked == 1
        (record,) = db.failed_orders("oxatis")
        assert record.parked and record.attempts == 5
        assert [s.failed for s in summaries[5:]] == [0, 0]  # parked: not asked for again while unchanged
        details = server.detail_calls()
        server.store.modify(100004, {"SpecialInstructions": "Porte B"})  # the merchant fixes it
        fixed = run(oxatis, server, db, host_clock=lambda: now[0])
        assert fixed.imported == 1 and db.failed_orders("oxatis") == []
        assert server.detail_calls() - details == 1
        assert_equal_by_content(oxatis, server, db)


def test_failed_order_backoff_waits_between_attempts(oxatis: Channel, db: SQLiteStore) -> None:
    with SandboxServer(SandboxConfig(count=10)) as server:
        server.store.modify(100004, {"SpecialInstructions": "Porte\x0bB"})
        now = datetime.now(UTC)
        run(oxatis, server, db, host_clock=lambda: now)
        run(oxatis, server, db, host_clock=lambda: now)  # attempt 2: the first retry is the next run
        (record,) = db.failed_orders("oxatis")
        assert record.attempts == 2 and record.next_attempt == now + timedelta(minutes=5)
        assert db.failed_order_ids("oxatis", record.account_id, now=now) == []
        assert db.failed_order_ids("oxatis", record.account_id, now=now + timedelta(minutes=5)) == ["100004"]
        assert db.retry_failed("oxatis", None, "100004") == 1
        assert db.failed_order_ids("oxatis", record.account_id, now=now) == ["100004"]


def test_a_store_timezone_that_puts_orders_in_the_future_is_warned_about(
    oxatis: Channel, db: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    paris_now = datetime.now(UTC).astimezone(SimClock.PARIS).replace(tzinfo=None, microsecond=0)
    with SandboxServer(SandboxConfig(count=8, anchor=paris_now - timedelta(minutes=5))) as server:
        caplog.set_level("WARNING", logger="channel_oxatis.orders")
        run(oxatis, server, db, store_timezone="Europe/Paris")
        assert "store_timezone_suspect" not in caplog.text
        run(oxatis, server, db, store_timezone="UTC")
        assert "store_timezone_suspect" in caplog.text and "OXATIS_STORE_TIMEZONE" in caplog.text


def test_pages_tell_where_they_are_in_the_listing_for_progress_displays(oxatis: Channel) -> None:
    from channel_core import OrderQuery

    with SandboxServer(SandboxConfig(count=25)) as server:
        connection = oxatis.connect(sandbox_settings(server, page_size=10))
        pages = list(oxatis.fetch_orders(connection, OrderQuery(modified_since=datetime(2010, 1, 15, tzinfo=UTC))))
    assert [p.page_of for p in pages] == [(1, 3), (2, 3), (3, 3)]
    assert {p.listed_total for p in pages} == {25}


# --- third correctness pass (issue 20) ------------------------------------------------------------------------

ADDRESS = {"ShippingAddress": "99 avenue Nouvelle", "ShippingAddressL1": None, "ShippingAddressStreet": None,
           "ShippingAddressOtherInfo": None, "ShippingCity": "Lyon", "ShippingZipCode": "69001"}  # fmt: skip


@pytest.mark.parametrize("lag", [30.0, 300.0], ids=["30s", "5min"])
def test_order_stamps_behind_the_date_header_lose_no_change(oxatis: Channel, db: SQLiteStore, lag: float) -> None:
    """n4: the database stamping orders runs behind the web server's Date; GetServerDate tells by how much."""
    clock = SimClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    with SandboxServer(SandboxConfig(count=10, clock=clock, stamp_lag=lag, timezone="Europe/Paris")) as server:
        first = run(oxatis, server, db)
        clock.advance(2)
        server.store.modify(100003, ADDRESS)  # stamped `lag` before the Date header of its time
        clock.advance(2)
        run(oxatis, server, db)
        clock.advance(60)
        run(oxatis, server, db)
        assert first.completed
        checkpoint = db.load_checkpoint("oxatis", next(iter(db.iter_orders())).account_id)
        assert checkpoint is not None and checkpoint.clock_lag >= timedelta(seconds=lag - 1)
        assert_equal_by_content(oxatis, server, db)


@pytest.mark.parametrize("lag", [30.0, 300.0], ids=["30s", "5min"])
def test_a_lag_learned_from_new_orders_rereads_what_it_hid(oxatis: Channel, db: SQLiteStore, lag: float) -> None:
    """When GetServerDate tells nothing (it reads the web server's clock), new orders' dates show the lag,
    and the run that learns it reads the part of the last window it hid again, untrusted."""
    clock = SimClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    config = SandboxConfig(count=12, visible=10, clock=clock, stamp_lag=lag, server_date_clock="web")
    with SandboxServer(config) as server:
        run(oxatis, server, db)
        clock.advance(2)
        server.store.modify(100003, ADDRESS)  # hidden under the first run's promise
        server.store.create_order()  # a new order, dated by the database's clock
        clock.advance(2)
        second = run(oxatis, server, db)
        assert second.updated >= 1
        clock.advance(60)
        run(oxatis, server, db)
        assert_equal_by_content(oxatis, server, db)


def test_no_date_header_keeps_the_last_promise_and_says_so(oxatis: Channel, db: SQLiteStore) -> None:
    """n6: without a Date header the host's clock became the promise; a host 60 s ahead lost a change."""
    with SandboxServer(SandboxConfig(count=10)) as server:
        server.config.date_header = False  # a proxy drops the Date header
        ahead = lambda: datetime.now(UTC) + timedelta(seconds=60)  # noqa: E731
        first = run(oxatis, server, db, host_clock=ahead)
        assert first.completed and first.store_time_unknown and first.complete_until is None
        server.store.modify(100003, ADDRESS)
        second = run(oxatis, server, db, host_clock=ahead)
        assert second.store_time_unknown and second.updated == 1
        assert_equal_by_content(oxatis, server, db)


def test_a_deletion_while_a_run_is_interrupted_loses_no_order(oxatis: Channel, db: SQLiteStore) -> None:
    """n5: the resumed listing shifted under it and an order slid onto a page already stored."""
    with SandboxServer(SandboxConfig(count=20)) as server:
        with oxatis.connect(sandbox_settings(server, page_size=5, max_concurrency=1)) as connection:
            first = Importer(oxatis, connection, db).run(should_stop=lambda: True)
            assert first.stopped == "interrupted" and first.pages == 1
            server.store.delete_order(100020)  # the newest order, on the page already stored
            second = Importer(oxatis, connection, db).run()
            assert second.completed
        stored = {s.order.order_id for s in db.iter_orders()} | {oid for _, oid, _ in db.skipped("oxatis")}
        assert {str(100000 + n) for n in range(1, 20)} <= stored


def test_a_retry_after_longer_than_the_budget_stops_the_run_cleanly(oxatis: Channel, db: SQLiteStore) -> None:
    """r13: the run stops (resumed from the checkpoint later), no order is failed for it."""
    with SandboxServer(SandboxConfig(count=30)) as server:
        calls = [0]

        def throttle(method: str) -> None:
            calls[0] += 1
            if method == "OrderGetMoreDetails" and calls[0] > 12:
                raise Reply(b"slow down", 429, {"Retry-After": "600"})

        server.on_request = throttle
        summary = run(oxatis, server, db, page_size=10, max_concurrency=1)
        assert summary.stopped == "rate_limited" and "600 s" in (summary.stop_error or "")
        assert summary.failed == 0 and db.failed_orders("oxatis") == []
        server.on_request = None
        assert run(oxatis, server, db, page_size=10).completed
        assert_equal_by_content(oxatis, server, db)
