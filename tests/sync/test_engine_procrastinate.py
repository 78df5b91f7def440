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
    from datetime import timedelta

    from channel_core.fleet.engine import enqueue_sync, make_app, prepare_database
    from channel_core.fleet.registry import RegisteredStore, StoreRegistry
    from channel_core.hooktypes import ChannelInfo
    from channel_core.sync.postgres import PostgresStore

    tokens = [f"shop-{n}" for n in range(STORES)]  # store keys; each store's token is in the host's "vault"
    vault = {key: f"secret-{n}-{key[::-1]}" for n, key in enumerate(tokens)}
    with SandboxServer(SandboxConfig(count=ORDERS, token=vault[tokens[0]])) as server:
        for n, token in enumerate(tokens[1:], start=1):
            server.add_store(vault[token], count=ORDERS, seed=200 + n)
        plain = {"base_url": server.url, "store_timezone": "Europe/Paris", "page_size": 6}
        settings = {t: {"token": vault[t], **plain} for t in tokens}
        prepare_database(database)
        with PostgresStore(database) as db:
            for token in tokens:  # the registry holds a reference (the vault's key), never the token itself
                StoreRegistry(db, schemes=("vault",)).add(
                    token, oxatis.info(), settings=plain, credentials=f"vault:{token}", every=timedelta(minutes=5)
                )
        summaries: list[tuple[str, ImportSummary]] = []
        running: Counter[str] = Counter()
        overlaps: list[str] = []
        lock = threading.Lock()

        def credentials(store: RegisteredStore, info: ChannelInfo) -> dict[str, str]:  # the host's vault, at run time
            assert store.credentials == f"vault:{store.key}" and info.name == "oxatis"
            with lock:
                running[store.key] += 1
                if running[store.key] > 1:
                    overlaps.append(store.key)
            return {"token": vault[store.key]}

        def finished(store_key: str, summary: ImportSummary) -> None:
            with lock:
                running[store_key] -= 1
                summaries.append((store_key, summary))

        app = make_app(database, credentials=credentials, on_summary=finished, schedule=None)
        with app.open():
            queued = [enqueue_sync(app, token) for token in tokens]
            again = [enqueue_sync(app, token) for token in tokens]  # still waiting: refused by queueing_lock
        assert queued == [True] * STORES and again == [False] * STORES
        app.run_worker(queues=["channel-sync"], wait=False, concurrency=2, install_signal_handlers=False)
        with app.open():
            assert [enqueue_sync(app, token) for token in tokens] == [True] * STORES  # done: queue again
        app.run_worker(queues=["channel-sync"], wait=False, concurrency=2, install_signal_handlers=False)

        assert overlaps == [] and len(summaries) == 2 * STORES
        assert all(summary.completed for _, summary in summaries)
        with PostgresStore(database) as db:
            for token in tokens:
                wrong, _ = account_mismatches(oxatis, settings[token], db, ORDERS)
                assert wrong == [], (token, wrong)
            history = db.runs("oxatis")
            assert len(history) == 2 * STORES and {run["store_key"] for run in history} == set(tokens)
            assert all(run["stopped"] is None and run["summary"]["pages"] >= 1 for run in history)
            assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'") == [(2 * STORES,)]
            everything = " ".join(  # jobs, the registry, history: no token anywhere
                str(row)
                for table in ("procrastinate_jobs", "stores", "sync_runs", "checkpoints")
                for row in db.execute(f"SELECT * FROM {table}")
            )
            assert not [secret for secret in vault.values() if secret in everything]
