"""A seeded model check of the fleet: workers killed and frozen at random while merchants edit and ship.

For each seed, 2-3 `channel worker` processes sync 6 sandbox stores. A random schedule of events
runs meanwhile:
* a merchant edits orders;
* a shipment is queued, sometimes again, sometimes corrected (a new tracking number for the same parcel);
* a worker is killed with SIGKILL and replaced;
* a worker is frozen for a few seconds (SIGSTOP, then SIGCONT), so that it wakes up as a zombie;
* a store's daily quota runs out (a quota day), and comes back the next "day";
* a store's shared rate budget is booked seconds ahead, longer than a request may wait;
* a worker starts with another merchant's token for a store (an operator's mistake).

Once the events stop and the store is quiet, every store must equal its sandbox by content. Every
order shipped must hold its newest tracking number, with exactly one shipped state; every older version
is sent or cancelled as superseded, none is parked; no store received a write for another store's
shipment; every store keeps the account it first synced; and every job must have ended. A failing run names
its seed and its events; ``CHANNEL_FLEET_SEEDS=N`` (or ``FIRST-LAST``) runs more.

The per-second rate is not checked here: a process frozen between taking its slot and writing the
request sends it late, which no client-side budget can undo. `test_workers.py` checks the rate.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, Shipment
from channel_oxatis.sandbox import data
from tests.fleet.harness import Fleet, fleet, wait_for
from tests.sync.postgres import fresh_database
from tests.sync.simulation import account_mismatches

STORES, ORDERS = 6, 60
_first, _, _last = os.environ.get("CHANNEL_FLEET_SEEDS", "3").rpartition("-")  # "N" or "FIRST-LAST"
SEEDS = range(int(_first), int(_last) + 1) if _first else range(int(_last))
WORKER = (
    "--concurrency",
    "2",
    "--tick",
    "1s",
    "--stalled-after",
    "2",
    "--claim-lease",
    "5s",
    "--http-timeout",
    "0.8",
    "--budget-wait",
    "0.5",
)


class Chaos:
    """The random schedule of one seed, played against a running fleet."""

    def __init__(self, state: Fleet, seed: int, logs: Path) -> None:
        self.state, self.rng, self.logs = state, random.Random(seed), logs
        self.live: list[subprocess.Popen[bytes]] = []
        self.impostors: list[subprocess.Popen[bytes]] = []
        self.frozen: list[threading.Timer] = []
        self.shipments: dict[tuple[str, str], list[Shipment]] = {}  # every version, oldest first
        self.events: list[str] = []
        self.quota_days: set[str] = set()
        self.new_day = False
        self._started = 0

    def start_worker(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self._started += 1
        log = self.logs / f"worker-{self._started}.log"
        process = self.state.start_worker(log, *WORKER, env=env)
        (self.live if env is None else self.impostors).append(process)
        return process

    def _enqueue(self, app: object, key: str, shipment: Shipment) -> None:
        from channel_core.fleet.engine import enqueue_shipment

        enqueue_shipment(app, key, shipment)

    def step(self, app: object) -> None:
        rng, state = self.rng, self.state
        kinds = ["edit", "ship", "reship", "correct", "kill", "freeze", "quota", "budget", "impostor"]
        kind = rng.choices(kinds, weights=[4, 3, 1, 2, 1, 1, 1, 1, 1])[0]
        key = rng.choice(state.keys)
        if kind in ("reship", "correct") and not self.shipments:
            kind = "ship"
        if kind == "edit":
            store = state.server.tenant(state.tokens[key])
            for _ in range(rng.randint(1, 5)):
                oxid = data.order_id_for(rng.randint(1, ORDERS))
                store.modify(oxid, {"ShippingCity": rng.choice(["Lyon", "Brest", "Nice"]), "InternalNote": kind})
        elif kind == "ship":
            order = str(data.order_id_for(rng.randint(1, ORDERS)))
            versions = self.shipments.setdefault((key, order), [])
            if not versions:  # force: some generated orders are cancelled; this check is about delivery
                versions.append(Shipment(order_id=order, tracking_number=f"6A{len(self.shipments):05d}",
                                         carrier="DPD", force=True))  # fmt: skip
            self._enqueue(app, key, versions[-1])
        elif kind == "reship":  # the host repeats a shipment it already queued (any version)
            (key, _), versions = rng.choice(sorted(self.shipments.items()))
            self._enqueue(app, key, rng.choice(versions))
        elif kind == "correct":  # the warehouse corrects the parcel's tracking number: the newest must win
            (key, order), versions = rng.choice(sorted(self.shipments.items()))
            corrected = Shipment(order_id=order, tracking_number=f"{versions[-1].tracking_number}-C{len(versions)}",
                                 carrier=rng.choice(["DPD", "Colissimo"]), force=True)  # fmt: skip
            versions.append(corrected)
            self._enqueue(app, key, corrected)
        elif kind == "kill":
            victim = self.live.pop(rng.randrange(len(self.live)))
            victim.send_signal(signal.SIGCONT)  # a frozen one too: SIGKILL works on it, CONT keeps this simple
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            self.start_worker()
        elif kind == "freeze":
            victim = rng.choice(self.live)
            os.kill(victim.pid, signal.SIGSTOP)
            wake = threading.Timer(rng.uniform(2.5, 5.0), lambda: victim.send_signal(signal.SIGCONT))
            wake.start()
            self.frozen.append(wake)
        elif kind == "quota":  # the day's calls run out for one store, until "tomorrow" (settle)
            state.server.set_quota(state.tokens[key], rng.randint(0, 10))
            self.quota_days.add(key)
        elif kind == "budget":  # every store's shared budget is booked further ahead than a request may wait
            state.query("UPDATE rate_budgets SET next_slot = clock_timestamp() + interval '3 seconds' RETURNING 1")
        else:  # a worker started with another merchant's token under this store's variable
            other = rng.choice([k for k in state.keys if k != key])
            env = {f"{key.upper().replace('-', '_')}_TOKEN": state.tokens[other]}
            self.start_worker(env=env)
            kind = f"impostor({key}<-{other})"
        self.events.append(kind)

    def supervise(self) -> None:
        """Start a worker again when one exits, as systemd would: a frozen worker whose jobs were taken
        over exits when it wakes up (its heartbeat row is gone)."""
        for process in [p for p in self.live if p.poll() is not None]:
            self.live.remove(process)
            self.events.append(f"exited({process.returncode})")
            self.start_worker()
        if self.new_day:  # the operator lifts quota parking (`channel stores run KEY`), also for a sync that
            self.lift_parking()  # was still in flight when the day turned and parked its store again

    def lift_parking(self) -> None:
        from channel_core.fleet.registry import StoreRegistry
        from channel_core.sync.postgres import PostgresStore

        with PostgresStore(self.state.dsn) as db:
            registry = StoreRegistry(db)
            # every store: an impostor's sync with another store's token met that store's quota and parked
            # this one (the quota stop comes before the account can be told); the operator lifts it too
            for key in self.state.keys:
                store = registry.get(key)
                if store is not None and store.parked_until is not None:
                    registry.run_now(key)

    def settle(self) -> None:
        """The chaos ends: frozen workers wake, impostors are stopped, a new day resets every quota."""
        for timer in self.frozen:
            timer.cancel()
        for process in self.live:
            process.send_signal(signal.SIGCONT)
        for process in self.impostors:
            process.send_signal(signal.SIGTERM)
        for process in self.impostors:
            process.wait(timeout=60)
        for key in self.quota_days:
            self.state.server.set_quota(self.state.tokens[key], None)
        self.new_day = bool(self.quota_days)
        self.lift_parking()


@pytest.mark.parametrize("seed", SEEDS)
def test_workers_killed_and_frozen_at_random_leave_every_store_right(
    oxatis: Channel, seed: int, tmp_path: Path
) -> None:
    from channel_core.fleet.engine import NOTIFY_TASK, make_app
    from channel_core.sync.postgres import PostgresStore

    with fresh_database("model") as dsn, fleet(dsn, stores=STORES, orders=ORDERS, latency=0.005) as state:
        state.register(oxatis, every=timedelta(seconds=1), rate=60.0)
        chaos = Chaos(state, seed, tmp_path)
        for _ in range(chaos.rng.choice([2, 3])):
            chaos.start_worker()
        wait_for(lambda: len(state.query("SELECT 1 FROM stores WHERE account_id IS NOT NULL")) == STORES,
                 timeout=120, what="every store's first sync (its account pinned)", workers=chaos.live)  # fmt: skip
        state.workers = chaos.live  # stopped at the end, whoever is alive then
        app = make_app(dsn, schedule=None)
        with app.open():
            for _ in range(14):
                chaos.supervise()
                chaos.step(app)
                threading.Event().wait(chaos.rng.uniform(0.2, 1.0))
        chaos.settle()
        context = f"seed {seed}: {' '.join(chaos.events)}"

        def jobs_done() -> bool:
            chaos.supervise()
            rows = state.query(
                "SELECT status, count(*) FROM procrastinate_jobs WHERE task_name=%s GROUP BY 1", [NOTIFY_TASK]
            )
            return set(dict(rows)) <= {"succeeded", "failed"}

        newest = {(key, versions[-1].tracking_number) for (key, _), versions in chaos.shipments.items()}
        versions_queued = sum(len(v) for v in chaos.shipments.values())

        ledger: list[tuple[Any, ...]] = []

        def notified() -> bool:  # every version in the ledger; the newest of each order done, none left waiting
            chaos.supervise()
            rows = state.query(
                "SELECT s.store_key, n.shipment->>'tracking_number', n.status, n.attempts, n.message "
                "FROM notifications n JOIN stores s ON s.channel = n.channel AND s.account_id = n.account_id"
            )
            ledger[:] = rows
            done = {(r[0], r[1]) for r in rows if r[2] in ("sent", "already_sent")}
            waiting = [r for r in rows if r[2] not in ("sent", "already_sent", "cancelled")]
            if waiting:  # a quota day or a booked budget left them pending: the next syncs retry them
                return False
            return len(rows) == versions_queued and newest <= done

        wait_for(jobs_done, timeout=240, what=f"the shipment jobs ({context})", workers=())
        try:
            wait_for(notified, timeout=240, what=f"every shipment in the ledger ({context})", workers=())
        except AssertionError as exc:
            raise AssertionError(f"{exc}; ledger {ledger}; newest {sorted(newest)}") from None
        (settled,) = state.query("SELECT now()")[0]

        def synced_twice() -> bool:
            chaos.supervise()
            rows = state.query(
                "SELECT store_key, count(*) FILTER (WHERE stopped IS NULL) FROM sync_runs WHERE finished_at > %s "
                "GROUP BY 1",
                [settled],
            )
            return len(rows) == STORES and all(count >= 2 for _, count in rows)

        try:
            wait_for(synced_twice, timeout=240, what=f"two quiet syncs of every store ({context})", workers=())
        except AssertionError as exc:
            stores = state.query("SELECT store_key, account_id, next_run, parked_until, parked_reason FROM stores")
            runs = state.query(
                "SELECT DISTINCT ON (store_key) store_key, stopped, summary->>'stop_error' FROM sync_runs "
                "ORDER BY store_key, finished_at DESC"
            )
            raise AssertionError(f"{exc}; stores {stores}; last runs {runs}") from None
        state.stop_workers()
        state.server.config.latency = 0.0

        shipped_by_store: dict[str, set[int]] = {key: set() for key in state.keys}
        for (key, order), versions in chaos.shipments.items():
            store = state.server.tenant(state.tokens[key])
            oxid = int(order)
            shipped_by_store[key].add(oxid)
            current = store.order(oxid)
            assert current is not None
            assert current["TrackingNumber"] == versions[-1].tracking_number, (context, key, versions)
            assert store.shipped_entries(oxid) == 1, (context, key, versions)
            assert 1 <= store.transport_writes[oxid] <= len(versions), (context, key, versions)
        for key in state.keys:  # nothing was written into a store for another store's shipment
            writes = {oxid for oxid, n in state.server.tenant(state.tokens[key]).transport_writes.items() if n}
            assert writes <= shipped_by_store[key], (context, key, writes - shipped_by_store[key])
        accounts = dict(state.query("SELECT store_key, account_id FROM stores"))
        assert len(set(accounts.values())) == STORES, (context, accounts)  # each store kept its own account
        for key in state.keys:
            number = state.server.tenant(state.tokens[key]).account_id
            assert accounts[key].endswith(f"/account-{number}"), (context, key, accounts[key])
        with PostgresStore(dsn) as db:
            for key in state.keys:
                wrong, importable = account_mismatches(oxatis, state.settings(key), db, ORDERS)
                assert wrong == [] and importable > 0, (context, key, wrong)
