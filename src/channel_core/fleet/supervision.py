"""Keeping ``channel worker`` alive across database restarts, failovers and outages.

procrastinate's worker stops when its connection to PostgreSQL drops (its listener fails, or its pool
times out), and returns as if it had been asked to. :func:`run_worker` runs it again for as long as
the worker was not asked to stop: when the database is gone it says so once, waits with capped backoff
until the database answers, says so again, and resumes. Only after ``give_up_after`` seconds without a
database does it give up, with :class:`DatabaseUnavailable` (never a clean exit, never a traceback).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from channel_core.logs import get_logger

__all__ = ["DatabaseUnavailable", "database_problem", "is_database_error", "run_worker", "when_database_answers"]

logger = get_logger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


class DatabaseUnavailable(Exception):
    """The database stayed unreachable longer than the worker was told to wait."""


def is_database_error(exc: BaseException) -> bool:
    """A lost or refused database connection (not a failing statement): psycopg's ``OperationalError``
    and ``InterfaceError``, or its pool's timeout, raised directly or behind procrastinate's connector."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - only without the extras
        return False
    lost: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
    try:
        import psycopg_pool  # procrastinate's (the engine extra)
    except ImportError:  # pragma: no cover - the postgres extra alone
        pass
    else:
        lost = (*lost, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def database_problem(dsn: str, *, timeout: float = 3.0) -> str | None:
    """``None`` when the database answers a query now; otherwise why not, in one line."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), autocommit=True) as db:
            db.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:200] or type(exc).__name__
    return None


def when_database_answers(
    action: Callable[[], Any],
    dsn: str,
    *,
    give_up_after: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``action()``, run again once the database answers when it fails for want of one (a worker starting
    while the database restarts); :class:`DatabaseUnavailable` after ``give_up_after`` seconds without."""
    watch = _Watch(dsn, give_up_after, say)
    backoff = BACKOFF_FIRST
    while True:
        try:
            result = action()
        except Exception as exc:
            if not is_database_error(exc):
                raise
            if not watch.answers():
                reason = watch.expired()
                if reason is not None:
                    raise DatabaseUnavailable(reason) from None
            sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
            continue
        if watch.said_lost:
            watch.answers()  # says it is back
        return result


class _Watch:
    """Whether the database answers, said once when it goes and once when it comes back."""

    def __init__(self, dsn: str, give_up_after: float, say: Callable[[str], None]) -> None:
        self.dsn, self.give_up_after, self.say = dsn, give_up_after, say
        self.lost_since: float | None = None
        self.said_lost = False
        self.problem = ""
        self._lock = threading.Lock()

    def answers(self) -> bool:
        problem = database_problem(self.dsn)
        with self._lock:
            if problem is not None:
                if self.lost_since is None:
                    self.lost_since = time.monotonic()
                if not self.said_lost:
                    self.said_lost = True
                    self.say(f"worker: the database is unavailable ({problem}); waiting up to {self.give_up_after:g}s")
                self.problem = problem
                return False
            if self.lost_since is not None and self.said_lost:
                self.say(f"worker: the database is back after {time.monotonic() - self.lost_since:.0f}s; resuming")
            self.lost_since, self.said_lost = None, False
            return True

    def expired(self) -> str | None:
        with self._lock:
            if self.lost_since is None:
                return None
            waited = time.monotonic() - self.lost_since
            if waited < self.give_up_after:
                return None
            return (
                f"no database for {waited:.0f}s ({self.problem}); giving up (--give-up-after {self.give_up_after:g}s)"
            )


def run_worker(
    app: Any,
    dsn: str,
    *,
    give_up_after: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    probe_every: float = 2.0,
    abandon: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Run ``app``'s worker until it is asked to stop (SIGINT, SIGTERM) or, with ``wait=False``, runs dry.

    A watchdog asks the database every ``probe_every`` seconds while the worker runs, so the operator
    reads one line when it goes and one when it comes back; the worker is run again after procrastinate
    stops for want of it.

    :param give_up_after: seconds without a database before :class:`DatabaseUnavailable` is raised.
    :param say: prints one line for the operator.
    :param abandon: called with the reason when, having given up, the worker's jobs still have not
        stopped 10 s later (they wait on connections that will not come): a command ends its process there.
    """
    stopping, gave_up = threading.Event(), threading.Event()
    watch = _Watch(dsn, give_up_after, say)
    backoff = BACKOFF_FIRST
    wait = options.get("wait", True)
    while True:
        failure: BaseException | None = None
        done = threading.Event()
        holder: dict[str, Any] = {}

        def watchdog(done: threading.Event = done, holder: dict[str, Any] = holder) -> None:
            while not done.wait(probe_every):
                reason = None if watch.answers() else watch.expired()
                if reason is not None:
                    gave_up.set()
                    loop, task = holder.get("loop"), holder.get("task")
                    if loop is not None and task is not None:
                        loop.call_soon_threadsafe(task.cancel)
                    if not done.wait(10.0) and abandon is not None:
                        abandon(reason)
                    return

        guard = threading.Thread(target=watchdog, name="database-watchdog", daemon=True)
        guard.start()
        try:
            asyncio.run(_run_once(app, stopping, gave_up, holder, options))
        except Exception as exc:
            if not is_database_error(exc):
                raise
            failure = exc
        finally:
            done.set()
            guard.join()
        if stopping.is_set():
            return
        if gave_up.is_set():
            raise DatabaseUnavailable(watch.expired() or "no database; giving up")
        if failure is None and not wait:
            return  # --once: every waiting job ran
        said_before = watch.said_lost
        while not watch.answers():
            reason = watch.expired()
            if reason is not None:
                raise DatabaseUnavailable(reason)
            _pause(backoff, stopping, sleep)
            if stopping.is_set():
                return
            backoff = min(BACKOFF_MAX, backoff * 2)
        backoff = BACKOFF_FIRST
        if not said_before and not watch.said_lost:  # a restart it had already come back from
            reason = " ".join(str(failure).split())[:200] if failure is not None else "the job queue stopped"
            say(f"worker: the database connection dropped ({reason}); reconnected, resuming")
            if failure is None:
                _pause(BACKOFF_FIRST, stopping, sleep)


def _pause(seconds: float, stopping: threading.Event, sleep: Callable[[float], None]) -> None:
    """Sleep, unless SIGINT or SIGTERM asks the worker to stop meanwhile."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for sig in previous:
            signal.signal(sig, lambda *_: stopping.set())
    try:
        end = time.monotonic() + seconds
        while not stopping.is_set() and time.monotonic() < end:
            sleep(min(0.1, max(0.0, end - time.monotonic())))
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _run_once(
    app: Any, stopping: threading.Event, gave_up: threading.Event, holder: dict[str, Any], options: dict[str, Any]
) -> None:
    """One run of the worker; SIGINT and SIGTERM stop it gracefully (running jobs finish first)."""
    loop = asyncio.get_running_loop()
    async with app.open_async():
        task = asyncio.create_task(app.run_worker_async(**{**options, "install_signal_handlers": False}))
        holder.update(loop=loop, task=task)

        def stop() -> None:
            stopping.set()
            task.cancel()  # procrastinate's worker turns a cancel into a graceful stop

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            await task
        except asyncio.CancelledError:
            if not (stopping.is_set() or gave_up.is_set()):
                raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
