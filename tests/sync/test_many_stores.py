"""Many stores on one PostgreSQL database, two workers at once: every store's orders by content, no lost run.

A scale-out rehearsal without a task engine: two worker threads, each with its own PostgresStore
connection, take sync jobs from a queue (a test harness, not the product's scheduler). Every store is
queued twice in a row, so the two workers sync the same store at once; the fence lets one of them finish
and stops the other without a write. One more pass per store, then each store is checked by content.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter

import pytest

from channel_core import Channel
from channel_core.sync import Importer
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from tests.sync.postgres import postgres_dsn
from tests.sync.simulation import account_mismatches

STORES, ORDERS = 12, 25


@pytest.fixture
def dsn_schema() -> tuple[str, str]:
    return postgres_dsn(), f"t_{uuid.uuid4().hex[:12]}"


def test_two_workers_many_stores_every_store_equal_by_content(oxatis: Channel, dsn_schema: tuple[str, str]) -> None:
    from channel_core.sync.postgres import PostgresStore

    dsn, schema = dsn_schema
    tokens = [f"store-{n:02d}" for n in range(STORES)]
    with SandboxServer(SandboxConfig(count=ORDERS, token=tokens[0])) as server:
        for n, token in enumerate(tokens[1:], start=1):
            server.add_store(token, count=ORDERS, seed=100 + n)
        settings = {
            t: {"token": t, "base_url": server.url, "store_timezone": "Europe/Paris", "page_size": 7} for t in tokens
        }
        jobs: queue.Queue[str] = queue.Queue()
        for token in tokens:  # each store twice in a row: both workers sync it at once
            jobs.put(token)
            jobs.put(token)
        outcomes: Counter[str] = Counter()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with PostgresStore(dsn, schema=schema) as db:
                    while True:
                        try:
                            token = jobs.get_nowait()
                        except queue.Empty:
                            return
                        with oxatis.connect(settings[token]) as connection:
                            summary = Importer(oxatis, connection, db).run()
                        outcomes[summary.stopped or "completed"] += 1
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        workers = [threading.Thread(target=worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        assert errors == []
        assert outcomes["completed"] >= STORES and set(outcomes) <= {"completed", "fenced"}, outcomes

        with PostgresStore(dsn, schema=schema) as db:
            importable = 0
            for token in tokens:  # the quiet pass, then the check by content
                with oxatis.connect(settings[token]) as connection:
                    assert Importer(oxatis, connection, db).run().completed
                wrong, count = account_mismatches(oxatis, settings[token], db, ORDERS)
                assert wrong == [], (token, wrong)
                importable += count
            assert db.count_orders("oxatis") == importable  # one row per (account, order), none left over
            with db.transaction():
                db._db.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert all(server.calls_by_token[t] > 0 for t in tokens)
