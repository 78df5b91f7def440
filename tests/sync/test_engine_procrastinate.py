"""Syncs through procrastinate on a real PostgreSQL: one sync per store at a time, every store by content."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from channel_core import Channel, SkippedOrder, to_dict
from channel_core.sync import ImportSummary
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import to_order
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, data

DSN = os.environ.get("CHANNEL_TEST_POSTGRES_DSN")
STORES, ORDERS = 8, 20


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database: procrastinate's schema and the orders tables."""
    if not DSN:
        if os.environ.get("CHANNEL_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required here but CHANNEL_TEST_POSTGRES_DSN is not set")
        pytest.skip("no PostgreSQL: set CHANNEL_TEST_POSTGRES_DSN")
    import psycopg

    name = f"engine_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
                with oxatis.connect(settings[token]) as connection:
                    assert isinstance(connection, OxatisConnection)
                    ctx = connection.mapping_context()
                    for n in range(1, ORDERS + 1):
                        oxid = str(data.order_id_for(n))
                        truth = to_order(connection.client.order_details(oxid), ctx)
                        stored = db.get_order("oxatis", oxid, connection.account_id)
                        if isinstance(truth, SkippedOrder):
                            assert stored is None
                            continue
                        assert stored is not None, (token, oxid)
                        expected = json.dumps(to_dict(truth), sort_keys=True)
                        assert json.dumps(to_dict(stored.order), sort_keys=True) == expected, (token, oxid)
            history = db.runs("oxatis")
            assert len(history) == 2 * STORES and {run["store_key"] for run in history} == set(tokens)
            assert all(run["stopped"] is None and run["summary"]["pages"] >= 1 for run in history)
            rows = db._db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()
            assert rows[0] == 2 * STORES
            secrets = db._db.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE args::text LIKE '%token%'"
            ).fetchone()
            assert secrets[0] == 0  # jobs carry the store key only, never its credentials
