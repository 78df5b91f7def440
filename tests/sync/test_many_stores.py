"""Many stores on one PostgreSQL database, two workers at once: every store's orders by content, no lost run.

A scale-out rehearsal without a task engine: two worker threads, each with its own PostgresStore
connection, take sync jobs from a queue (a test harness, not the product's scheduler). Every store is
queued twice in a row, so the two workers sync the same store at once; the fence lets one of them finish
and stops the other without a write. One more pass per store, then each store is checked by content.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from collections import Counter

import pytest

from channel_core import Channel, SkippedOrder, to_dict
from channel_core.sync import Importer
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import to_order
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, data

DSN = os.environ.get("CHANNEL_TEST_POSTGRES_DSN")
STORES, ORDERS = 12, 25


@pytest.fixture
def dsn_schema() -> tuple[str, str]:
    if not DSN:
        if os.environ.get("CHANNEL_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required here but CHANNEL_TEST_POSTGRES_DSN is not set")
        pytest.skip("no PostgreSQL: set CHANNEL_TEST_POSTGRES_DSN")
    return DSN, f"t_{uuid.uuid4().hex[:12]}"


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
            for token in tokens:  # the quiet pass, then the check by content
                with oxatis.connect(settings[token]) as connection:
                    assert Importer(oxatis, connection, db).run().completed
                    assert isinstance(connection, OxatisConnection)
                    ctx = connection.mapping_context()
                    for n in range(1, ORDERS + 1):
                        oxid = str(data.order_id_for(n))
                        truth = to_order(connection.client.order_details(oxid), ctx)
                        stored = db.get_order("oxatis", oxid, connection.account_id)
                        if isinstance(truth, SkippedOrder):
                            assert stored is None, (token, oxid)
                            continue
                        assert stored is not None, (token, oxid)
                        assert json.dumps(to_dict(stored.order), sort_keys=True) == json.dumps(
                            to_dict(truth), sort_keys=True
                        ), (token, oxid)
            assert db.count_orders("oxatis") == sum(1 for s in db.iter_orders("oxatis"))  # one row per (account, order)
            with db.transaction():
                db._db.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert all(server.calls_by_token[t] > 0 for t in tokens)
