"""Connections to one PostgreSQL database and schema, kept between the jobs of one process.

A worker runs thousands of short jobs; opening a connection for each (a backend started by the server,
TLS, authentication) and checking the migrations each time cost more than an unchanged store's whole sync.
A :class:`PostgresPool` hands a job an idle connection when it has one and takes it back afterwards;
:class:`~channel_core.sync.postgres.PostgresStore` and
:class:`~channel_core.fleet.budget.PostgresRateBudget` take theirs from it when given one, and the
migrations are checked once per pool.

What it does not do: wait for a free connection (a job that needs one and finds none idle opens one),
or reconnect in the background. A connection that comes back broken, closed or inside a transaction is
closed, never handed out again; one that sat idle longer than ``recheck_after`` seconds is asked a
trivial query before it is handed out, so a database restart between two jobs costs a reconnect, not a
failed job. Thread-safe.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

from channel_core.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresPool"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresPool:
    """Idle autocommit connections to ``dsn`` with ``search_path`` set to ``schema`` at connect time.

    :param keep: at most this many idle connections are kept; more are closed when given back.
    :param recheck_after: seconds of idleness after which a connection is checked before reuse.
    """

    def __init__(self, dsn: str, schema: str = "public", *, keep: int = 16, recheck_after: float = 2.0) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError(f"schema must be a plain lower-case identifier, got {schema!r}")
        self.dsn, self.schema = dsn, schema
        self.keep, self.recheck_after = keep, recheck_after
        self.migrated = False  # set by the first PostgresStore that checked the migrations through this pool
        self.adopted: set[tuple[str, str, str]] = set()  # (channel, old, new) account moves already done
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._lock = threading.Lock()

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection (not from the pool); :class:`psycopg.OperationalError` when the server refuses.

        Without server-side prepared statements (``prepare_threshold=None``): psycopg prepares a query on its
        sixth run, and a page's pipeline aborted by a failed fence check drops what the server had prepared;
        once, in a CI run of two workers fencing each other out, psycopg then named a statement the server no
        longer held ("prepared statement _pg3_3 does not exist"). Without them a pooler in transaction mode
        works as well.
        """
        import psycopg

        return psycopg.connect(
            self.dsn, autocommit=True, prepare_threshold=None, options=f"-c search_path={self.schema}"
        )

    def take(self) -> psycopg.Connection[Any]:
        """An idle connection that answers, else a new one."""
        import psycopg

        while True:
            with self._lock:
                if not self._idle:
                    break
                connection, since = self._idle.pop()
            if connection.closed or connection.broken:
                continue
            if time.monotonic() - since > self.recheck_after:
                try:
                    connection.execute("SELECT 1")
                except psycopg.Error:
                    connection.close()
                    continue
            return connection
        return self.connect()

    def give_back(self, connection: psycopg.Connection[Any]) -> None:
        """Keep ``connection`` for the next job, or close it (broken, in a transaction, or enough kept)."""
        from psycopg.pq import TransactionStatus

        reusable = (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if reusable and len(self._idle) < self.keep:
                self._idle.append((connection, time.monotonic()))
                return
        connection.close()

    def close(self) -> None:
        """Close every idle connection (connections in use are closed when given back)."""
        with self._lock:
            idle, self._idle, self.keep = self._idle, [], 0
        for connection, _ in idle:
            connection.close()

    def __repr__(self) -> str:
        return f"PostgresPool(schema={self.schema!r}, idle={len(self._idle)})"  # never the DSN
