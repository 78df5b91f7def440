"""A fleet rehearsal: one sandbox hosting many stores, a fresh PostgreSQL, `channel worker` processes.

The checks read the sandbox's own request log, never the workers' word: which run sent each
request (the run label in the User-Agent), when it arrived, and for which store (its token).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from channel_core import Channel
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from channel_oxatis.sandbox.server import SandboxRequest

ROOT = Path(__file__).resolve().parents[2]
RUN = re.compile(r"\(run (?P<label>[^)]+)\)")


@dataclass
class Fleet:
    """``count`` sandbox stores (keys ``shop-N``, tokens in the workers' environment only)."""

    server: SandboxServer
    dsn: str
    keys: list[str]
    tokens: dict[str, str]
    orders: int
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def settings(self, key: str) -> dict[str, Any]:
        """What the checks connect with: the store's token, and no rate limit of our own."""
        return {
            "token": self.tokens[key],
            "base_url": self.server.url,
            "store_timezone": "UTC",
            "requests_per_second": 1e6,
        }

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANNEL_")}
        env.update({f"{key.upper().replace('-', '_')}_TOKEN": token for key, token in self.tokens.items()})
        return env

    def register(self, oxatis: Channel, *, every: timedelta, rate: float | None) -> None:
        from channel_core.fleet.engine import prepare_database
        from channel_core.fleet.registry import StoreRegistry
        from channel_core.sync.postgres import PostgresStore

        prepare_database(self.dsn)
        with PostgresStore(self.dsn) as db:
            registry = StoreRegistry(db)
            for key in self.keys:
                registry.add(
                    key,
                    oxatis.info(),
                    settings={"base_url": self.server.url, "store_timezone": "UTC", "page_size": 50},
                    credentials="env:" + key.upper().replace("-", "_"),
                    every=every,
                    requests_per_second=rate,
                )

    def start_worker(
        self, log: Path, *args: str, verbose: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A ``channel worker`` process; ``env`` overrides some of the stores' variables (a wrong token)."""
        command = [sys.executable, "-m", "channel_core", *(["-v"] if verbose else []), "--db", self.dsn, "worker"]
        command += args
        with log.open("wb") as handle:
            process = subprocess.Popen(
                command, cwd=ROOT, env={**self.environment(), **(env or {})}, stdout=handle, stderr=handle
            )
        self.workers.append(process)
        return process

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as db:
            return list(db.execute(sql, tuple(params)).fetchall())

    def everything_stored(self) -> str:
        """Every row of every table in the database, as text: what a leak check searches."""
        tables = self.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        )
        return "\n".join(
            str(row) for schema, table in tables for row in self.query(f'SELECT * FROM "{schema}"."{table}"')
        )


@contextmanager
def fleet(dsn: str, *, stores: int, orders: int, latency: float) -> Iterator[Fleet]:
    keys = [f"shop-{n}" for n in range(stores)]
    tokens = {key: f"tok{n:02d}-{os.urandom(6).hex()}" for n, key in enumerate(keys)}
    config = SandboxConfig(count=orders, seed=300, token=tokens[keys[0]], latency=latency, timezone="UTC")
    with SandboxServer(config) as server:
        for n, key in enumerate(keys[1:], start=1):
            server.add_store(tokens[key], count=orders, seed=300 + n)
        state = Fleet(server, dsn, keys, tokens, orders)
        try:
            yield state
        finally:
            state.stop_workers()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, workers: Iterable[Any] = ()) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` or when a worker died."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in workers:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def runs_by_token(requests: Iterable[SandboxRequest]) -> dict[str, dict[str, list[float]]]:
    """token -> run label -> arrival times, for the requests a labelled run sent."""
    runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for request in requests:
        match = RUN.search(request.user_agent)
        if match:
            runs[request.token][match["label"]].append(request.at)
    return runs


def overlapping_runs(runs: dict[str, list[float]]) -> list[tuple[str, str]]:
    """Pairs of runs whose first-to-last request spans overlap."""
    spans = sorted((min(times), max(times), label) for label, times in runs.items())
    found: list[tuple[str, str]] = []
    latest: tuple[float, str] | None = None  # the span reaching furthest so far
    for start, end, label in spans:
        if latest is not None and start < latest[0]:
            found.append((latest[1], label))
        if latest is None or end > latest[0]:
            latest = (end, label)
    return found


def busiest_second(times: Iterable[float]) -> int:
    """The most requests that arrived within any window of one second."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
