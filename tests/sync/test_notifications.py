"""Shipment notifications: exactly once, correct, fail-closed, and visible to the operator.

The suite runs against both documented shapes of the progress-state log reply
(oxatis-api.md §7.2), with and without ``Code`` on the entries; counts of state
entries and transport-info writes come from the sandbox store itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, InvalidShipmentError, NotificationStatus, Shipment
from channel_core.sync import NotificationState, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, replies
from channel_oxatis.sandbox.operations import Reply
from tests.oxatis.conftest import sandbox_settings

ROOT = Path(__file__).resolve().parents[2]
LOG_SHAPES: dict[str, dict[str, Any]] = {
    "wsdl container, entries with Code": {"log_container": "wsdl", "log_entry_codes": True},
    "xsd container, entries without Code": {"log_container": "xsd", "log_entry_codes": False},
    "xsd container, entries with Code": {"log_container": "xsd", "log_entry_codes": True},
    "wsdl container, entries without Code": {"log_container": "wsdl", "log_entry_codes": False},
}


@pytest.fixture(params=list(LOG_SHAPES))
def server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(count=12, **LOG_SHAPES[request.param])) as sandbox:
        yield sandbox


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "ledger.sqlite3") as store:
        yield store


def notifier(oxatis: Channel, server: SandboxServer, db: SQLiteStore, **kwargs: Any) -> Notifier:
    return Notifier(oxatis, oxatis.connect(sandbox_settings(server)), db, **kwargs)


SHIPPED, ON_HOLD = 72802, 72805  # the sandbox's SST-SHIPPED and on_hold states


def test_eight_threads_send_one_shipment_once(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    shipment = Shipment(order_id="100003", tracking_number="6A100", carrier="Colissimo")
    barrier = threading.Barrier(8, timeout=60)
    outcomes: list[NotificationStatus] = []

    def send() -> None:
        mine = notifier(oxatis, server, db)
        barrier.wait()
        outcomes.append(mine.notify(shipment).result.status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.value for o in outcomes) == ["already_sent"] * 7 + ["sent"]
    assert server.store.shipped_entries(100003) == 1
    assert server.store.transport_writes[100003] == 1


def test_a_notifier_held_up_past_its_lease_writes_nothing_once_another_took_the_order(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    shipment = Shipment(order_id="100005", tracking_number="6A500", carrier="Colissimo")
    now = datetime.now(UTC)
    held_up = notifier(oxatis, server, db, claim_clock=lambda: now)
    later = notifier(oxatis, server, db, claim_clock=lambda: now + timedelta(minutes=10))  # after held_up's lease
    reached, release, first = threading.Event(), threading.Event(), [True]

    def hold_the_first_call(method: str) -> None:  # held_up's last read before it writes
        if first[0] and method == "GetOrderProgressStateLogs":
            first[0] = False
            reached.set()
            release.wait(timeout=60)

    server.on_request = hold_the_first_call
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(held_up.notify(shipment)))
    thread.start()
    assert reached.wait(timeout=60)
    assert later.notify(shipment).result.status is NotificationStatus.SENT  # took the expired claim over
    release.set()  # held_up reads a state from before the takeover, then reaches its first write
    thread.join(timeout=60)
    assert server.store.shipped_entries(100005) == 1 and server.store.transport_writes[100005] == 1
    assert outcome and outcome[0].from_ledger  # it reports what the notifier that took over recorded
    assert {r.status for r in db.notifications()} == {"sent"}


def test_a_repeat_reads_the_store_and_writes_nothing(oxatis: Channel, server: SandboxServer, tmp_path: Path) -> None:
    """The guard reads both log shapes: a second ledger (another host) finds the shipment in the store."""
    shipment = Shipment(order_id="100004", tracking_number="6A101", carrier="Colissimo")
    with SQLiteStore(tmp_path / "a.sqlite3") as first, SQLiteStore(tmp_path / "b.sqlite3") as second:
        assert notifier(oxatis, server, first).notify(shipment).result.status is NotificationStatus.SENT
        again = notifier(oxatis, server, second).notify(shipment)
    assert again.result.status is NotificationStatus.ALREADY_SENT and not again.from_ledger
    assert server.store.shipped_entries(100004) == 1 and server.store.transport_writes[100004] == 1


def test_shipped_again_after_a_hold_moves_the_order_back_to_shipped(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    first = Shipment(order_id="100005", tracking_number="6A102", carrier="Colissimo")
    assert notifier(oxatis, server, db).notify(first).result.status is NotificationStatus.SENT
    server.store.add_progress_state(
        100005, code="on_hold", state_id=None, when=datetime(2026, 11, 2, 9, 0), comment=None, publish=False,
        update_order=True,
    )  # fmt: skip
    held = server.store.order(100005)
    assert held is not None and held["ProgressStateID"] == ON_HOLD
    second = Shipment(order_id="100005", tracking_number="6A103", carrier="Colissimo")
    outcome = notifier(oxatis, server, db).notify(second)
    assert outcome.result.status is NotificationStatus.SENT and "status" in outcome.result.fields_sent
    order = server.store.order(100005)
    assert order is not None and order["ProgressStateID"] == SHIPPED and order["TrackingNumber"] == "6A103"


def test_a_corrected_carrier_or_url_is_sent(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    sent = Shipment(order_id="100006", tracking_number="6A104", carrier="Colissimo")
    assert notifier(oxatis, server, db).notify(sent).result.status is NotificationStatus.SENT
    corrected = Shipment(
        order_id="100006", tracking_number="6A104", carrier="Chronopost", tracking_url="https://t.example/6A104"
    )
    outcome = notifier(oxatis, server, db).notify(corrected)
    assert outcome.result.status is NotificationStatus.SENT
    assert outcome.result.fields_sent == ("tracking_number", "carrier", "tracking_url")
    order = server.store.order(100006)
    assert order is not None and order["TransportName"] == "Chronopost"
    assert order["TrackingUrl"] == "https://t.example/6A104"
    assert server.store.shipped_entries(100006) == 1  # the state was already right: no second entry


def test_an_unrecognised_log_reply_keeps_the_notification_pending(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    """A read that guards a write fails closed: an unknown shape is an error, never "no entries"."""

    def odd_logs(method: str) -> None:
        if method == "GetOrderProgressStateLogs":
            raise Reply(
                replies.envelope("<ProgressStateLogs><Entry><Code>SST-SHIPPED</Code></Entry></ProgressStateLogs>")
            )

    server.on_request = odd_logs
    shipment = Shipment(order_id="100007", tracking_number="6A105", carrier="Colissimo")
    outcome = notifier(oxatis, server, db).notify(shipment)
    assert outcome.pending and outcome.result.status is NotificationStatus.FAILED
    assert "Data/OrderProgressStateLogs" in (outcome.result.message or "")
    assert server.store.transport_writes[100007] == 0 and server.store.shipped_entries(100007) == 0
    server.on_request = None
    retried = notifier(oxatis, server, db).retry_pending()
    assert [o.result.status for o in retried] == [NotificationStatus.SENT]


def test_a_malformed_reply_does_not_stop_the_other_retries(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    entries = sum(server.store.shipped_entries(oxid) for oxid in (100008, 100009))
    server.add_fault("malformed", times=-1, methods=frozenset({"OrderGet"}))
    sender = notifier(oxatis, server, db)
    for oxid in (100008, 100009):
        assert sender.notify(Shipment(order_id=str(oxid), tracking_number=f"6A{oxid}", carrier="DPD")).pending
    server.clear_faults()
    server.add_fault("malformed", times=1, methods=frozenset({"OrderGet"}))  # the first retry meets it again
    outcomes = notifier(oxatis, server, db).retry_pending()
    assert sorted(o.result.status.value for o in outcomes) == ["failed", "sent"]
    assert sum(server.store.transport_writes[oxid] for oxid in (100008, 100009)) == 1
    assert sum(server.store.shipped_entries(oxid) for oxid in (100008, 100009)) - entries <= 1


def test_failed_notifications_back_off_then_park_and_the_operator_decides(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    now = [datetime.now(UTC)]
    sender = notifier(oxatis, server, db, clock=lambda: now[0])
    unknown = Shipment(order_id="999999", tracking_number="6A999", carrier="DPD")
    first = sender.notify(unknown)
    assert first.result.status is NotificationStatus.FAILED and "not found" in (first.result.message or "")
    attempts = [1]
    for _ in range(8):
        now[0] += timedelta(hours=7)  # past every backoff
        attempts.append(len(sender.retry_pending()))
    assert attempts == [1, 1, 1, 1, 1, 0, 0, 0, 0]  # five attempts, then parked
    (record,) = db.notifications([NotificationState.PARKED])
    assert record.attempts == 5 and "parked after 5 attempts" in (record.message or "")
    now[0] += timedelta(minutes=1)
    assert sender.retry_pending() == []


def test_a_due_time_is_kept_between_attempts(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    now = datetime.now(UTC)
    sender = notifier(oxatis, server, db, clock=lambda: now)
    sender.notify(Shipment(order_id="999998", tracking_number="6A998", carrier="DPD"))
    assert len(sender.retry_pending()) == 1  # the first retry is due at the next run
    assert sender.retry_pending() == []  # the second waits two minutes


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tracking_number", "   ", "tracking_number must not be blank"),
        ("carrier", "", "carrier must not be blank"),
        ("tracking_url", " ", "tracking_url must be a URL or None"),
    ],
)
def test_blank_fields_are_refused_by_the_model(field: str, value: str, message: str) -> None:
    fields: dict[str, Any] = {"order_id": "1", "tracking_number": "6A1", "carrier": "DPD", field: value}
    with pytest.raises(ValueError, match=message):
        Shipment(**fields)


def test_fields_longer_than_oxatis_accepts_are_refused_before_any_call(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    too_long = Shipment(order_id="100010", tracking_number="6A" + "9" * 31, carrier="C" * 31)
    calls = sum(server.calls.values())
    with pytest.raises(InvalidShipmentError) as info:
        notifier(oxatis, server, db).notify(too_long)
    assert "tracking_number is 33 characters, the channel accepts at most 32" in str(info.value)
    assert "carrier is 31 characters, the channel accepts at most 30" in str(info.value)
    assert sum(server.calls.values()) == calls + 2  # the connect only (states, account)
    assert db.notifications() == []


def test_a_sent_shipment_shows_on_the_stored_order(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    from channel_core.sync import Importer

    connection = oxatis.connect(sandbox_settings(server))
    Importer(oxatis, connection, db).run()
    before = db.get_order("oxatis", "100011")
    assert before is not None and before.order.status.value != "shipped"
    Notifier(oxatis, connection, db).notify(Shipment(order_id="100011", tracking_number="6A111", carrier="DPD"))
    after = db.get_order("oxatis", "100011")
    assert after is not None and after.order.status.value == "shipped"
    assert db.latest_shipments("oxatis")[("oxatis", connection.account_id, "100011")].tracking_number == "6A111"


SCRIPT = """
import sys, threading
from channel_core import Channels, Shipment
from channel_core.sync import Notifier, SQLiteStore
url, db_path, token = sys.argv[1], sys.argv[2], sys.argv[3]
oxatis = Channels.discover()["oxatis"]
settings = {"token": token, "base_url": url, "store_timezone": "Europe/Paris", "retry_backoff": 0.0}
def work():
    with SQLiteStore(db_path) as store:
        notifier = Notifier(oxatis, oxatis.connect(settings), store)
        for oxid in range(100001, 100013):
            # force: 100012 is cancelled in the store, and this test is about concurrency, not cancellation
            notifier.notify(Shipment(order_id=str(oxid), tracking_number=f"6B{oxid}", carrier="Colissimo", force=True))
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


@pytest.mark.parametrize("server", ["wsdl container, entries with Code"], indirect=True)
def test_two_processes_and_eight_threads_write_each_shipment_once(server: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    SQLiteStore(db).close()  # the schema exists before the processes race
    args = [sys.executable, "-c", textwrap.dedent(SCRIPT), server.url, str(db), server.config.token]
    processes = [subprocess.Popen(args, cwd=ROOT) for _ in range(2)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    for oxid in range(100001, 100013):
        assert server.store.shipped_entries(oxid) == 1, oxid
        assert server.store.transport_writes[oxid] == 1, oxid
    with SQLiteStore(db) as store:
        assert {r.status for r in store.notifications()} == {"sent"}


# --- third correctness pass (issue 20); each reproduced by ../shared/repro/turn3 -------------------------------


ONE_SHAPE = pytest.mark.parametrize("server", ["wsdl container, entries with Code"], indirect=True)


@ONE_SHAPE
def test_a_newer_shipment_supersedes_an_older_pending_one(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    """n1: the older pending shipment was retried after the correction and wrote the old tracking back."""
    now = [datetime.now(UTC)]
    sender = notifier(oxatis, server, db, clock=lambda: now[0])
    server.add_fault("quota", times=1, methods={"OrderGet"})
    old = sender.notify(Shipment(order_id="100002", tracking_number="OLD-111", carrier="Colissimo"))
    assert old.pending and old.result.status is NotificationStatus.FAILED
    new = sender.notify(Shipment(order_id="100002", tracking_number="NEW-222", carrier="Colissimo"))
    assert new.result.status is NotificationStatus.SENT
    now[0] += timedelta(minutes=1)
    assert sender.retry_pending() == []  # the old one is cancelled, not due
    assert server.store.order(100002)["TrackingNumber"] == "NEW-222"  # type: ignore[index]
    assert server.store.transport_writes[100002] == 1
    (cancelled,) = db.notifications([NotificationState.CANCELLED])
    assert cancelled.shipment.tracking_number == "OLD-111"
    assert "superseded by a newer shipment" in (cancelled.message or "") and "NEW-222" in (cancelled.message or "")
    again = sender.notify(Shipment(order_id="100002", tracking_number="OLD-111", carrier="Colissimo"))
    assert again.from_ledger and "superseded" in (again.result.message or "")
    assert server.store.transport_writes[100002] == 1


@ONE_SHAPE
def test_an_older_shipment_never_overwrites_a_newer_one_already_sent(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    """The read-before-write never writes a value older than what the ledger sent: the older entry loses."""
    sender = notifier(oxatis, server, db)
    server.add_fault("quota", times=1, methods={"OrderGet"})
    sender.notify(Shipment(order_id="100003", tracking_number="A-1", carrier="DPD"))  # pending
    server.add_fault("quota", times=1, methods={"OrderGet"})
    sender.notify(Shipment(order_id="100003", tracking_number="B-2", carrier="DPD"))  # pending, newer
    for record in db.notifications():  # both due; the older comes first in the ledger
        sender.notify(record.shipment)
    assert server.store.order(100003)["TrackingNumber"] == "B-2"  # type: ignore[index]
    assert server.store.transport_writes[100003] == 1
    statuses = {r.shipment.tracking_number: r.status for r in db.notifications()}
    assert statuses == {"A-1": "cancelled", "B-2": "sent"}


@ONE_SHAPE
def test_a_spent_quota_is_not_an_attempt_and_parks_nothing(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    """n2: five quota days parked a shipment the store never refused."""
    now = [datetime.now(UTC)]
    sender = notifier(oxatis, server, db, clock=lambda: now[0])
    server.add_fault("quota", times=-1)
    first = sender.notify(Shipment(order_id="100004", tracking_number="Q-1", carrier="DPD"))
    assert first.stopped == "quota" and first.pending
    for _ in range(8):
        now[0] += timedelta(days=1)
        outcomes = sender.retry_pending()
        assert [o.stopped for o in outcomes] == ["quota"]
    (record,) = db.notifications()
    assert (record.status, record.attempts) == ("pending", 0)
    server.clear_faults()
    now[0] += timedelta(days=1)
    assert [o.result.status for o in sender.retry_pending()] == [NotificationStatus.SENT]
    assert server.store.shipped_entries(100004) == 1


@ONE_SHAPE
def test_retry_pending_stops_at_the_first_quota_stop(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    sender = notifier(oxatis, server, db)
    server.add_fault("quota", times=-1, methods={"OrderGet"})
    for oxid in (100005, 100006, 100007):
        sender.notify(Shipment(order_id=str(oxid), tracking_number=f"Q{oxid}", carrier="DPD"))
    calls = server.calls["OrderGet"]
    assert len(sender.retry_pending()) == 1
    assert server.calls["OrderGet"] == calls + 1


@ONE_SHAPE
def test_a_refusal_still_counts_and_parks(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    now = [datetime.now(UTC)]
    sender = notifier(oxatis, server, db, clock=lambda: now[0], max_attempts=2)
    server.on_request = lambda method: (
        (_ for _ in ()).throw(Reply(replies.envelope("<OxID>-1</OxID>", status=500, details="refused")))
        if method == "OrderUpdateTransportInfo"
        else None
    )
    sender.notify(Shipment(order_id="100008", tracking_number="R-1", carrier="DPD"))
    now[0] += timedelta(days=1)
    sender.retry_pending()
    (record,) = db.notifications()
    assert (record.status, record.attempts) == ("parked", 2)


@ONE_SHAPE
def test_shipping_a_cancelled_order_is_refused_unless_forced(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore
) -> None:
    """Finding 5: the store shows order 100012 cancelled; nothing is written without --force."""
    sender = notifier(oxatis, server, db)
    shipment = Shipment(order_id="100012", tracking_number="C-1", carrier="DPD")
    with pytest.raises(InvalidShipmentError, match="cancelled in the store"):
        sender.notify(shipment)
    assert server.store.transport_writes[100012] == 0 and server.store.shipped_entries(100012) == 0
    (record,) = db.notifications()
    assert record.status == "parked" and "cancelled" in (record.message or "")
    forced = sender.notify(Shipment(order_id="100012", tracking_number="C-1", carrier="DPD", force=True))
    assert forced.result.status is NotificationStatus.SENT
    assert server.store.shipped_entries(100012) == 1


@ONE_SHAPE
def test_after_a_notification_the_stored_status_is_what_a_fresh_import_says(
    oxatis: Channel, server: SandboxServer, db: SQLiteStore, tmp_path: Path
) -> None:
    """n7: ALREADY_SENT decided from the state log marked a cancelled order shipped, for good."""
    from channel_core.sync import Importer

    store = server.store
    store.modify(100004, {"ProgressStateID": None, "PaymentStatusCode": 0, "Shipped": False,
                          "TrackingNumber": "TRK4", "TransportName": "Colissimo"})  # fmt: skip
    store.add_progress_state(
        100004, code="SST-SHIPPED", state_id=None, when=store.now(), comment=None, publish=False, update_order=False
    )
    connection = oxatis.connect(sandbox_settings(server))
    Importer(oxatis, connection, db).run()
    out = Notifier(oxatis, connection, db).notify(
        Shipment(order_id="100004", tracking_number="TRK4", carrier="Colissimo")
    )
    assert out.result.status is NotificationStatus.ALREADY_SENT
    sent = Notifier(oxatis, connection, db).notify(Shipment(order_id="100003", tracking_number="T3", carrier="DPD"))
    assert sent.result.status is NotificationStatus.SENT
    with SQLiteStore(tmp_path / "fresh.sqlite3") as fresh:
        Importer(oxatis, oxatis.connect(sandbox_settings(server)), fresh).run()
        for oxid in ("100003", "100004"):
            mine, truth = db.get_order("oxatis", oxid), fresh.get_order("oxatis", oxid)
            assert mine is not None and truth is not None
            assert mine.order.status == truth.order.status, oxid


@ONE_SHAPE
def test_the_write_guard_runs_after_the_budget_wait(oxatis: Channel, server: SandboxServer, db: SQLiteStore) -> None:
    """n3: a write that waited on a busy shared budget past its lease went out after another notifier took over."""
    from channel_core.http import run_scope

    shipment = Shipment(order_id="100003", tracking_number="TRK9", carrier="Colissimo")
    server.store.set_transport(100003, tracking_number="TRK9", tracking_url=None, transport_name="Colissimo")
    now = [datetime.now(UTC)]
    other: list[Any] = []

    class BusyBudget:  # the held-up notifier's first write waits; meanwhile another takes the order over
        def __init__(self) -> None:
            self.calls = 0

        def settle(self, reserved: float, measured: object) -> None:
            pass

        def acquire(self, cost: float = 1.0) -> float:
            self.calls += 1
            if self.calls == 5:  # connect (states, account), OrderGet, logs, then the write's slot
                now[0] += timedelta(minutes=10)  # its lease runs out while it waits
                other.append(notifier(oxatis, server, db, claim_clock=lambda: now[0]).notify(shipment))
            return 0.0

    with run_scope(budget=BusyBudget()):
        connection = oxatis.connect(sandbox_settings(server))
    held = Notifier(oxatis, connection, db, claim_clock=lambda: now[0]).notify(shipment)
    assert other and other[0].result.status is NotificationStatus.SENT
    assert held.from_ledger and held.result.status is NotificationStatus.ALREADY_SENT
    assert server.store.shipped_entries(100003) == 1
