"""PostgresPool: a worker's jobs share connections, and a connection that went bad is never handed out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync.postgres import fresh_database


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("pool") as dsn:
        yield dsn


def _backend(store: object) -> int:
    return int(store.execute("SELECT pg_backend_pid()")[0][0])  # type: ignore[attr-defined]


def test_jobs_share_a_connection_and_the_migrations_are_checked_once(database: str) -> None:
    from channel_core.sync.pool import PostgresPool
    from channel_core.sync.postgres import PostgresStore

    pool = PostgresPool(database)
    with PostgresStore(database, pool=pool) as first:
        backend = _backend(first)
        assert first.execute("SHOW search_path") == [("public",)]
    assert pool.migrated
    with PostgresStore(database, pool=pool) as second:
        assert _backend(second) == backend  # the same connection, given back and taken again
        second.execute("DROP TABLE channel_schema")  # were the migrations checked again, this would recreate it
    with PostgresStore(database, pool=pool) as third:
        assert third.execute("SELECT to_regclass('channel_schema')") == [(None,)]
    with pytest.raises(Exception, match="serves schema"):
        PostgresStore(database, schema="other", pool=pool)
    pool.close()


def test_a_connection_left_in_a_transaction_or_killed_is_never_handed_out_again(database: str) -> None:
    import psycopg

    from channel_core.sync.pool import PostgresPool

    pool = PostgresPool(database, recheck_after=0.0)
    busy = pool.take()
    busy.execute("BEGIN")
    pool.give_back(busy)  # inside a transaction: closed, not kept
    assert busy.closed
    idle = pool.take()
    pid = idle.info.backend_pid
    pool.give_back(idle)
    with psycopg.connect(database, autocommit=True) as admin:  # the server drops it (a restart, a failover)
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    fresh = pool.take()  # idle longer than recheck_after: asked first, found dead, replaced
    assert fresh.info.backend_pid != pid and fresh.execute("SELECT 1").fetchone() == (1,)
    pool.give_back(fresh)
    pool.close()
    assert fresh.closed


def test_a_shared_rate_budget_takes_its_connection_from_the_pool(database: str) -> None:
    from channel_core.fleet.budget import PostgresRateBudget
    from channel_core.sync.pool import PostgresPool
    from channel_core.sync.postgres import PostgresStore

    pool = PostgresPool(database)
    with PostgresStore(database, pool=pool) as store:
        backend = _backend(store)
    budget = PostgresRateBudget(database, "oxatis:acct", 1000.0, pool=pool, sleep=lambda s: None)
    budget.acquire()
    assert budget._db.info.backend_pid == backend
    budget.close()
    with PostgresStore(database, pool=pool) as store:
        assert _backend(store) == backend


def test_a_store_prepares_no_statement_on_the_server(database: str) -> None:
    """psycopg prepares a query on its sixth run; a page's pipeline aborted by a failed fence check could leave
    it believing in a preparation the server never made. The store's connections prepare nothing."""
    from datetime import UTC, datetime

    from channel_core.errors import FencedOutError
    from channel_core.sync.postgres import PostgresStore
    from channel_core.sync.store import Checkpoint

    with PostgresStore(database) as db:
        fence = db.take_fence("oxatis", "a")
        for _ in range(8):
            db.load_checkpoint("oxatis", "a")
            with db.transaction():
                db.check_fence("oxatis", "a", fence)
                db.save_checkpoint("oxatis", "a", Checkpoint(datetime(2026, 1, 1, tzinfo=UTC), None))
        assert db.execute("SELECT count(*) FROM pg_prepared_statements") == [(0,)]  # each query ran 8 times
        with pytest.raises(FencedOutError), db.transaction():
            db.check_fence("oxatis", "a", fence - 1)
            db.save_checkpoint("oxatis", "a", Checkpoint(datetime(2026, 1, 2, tzinfo=UTC), None))
        assert db.execute("SELECT count(*) FROM pg_prepared_statements") == [(0,)]
        assert db.load_checkpoint("oxatis", "a") is not None
