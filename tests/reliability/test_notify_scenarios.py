"""Notification scenarios, each a row of the reliability report, counted from the sandbox store itself.

For every shipment: was it attempted, did the store end up showing it (state and transport info), how
many shipped-state entries and transport-info writes the store holds (a duplicate is any beyond one),
and is it lost (the store does not show it once every notifier is done and due retries have run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, NotificationStatus, Shipment
from channel_core.sync import Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, replies
from channel_oxatis.sandbox.operations import Reply
from tests.oxatis.conftest import sandbox_settings
from tests.reliability.conftest import Report

SHIPPED = 72802
ORDERS = [100001 + n for n in range(8)]


def shipments(tag: str) -> list[Shipment]:
    return [Shipment(order_id=str(oxid), tracking_number=f"6A{tag}{oxid}", carrier="Colissimo") for oxid in ORDERS]


def count(server: SandboxServer, before: dict[int, int], batch: list[Shipment]) -> tuple[int, int, int]:
    """(shown, duplicates, lost) for ``batch``, counted from the sandbox store."""
    shown = duplicates = lost = 0
    for shipment in batch:
        oxid = int(shipment.order_id)
        order = server.store.order(oxid)
        assert order is not None
        ok = order.get("ProgressStateID") == SHIPPED and order.get("TrackingNumber") == shipment.tracking_number
        shown += ok
        lost += not ok
        new_entries = server.store.shipped_entries(oxid) - before[oxid]
        duplicates += max(0, new_entries - 1) + max(0, server.store.transport_writes[oxid] - 1)
    return shown, duplicates, lost


def concurrent(oxatis: Channel, server: SandboxServer, db: Path, batch: list[Shipment]) -> None:
    barrier = threading.Barrier(8, timeout=60)  # a worker that failed to start breaks it: an error, not a hang
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with SQLiteStore(db) as store:  # eight connections opening one new file at once
                notifier = Notifier(oxatis, oxatis.connect(sandbox_settings(server)), store)
                barrier.wait()
                for shipment in batch:
                    notifier.notify(shipment)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def with_faults(kind: str, **fault: Any) -> Callable[[Channel, SandboxServer, Path, list[Shipment]], None]:
    def run(oxatis: Channel, server: SandboxServer, db: Path, batch: list[Shipment]) -> None:
        now = [datetime.now(UTC)]
        with SQLiteStore(db) as store:
            notifier = Notifier(
                oxatis, oxatis.connect(sandbox_settings(server, timeout=0.3)), store, clock=lambda: now[0]
            )
            server.add_fault(kind, times=3, **fault)  # after connecting: the notifications meet the faults
            for shipment in batch:
                notifier.notify(shipment)
            server.clear_faults()
            for _ in range(3):
                now[0] += timedelta(hours=1)
                notifier.retry_pending()

    return run


def odd_log_replies(oxatis: Channel, server: SandboxServer, db: Path, batch: list[Shipment]) -> None:
    calls = {"n": 0}

    def answer(method: str) -> None:
        if method == "GetOrderProgressStateLogs" and calls["n"] < 4:
            calls["n"] += 1
            raise Reply(replies.envelope("<Logs><Entry/></Logs>"))

    server.on_request = answer
    with_faults("slow", delay=0.0)(oxatis, server, db, batch)
    server.on_request = None


def reship_after_hold(oxatis: Channel, server: SandboxServer, db: Path, batch: list[Shipment]) -> dict[int, int]:
    with SQLiteStore(db) as store:
        notifier = Notifier(oxatis, oxatis.connect(sandbox_settings(server)), store)
        for shipment in shipments("old"):
            notifier.notify(shipment)
        for oxid in ORDERS:
            server.store.add_progress_state(
                oxid, code="on_hold", state_id=None, when=datetime(2026, 11, 2, 9, 0), comment=None, publish=False,
                update_order=True,
            )  # fmt: skip
            server.store.transport_writes[oxid] = 0  # count the re-shipment's writes only
        baseline = {oxid: server.store.shipped_entries(oxid) for oxid in ORDERS}
        for shipment in batch:
            notifier.notify(shipment)
    return baseline  # the re-shipment's entries are counted from here


def carrier_correction(oxatis: Channel, server: SandboxServer, db: Path, batch: list[Shipment]) -> None:
    with SQLiteStore(db) as store:
        notifier = Notifier(oxatis, oxatis.connect(sandbox_settings(server)), store)
        for shipment in batch:
            notifier.notify(
                Shipment(order_id=shipment.order_id, tracking_number=shipment.tracking_number, carrier="DPD")
            )
        for oxid in ORDERS:
            server.store.transport_writes[oxid] = 0
        for shipment in batch:
            notifier.notify(shipment)
    for shipment in batch:
        order = server.store.order(int(shipment.order_id))
        assert order is not None and order["TransportName"] == "Colissimo"


SCENARIOS: dict[str, tuple[Callable[..., dict[int, int] | None], dict[str, Any]]] = {
    "8 threads notifying the same shipments": (concurrent, {}),
    "timeouts after the write": (with_faults("slow_after_apply", delay=0.6), {}),
    "connection resets": (with_faults("reset"), {}),
    "malformed replies": (with_faults("malformed"), {}),
    "log replies in the XSD container, no Code": (concurrent, {"log_container": "xsd", "log_entry_codes": False}),
    "an unrecognised log reply (fails closed)": (odd_log_replies, {}),
    "shipped again after a hold": (reship_after_hold, {}),
    "carrier corrected": (carrier_correction, {}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_notification_scenario_sends_each_shipment_once(
    name: str, oxatis: Channel, tmp_path: Path, report: Report
) -> None:
    scenario, switches = SCENARIOS[name]
    batch = shipments("x")
    with SandboxServer(SandboxConfig(count=12, **switches)) as server:
        before = {oxid: server.store.shipped_entries(oxid) for oxid in ORDERS}
        baseline = scenario(oxatis, server, tmp_path / "ledger.sqlite3", batch) or before
        shown, duplicates, lost = count(server, baseline, batch)
    report.notifications(name, attempted=len(batch), sent=shown, duplicates=duplicates, lost=lost)
    assert (shown, duplicates, lost) == (len(batch), 0, 0), name
    with SQLiteStore(tmp_path / "ledger.sqlite3") as store:
        statuses = {r.status for r in store.notifications() if r.shipment in batch}
    assert statuses <= {NotificationStatus.SENT.value, NotificationStatus.ALREADY_SENT.value}, statuses
