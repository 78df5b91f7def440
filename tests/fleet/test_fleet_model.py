"""A seeded model check of the fleet: workers killed and frozen at random while merchants edit and ship.

For each seed, 2-3 `channel worker` processes sync 6 sandbox stores. A random schedule of events
runs meanwhile:
* a merchant edits orders;
* a shipment is queued, sometimes again;
* a worker is killed with SIGKILL and replaced;
* a worker is frozen for a few seconds (SIGSTOP, then SIGCONT), so that it wakes up as a zombie.

Once the events stop and the store is quiet, every store must equal its sandbox by content. Every
shipment must have left exactly one shipped state and one transport write, and every job must have
ended. A failing run names its seed and its events; ``CHANNEL_FLEET_SEEDS=N`` (or ``FIRST-LAST``) runs more.

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
        self.frozen: list[threading.Timer] = []
        self.shipments: dict[tuple[str, str], Shipment] = {}
        self.events: list[str] = []
        self._started = 0

    def start_worker(self) -> None:
        self._started += 1
        self.live.append(self.state.start_worker(self.logs / f"worker-{self._started}.log", *WORKER))

    def step(self, app: object) -> None:
        from channel_core.fleet.engine import enqueue_shipment

        rng, state = self.rng, self.state
        kind = rng.choices(["edit", "ship", "reship", "kill", "freeze"], weights=[4, 3, 1, 1, 1])[0]
        key = rng.choice(state.keys)
        if kind == "edit":
            store = state.server.tenant(state.tokens[key])
            for _ in range(rng.randint(1, 5)):
                oxid = data.order_id_for(rng.randint(1, ORDERS))
                store.modify(oxid, {"ShippingCity": rng.choice(["Lyon", "Brest", "Nice"]), "InternalNote": kind})
        elif kind == "ship" or (kind == "reship" and not self.shipments):
            order = str(data.order_id_for(rng.randint(1, ORDERS)))
            shipment = self.shipments.setdefault(
                (key, order), Shipment(order_id=order, tracking_number=f"6A{len(self.shipments):05d}", carrier="DPD")
            )
            enqueue_shipment(app, key, shipment)
        elif kind == "reship":
            (key, _), shipment = rng.choice(sorted(self.shipments.items()))
            enqueue_shipment(app, key, shipment)
        elif kind == "kill":
            victim = self.live.pop(rng.randrange(len(self.live)))
            victim.send_signal(signal.SIGCONT)  # a frozen one too: SIGKILL works on it, CONT keeps this simple
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            self.start_worker()
        else:
            victim = rng.choice(self.live)
            os.kill(victim.pid, signal.SIGSTOP)
            wake = threading.Timer(rng.uniform(2.5, 5.0), lambda: victim.send_signal(signal.SIGCONT))
            wake.start()
            self.frozen.append(wake)
        self.events.append(kind)

    def supervise(self) -> None:
        """Start a worker again when one exits, as systemd would: a frozen worker whose jobs were taken
        over exits when it wakes up (its heartbeat row is gone)."""
        for process in [p for p in self.live if p.poll() is not None]:
            self.live.remove(process)
            self.events.append(f"exited({process.returncode})")
            self.start_worker()

    def settle(self) -> None:
        for timer in self.frozen:
            timer.cancel()
        for process in self.live:
            process.send_signal(signal.SIGCONT)


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

        def notified() -> bool:
            chaos.supervise()
            rows = state.query("SELECT status FROM notifications")
            return len(rows) == len(chaos.shipments) and {r[0] for r in rows} <= {"sent", "already_sent"}

        wait_for(jobs_done, timeout=240, what=f"the shipment jobs ({context})", workers=())
        wait_for(notified, timeout=240, what=f"every shipment in the ledger ({context})", workers=())
        (settled,) = state.query("SELECT now()")[0]

        def synced_twice() -> bool:
            chaos.supervise()
            rows = state.query(
                "SELECT store_key, count(*) FILTER (WHERE stopped IS NULL) FROM sync_runs WHERE finished_at > %s "
                "GROUP BY 1",
                [settled],
            )
            return len(rows) == STORES and all(count >= 2 for _, count in rows)

        wait_for(synced_twice, timeout=240, what=f"two quiet syncs of every store ({context})", workers=())
        state.stop_workers()
        state.server.config.latency = 0.0

        for (key, order), shipment in chaos.shipments.items():
            store = state.server.tenant(state.tokens[key])
            oxid = int(order)
            assert (store.shipped_entries(oxid), store.transport_writes[oxid]) == (1, 1), (context, key, shipment)
        with PostgresStore(dsn) as db:
            for key in state.keys:
                wrong, importable = account_mismatches(oxatis, state.settings(key), db, ORDERS)
                assert wrong == [] and importable > 0, (context, key, wrong)
