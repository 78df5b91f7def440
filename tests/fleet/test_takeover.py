"""A worker lost in the middle of a sync: killed (``kill -9``), or frozen and then back (a zombie).

The other worker notices the silent heartbeat, fails the orphaned job and syncs the store
afresh. The store ends equal to its sandbox by content, and a zombie that wakes up can no
longer move the checkpoint: its fence was taken over, so its next page stops it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from channel_core import Channel
from tests.fleet.harness import Fleet, fleet, wait_for
from tests.sync.postgres import fresh_database
from tests.sync.simulation import account_mismatches

ORDERS = 200
DETAIL_CALLS = ("OrderGet", "OrderGetDetails", "OrderGetMoreDetails")
WORKER = ("--concurrency", "1", "--tick", "1s", "--stalled-after", "2")


@pytest.fixture
def one_store() -> Iterator[Fleet]:
    with fresh_database("takeover") as dsn, fleet(dsn, stores=1, orders=ORDERS, latency=0.01) as state:
        yield state


class Gate:
    """Holds the ``at``-th detail call in the sandbox until released: the middle of a sync, on cue."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0
        self.reached, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()

    def __call__(self, method: str) -> None:
        if method not in DETAIL_CALLS:
            return
        with self._lock:
            self.seen += 1
            hold = self.seen == self.at
        if hold:
            self.reached.set()
            self.release.wait(timeout=120)


def _completed_runs(state: Fleet) -> list[tuple[str | None, str]]:
    return [
        (row[0], row[1])
        for row in state.query("SELECT stopped, summary->>'imported' FROM sync_runs ORDER BY finished_at, id")
    ]


def _checkpoint(state: Fleet) -> list[tuple[object, ...]]:
    return state.query("SELECT next_start, complete_until, cursor, cursor_since, updated_at FROM checkpoints")


def _store_equals_sandbox(oxatis: Channel, state: Fleet) -> None:
    from channel_core.sync.postgres import PostgresStore

    with PostgresStore(state.dsn) as db:
        wrong, importable = account_mismatches(oxatis, state.settings("shop-0"), db, ORDERS)
        assert wrong == [] and importable > 0
        assert db.count_orders("oxatis") == importable  # nothing twice, nothing extra


def test_kill_9_in_the_middle_of_a_sync_the_other_worker_completes_it(
    oxatis: Channel, one_store: Fleet, tmp_path: Path
) -> None:
    state = one_store
    state.register(oxatis, every=timedelta(hours=1), rate=None)  # due once: only recovery can sync it again
    gate = Gate(at=120)
    state.server.on_request = gate
    first = state.start_worker(tmp_path / "first.log", *WORKER)
    assert gate.reached.wait(timeout=120), "the first worker never reached the middle of its sync"
    stored_before = state.query("SELECT count(*) FROM orders")[0][0]
    assert 0 < stored_before < ORDERS  # some pages committed, the rest not yet
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    gate.release.set()

    second = state.start_worker(tmp_path / "second.log", *WORKER)
    wait_for(lambda: _completed_runs(state) != [], timeout=120, what="the second worker's sync", workers=[second])
    assert [stopped for stopped, _ in _completed_runs(state)] == [None]  # the killed run never reported
    assert state.query("SELECT fence FROM fences") == [(2,)]  # the second run took the store over
    jobs = dict(
        state.query("SELECT status, count(*) FROM procrastinate_jobs WHERE task_name LIKE '%%sync_store' GROUP BY 1")
    )
    assert jobs == {"failed": 1}  # the orphan failed by recovery; the fresh job's row went as it succeeded
    _store_equals_sandbox(oxatis, state)


def test_a_frozen_worker_that_wakes_up_is_fenced_out_and_moves_no_checkpoint(
    oxatis: Channel, one_store: Fleet, tmp_path: Path
) -> None:
    state = one_store
    state.register(oxatis, every=timedelta(hours=1), rate=None)
    gate = Gate(at=120)
    state.server.on_request = gate
    zombie = state.start_worker(tmp_path / "zombie.log", *WORKER)
    assert gate.reached.wait(timeout=120), "the first worker never reached the middle of its sync"
    os.kill(zombie.pid, signal.SIGSTOP)  # no heartbeat from now on: it looks dead

    second = state.start_worker(tmp_path / "second.log", *WORKER)
    wait_for(lambda: _completed_runs(state) != [], timeout=120, what="the second worker's sync", workers=[second])
    taken_over = _checkpoint(state)
    assert state.query("SELECT fence FROM fences") == [(2,)]

    os.kill(zombie.pid, signal.SIGCONT)
    gate.release.set()  # the held reply arrives; the zombie carries on with its pages
    wait_for(lambda: len(_completed_runs(state)) == 2, timeout=120, what="the zombie's run to end")
    assert [stopped for stopped, _ in _completed_runs(state)] == [None, "fenced"]
    assert _checkpoint(state) == taken_over  # not one checkpoint write after the fence was taken over
    _store_equals_sandbox(oxatis, state)
