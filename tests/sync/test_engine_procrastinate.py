"""Syncs through procrastinate on a real PostgreSQL: one sync per store at a time, every store by content."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from channel_core import Channel
from channel_core.sync import ImportSummary
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from tests.sync.postgres import fresh_database
from tests.sync.simulation import account_mismatches

STORES, ORDERS = 8, 20


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database: procrastinate's schema and the orders tables."""
    with fresh_database("engine") as dsn:
        yield dsn


def test_procrastinate_runs_one_sync_per_store_and_every_store_equals_its_sandbox(
    oxatis: Channel, database: str
) -> None:
    from channel_core.sync.engine import StoreTarget, enqueue_sync, make_app

    tokens = [f"shop-{n}" for n in range(STORES)]
    with SandboxServer(SandboxConfig(count=ORDERS, token=tokens[0])) as server:
        for n, token in enumerate(tokens[1:], start=1):
            server.add_store(token, count=ORDERS, seed=200 + n)
        settings = {
            t: {"token": t, "base_url": server.url, "store_timezone": "Europe/Paris", "page_size": 6} for t in tokens
        }
        summaries: list[tuple[str, ImportSummary]] = []
        running: Counter[str] = Counter()
        overlaps: list[str] = []
        lock = threading.Lock()

        def resolve(store_key: str) -> StoreTarget:  # the host's credential lookup, at run time
            with lock:
                running[store_key] += 1
                if running[store_key] > 1:
                    overlaps.append(store_key)
            return StoreTarget("oxatis", settings[store_key])

        def finished(store_key: str, summary: ImportSummary) -> None:
            with lock:
                running[store_key] -= 1
                summaries.append((store_key, summary))

        app = make_app(database, resolve, channels=None, on_summary=finished)
        with app.open():
            app.schema_manager.apply_schema()
            queued = [enqueue_sync(app, token) for token in tokens]
            again = [enqueue_sync(app, token) for token in tokens]  # still waiting: refused by queueing_lock
        assert queued == [True] * STORES and again == [False] * STORES
        app.run_worker(queues=["channel-sync"], wait=False, concurrency=2, install_signal_handlers=False)
        with app.open():
            assert [enqueue_sync(app, token) for token in tokens] == [True] * STORES  # done: queue again
        app.run_worker(queues=["channel-sync"], wait=False, concurrency=2, install_signal_handlers=False)

        assert overlaps == [] and len(summaries) == 2 * STORES
        assert all(summary.completed for _, summary in summaries)
        from channel_core.sync.postgres import PostgresStore

        with PostgresStore(database) as db:
            for token in tokens:
                wrong, _ = account_mismatches(oxatis, settings[token], db, ORDERS)
                assert wrong == [], (token, wrong)
            history = db.runs("oxatis")
            assert len(history) == 2 * STORES and {run["store_key"] for run in history} == set(tokens)
            assert all(run["stopped"] is None and run["summary"]["pages"] >= 1 for run in history)
            rows = db._db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()
            assert rows[0] == 2 * STORES
            secrets = db._db.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE args::text LIKE '%token%'"
            ).fetchone()
            assert secrets[0] == 0  # jobs carry the store key only, never its credentials
