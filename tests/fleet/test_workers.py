"""Two `channel worker` processes, 20 sandbox stores of 200 orders at 50 ms, syncs and shipments at once.

What is checked comes from the sandbox's request log and its stores, by content:
every store's orders in PostgreSQL equal its sandbox; no two syncs of one store overlapped;
no store received more requests in any second than its budget allows, counting both workers;
each of 100 shipments (queued twice) left exactly one shipped state and one transport write.
Merchants edit their orders (seeded) while the first syncs and the shipments run.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from channel_core import Channel, Shipment
from channel_oxatis.sandbox import data
from tests.fleet.harness import Fleet, busiest_second, fleet, overlapping_runs, runs_by_token, wait_for
from tests.sync.postgres import fresh_database
from tests.sync.simulation import account_mismatches

STORES, ORDERS, LATENCY, RATE = 20, 200, 0.05, 25.0
SHIPMENTS_PER_STORE = 5  # 100 in all


@pytest.fixture
def twenty_stores() -> Iterator[Fleet]:
    with fresh_database("fleet") as dsn, fleet(dsn, stores=STORES, orders=ORDERS, latency=LATENCY) as state:
        yield state


def _shipments(state: Fleet) -> list[tuple[str, Shipment]]:
    return [
        (
            key,
            Shipment(
                order_id=str(data.order_id_for(n * 7 + 3)),
                tracking_number=f"6A{s:02d}{n:04d}",
                carrier="Colissimo",
                force=True,  # some generated orders are cancelled; this test is about delivery, not cancellation
            ),
        )
        for s, key in enumerate(state.keys)
        for n in range(SHIPMENTS_PER_STORE)
    ]


def test_two_worker_processes_sync_twenty_stores_and_notify_once(
    oxatis: Channel, twenty_stores: Fleet, tmp_path: Path
) -> None:
    from channel_core.fleet.engine import NOTIFY_TASK, enqueue_shipment, make_app

    state = twenty_stores
    state.register(oxatis, every=timedelta(seconds=2), rate=RATE)
    workers = [
        state.start_worker(tmp_path / f"worker-{n}.log", "--concurrency", "3", "--tick", "1s", verbose=True)
        for n in range(2)
    ]
    stop_edits, edits = threading.Event(), [0]

    def edit() -> None:  # merchants editing their orders while the workers read them (seeded)
        rng = random.Random(15)
        while not stop_edits.wait(0.05):
            store = state.server.tenant(state.tokens[rng.choice(state.keys)])
            oxid = data.order_id_for(rng.randint(1, ORDERS))
            store.modify(oxid, {"ShippingCity": rng.choice(["Lyon", "Brest", "Nice"]), "InternalNote": str(edits[0])})
            edits[0] += 1

    editor = threading.Thread(target=edit, name="merchant-edits", daemon=True)
    editor.start()
    shipments = _shipments(state)
    app = make_app(state.dsn, schedule=None)
    with app.open():  # while the first syncs run; each shipment twice, so both workers may race for it
        for key, shipment in shipments + shipments:
            enqueue_shipment(app, key, shipment)

    def notified() -> bool:
        rows = state.query(
            "SELECT status, count(*) FROM procrastinate_jobs WHERE task_name=%s GROUP BY 1", [NOTIFY_TASK]
        )
        return rows == []  # every notify job ended and succeeded: a succeeded job's row goes as it ends

    try:
        wait_for(notified, timeout=300, what="the shipment jobs", workers=workers)
    except AssertionError as exc:
        jobs = state.query("SELECT task_name, status, count(*) FROM procrastinate_jobs GROUP BY 1, 2")
        ledger = state.query("SELECT status, left(message, 160), count(*) FROM notifications GROUP BY 1, 2")
        raise AssertionError(f"{exc}; jobs {jobs}; ledger {ledger}") from None
    stop_edits.set()
    editor.join()
    assert edits[0] > 20  # the stores changed while they were read
    (settled,) = state.query("SELECT now()")[0]

    def synced_twice_since_notified() -> bool:
        rows = state.query(
            "SELECT store_key, count(*), bool_or(stopped IS NULL) FROM sync_runs WHERE finished_at > %s GROUP BY 1",
            [settled],
        )
        return len(rows) == STORES and all(count >= 2 and completed for _, count, completed in rows)

    wait_for(synced_twice_since_notified, timeout=300, what="two syncs of every store", workers=workers)
    state.stop_workers()
    state.server.config.latency = 0.0  # the checks below read every order back: no need to wait for them
    assert [w.returncode for w in workers] == [0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("worker-*.log")]
    log = list(state.server.requests)  # before the checks below add unlabelled requests of their own

    runs = runs_by_token(log)
    by_pid = {label.rsplit("/pid-", 1)[1] for labels in runs.values() for label in labels if "/sync-" in label}
    assert len(by_pid) == 2, by_pid  # both worker processes synced stores
    for key in state.keys:
        token = state.tokens[key]
        assert all(label.startswith(key + "/") for label in runs[token]), key  # a run only ever calls its own store
        syncs = {label: times for label, times in runs[token].items() if "/sync-" in label}
        assert len(syncs) >= 2, (key, len(syncs))
        assert overlapping_runs(syncs) == [], key
        every_request = [r.at for r in log if r.token == token]
        assert busiest_second(every_request) <= RATE, (key, busiest_second(every_request))
    unlabelled = [r for r in log if "(run " not in r.user_agent]
    assert unlabelled == []
    logs = "\n".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
    assert "http_request" in logs and "run=shop-" in logs  # -v: a line per request, labelled with its run
    stored = state.everything_stored()
    assert [t for t in state.tokens.values() if t in logs or t in stored] == []  # no secret logged or stored

    for key, shipment in shipments:
        store = state.server.tenant(state.tokens[key])
        oxid = int(shipment.order_id)
        assert (store.shipped_entries(oxid), store.transport_writes[oxid]) == (1, 1), (key, oxid)

    from channel_core.sync.postgres import PostgresStore

    with PostgresStore(state.dsn) as db:
        for key in state.keys:
            wrong, importable = account_mismatches(oxatis, state.settings(key), db, ORDERS)
            assert wrong == [] and importable > 0, (key, wrong)
        sent = db.execute("SELECT status, count(*) FROM notifications GROUP BY 1")
        assert dict(sent) == {"sent": len(shipments)}
