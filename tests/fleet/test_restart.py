"""The fleet rides out a database restart, a crash restart and an outage, without being restarted itself.

A dedicated throwaway cluster (the other suites' database is not restarted under them) holds the queue,
the registry and the orders. Two `channel worker` processes sync stores at 20 ms per call while shipments
are queued; the cluster is restarted with ``-m fast``, then ``-m immediate``, then stopped for 10 s.
The same worker processes must resume and finish: every store equal to its sandbox by content, every
shipment one state entry and one transport write, no worker exited, no traceback in their output.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from channel_core import Channel, Shipment
from channel_oxatis.sandbox import data
from tests.fleet.harness import ROOT, fleet, wait_for
from tests.sync.postgres import postgres_dsn
from tests.sync.simulation import account_mismatches

SCRIPT = str(ROOT / "scripts" / "throwaway-postgres")
STORES, ORDERS = 4, 80
WORKER = ("--concurrency", "2", "--tick", "1s", "--stalled-after", "3", "--give-up-after", "60s")


@pytest.fixture
def cluster() -> Iterator[tuple[str, str]]:
    """A cluster of this test's own: (DSN, directory)."""
    postgres_dsn()  # where the PostgreSQL suites cannot run, this says why
    if shutil.which("initdb") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    started = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, check=True)
    dsn, directory = started.stdout.split()
    try:
        yield dsn, directory
    finally:
        log = Path(directory) / "server.log"  # shown by pytest only when the test failed: why the server went
        if log.exists():
            print("--- the throwaway server's log, last 60 lines:")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))
        subprocess.run([SCRIPT, "stop", directory], check=False)


def test_workers_resume_after_restarts_and_an_outage(oxatis: Channel, cluster: tuple[str, str], tmp_path: Path) -> None:
    from channel_core.fleet.engine import enqueue_shipment, make_app

    server_dsn, directory = cluster
    faults = [["restart", directory, "fast"], ["restart", directory, "immediate"], ["down", directory]]
    resumed: dict[str, float] = {}
    dsn = server_dsn  # the cluster is this test's alone
    with fleet(dsn, stores=STORES, orders=ORDERS, latency=0.02) as state:
        state.register(oxatis, every=timedelta(seconds=1), rate=None)
        logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
        workers = [state.start_worker(log, *WORKER) for log in logs]
        wait_for(lambda: all("job(s) at once" in log.read_text() for log in logs), timeout=60,
                 what="both workers running", workers=workers)  # fmt: skip
        shipments: list[tuple[str, Shipment]] = []
        app = make_app(dsn, schedule=None)

        def runs_since(moment: object) -> int:
            rows = state.query("SELECT count(*) FROM sync_runs WHERE stopped IS NULL AND finished_at > %s", [moment])
            return int(rows[0][0])

        for n, fault in enumerate(faults):
            with app.open():
                for key in state.keys:
                    order = str(data.order_id_for(n * 10 + state.keys.index(key) + 1))
                    shipment = Shipment(order_id=order, tracking_number=f"R{n}-{key}", carrier="DPD", force=True)
                    enqueue_shipment(app, key, shipment)
                    shipments.append((key, shipment))
            for key in state.keys:  # merchants edit while the workers sync: the next runs have work to do
                store = state.server.tenant(state.tokens[key])
                store.modify(data.order_id_for(n + 30), {"ShippingCity": f"Ville {n}"})
            time.sleep(0.5)  # let the syncs get going: the fault lands mid-sync
            subprocess.run([SCRIPT, *fault], check=True)
            if fault[0] == "down":
                time.sleep(10)
                subprocess.run([SCRIPT, "up", directory], check=True)
            back = time.monotonic()
            (now,) = state.query("SELECT now()")[0]

            def resumed_syncs(since: object = now) -> bool:
                return runs_since(since) >= STORES

            wait_for(resumed_syncs, timeout=120, what=f"completed syncs after {' '.join(fault)}", workers=workers)
            resumed[" ".join(fault[:1] + fault[2:]) or fault[0]] = time.monotonic() - back
            assert all(w.poll() is None for w in workers), f"a worker exited after {fault}"

        def notified() -> bool:
            rows = state.query("SELECT status FROM notifications")
            return len(rows) == len(shipments) and {r[0] for r in rows} <= {"sent", "already_sent"}

        try:
            wait_for(notified, timeout=120, what="every shipment sent", workers=workers)
        except AssertionError as exc:
            jobs = state.query("SELECT task_name, status, count(*) FROM procrastinate_jobs GROUP BY 1, 2")
            ledger = state.query("SELECT shipment->>'tracking_number', status, message FROM notifications")
            raise AssertionError(f"{exc}; jobs {jobs}; ledger {ledger}") from None
        (settled,) = state.query("SELECT now()")[0]
        wait_for(lambda: runs_since(settled) >= 2 * STORES, timeout=120, what="quiet syncs", workers=workers)
        assert all(w.poll() is None for w in workers)
        state.stop_workers()
        state.server.config.latency = 0.0
        for key, shipment in shipments:
            store = state.server.tenant(state.tokens[key])
            oxid = int(shipment.order_id)
            assert (store.shipped_entries(oxid), store.transport_writes[oxid]) == (1, 1), (key, shipment)
        from channel_core.sync.postgres import PostgresStore

        with PostgresStore(dsn) as db:
            for key in state.keys:
                wrong, importable = account_mismatches(oxatis, state.settings(key), db, ORDERS)
                assert wrong == [] and importable > 0, (key, wrong)
    said = "".join(log.read_text(errors="replace") for log in logs)
    assert "the database is unavailable" in said and "the database is back" in said  # the 10 s outage
    for log in logs:
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
        lines = [line for line in text.splitlines() if line.startswith("worker: the database")]
        assert lines, text[-3000:]  # it said so when the database went and came back
        assert all(("dropped" in line) or ("unavailable" in line) or ("is back" in line) for line in lines)
    print("resumed after each fault (s):", {k: round(v, 1) for k, v in resumed.items()})


def test_a_worker_without_a_database_for_too_long_exits_non_zero_in_one_line(
    oxatis: Channel, cluster: tuple[str, str], tmp_path: Path
) -> None:
    dsn, directory = cluster
    with fleet(dsn, stores=1, orders=10, latency=0.0) as state:
        state.register(oxatis, every=timedelta(seconds=1), rate=None)
        log = tmp_path / "worker.log"
        worker = state.start_worker(log, "--tick", "1s", "--give-up-after", "4s")

        def running() -> bool:
            return "job(s) at once" in log.read_text()

        wait_for(running, timeout=60, what="the worker running", workers=[worker])
        subprocess.run([SCRIPT, "down", directory], check=True)
        try:
            assert worker.wait(timeout=120) == 3
        finally:
            subprocess.run([SCRIPT, "up", directory], check=True)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert "the database is unavailable" in text and "giving up (--give-up-after 4s)" in text, text[-3000:]


def test_a_command_that_loses_its_database_says_so_in_one_line(cluster: tuple[str, str]) -> None:
    """`channel status` against a database that goes away mid-command: exit 3, one line, no traceback."""
    from click.testing import CliRunner

    from channel_core.cli.app import cli
    from channel_core.fleet.engine import prepare_database

    dsn, directory = cluster
    prepare_database(dsn)
    from channel_core.fleet import registry as registry_module

    original = registry_module.StoreRegistry.states

    def restart_first(self: object, **options: object) -> object:  # the server restarts while the command talks to it
        subprocess.run([SCRIPT, "restart", directory, "immediate"], check=True)
        return original(self, **options)  # type: ignore[arg-type]

    registry_module.StoreRegistry.states = restart_first  # type: ignore[method-assign,assignment]
    try:
        result = CliRunner().invoke(cli, ["--db", dsn, "status"])
    finally:
        registry_module.StoreRegistry.states = original  # type: ignore[method-assign]
    assert result.exit_code == 3, result.output
    assert "the database became unavailable" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
