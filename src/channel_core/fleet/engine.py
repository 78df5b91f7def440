"""Many stores on procrastinate, the PostgreSQL task engine: one running sync per store, nothing home-made.

``pip install 'channel-integrations[engine]'``. A host builds the app once with :func:`make_app`
and runs workers (``channel worker``, ``app.run_worker(...)`` or ``procrastinate worker``).
Four tasks:

* ``channel_core.schedule_stores`` (periodic, every 10 s by default): hands the due stores of the
  :class:`~channel_core.fleet.registry.StoreRegistry` to ``sync_store``, and recovers the jobs of
  workers that stopped sending heartbeats (``kill -9``, a lost machine).
* ``channel_core.sync_store``: one :class:`Importer` pass and the store's due notifications.
* ``channel_core.notify_shipment``: one shipment notification (:func:`enqueue_shipment`).
* ``channel_core.housekeeping`` (daily): folds runs older than ``detail`` (3 days) into per-store daily
  totals (each store's latest run stays), and forgets finished jobs and daily totals older than ``keep`` (30 days).

Rules:

* **One sync per store**: sync jobs carry the lock ``sync:<store>``, so procrastinate never runs two
  at once; the fence (:meth:`OrderStore.take_fence`) still stops a run that lost its store some
  other way. ``queueing_lock`` is the same key: a store already waiting is not queued twice.
* **No engine retries** for syncs: the next sync resumes from the checkpoint, and a retry waiting on
  its backoff would hold the store's lock (procrastinate issues #1599, #1543, #1446). A sync whose
  worker died is marked failed and the store queued afresh.
* **One budget per account**: a store with ``requests_per_second``, or of a channel whose store counts
  cost points (``Capabilities.cost_budget``), gets a :class:`~channel_core.fleet.budget.PostgresRateBudget`
  that every worker's requests share; a point-counting store's replies settle it.
* **Credentials stay with the host**: jobs carry the store key only; the ``credentials`` resolver
  turns the registry's reference into secrets inside the job. Nothing secret reaches PostgreSQL.
* **History**: every run's summary goes to ``sync_runs`` (:meth:`PostgresStore.runs`), and a quota
  stop parks the store until its quota resets.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from channel_core.credentials import keep_credentials
from channel_core.errors import (
    AccountMismatchError,
    ChannelError,
    ConfigurationError,
    InvalidShipmentError,
    QuotaExhaustedError,
)
from channel_core.fleet.budget import MAX_WAIT, PostgresRateBudget
from channel_core.fleet.credentials import CredentialResolver, DefaultCredentials, keeper_for, store_settings
from channel_core.fleet.metrics import WorkerMetrics
from channel_core.fleet.registry import RegisteredStore, StoreRegistry
from channel_core.hooktypes import Connection
from channel_core.http import run_scope
from channel_core.logs import get_logger
from channel_core.lookups import keep_lookups
from channel_core.models import Shipment, from_dict, to_dict
from channel_core.registry import Channel, Channels
from channel_core.sync.importer import Importer, ImportSummary
from channel_core.sync.notifier import DEFAULT_LEASE, NotificationOutcome, Notifier
from channel_core.sync.pool import PostgresPool
from channel_core.sync.postgres import PostgresStore
from channel_core.sync.store import NotificationRecord, NotificationState, notification_id

__all__ = [
    "HOUSEKEEPING_TASK",
    "NOTIFY_TASK",
    "SCHEDULE_TASK",
    "SYNC_QUEUE",
    "SYNC_TASK",
    "connected_store",
    "enqueue_due",
    "enqueue_shipment",
    "enqueue_sync",
    "make_app",
    "prepare_database",
]

logger = get_logger(__name__)

SYNC_TASK = "channel_core.sync_store"
NOTIFY_TASK = "channel_core.notify_shipment"
SCHEDULE_TASK = "channel_core.schedule_stores"
HOUSEKEEPING_TASK = "channel_core.housekeeping"
WEBHOOK_TASK = "channel_core.sync_webhook_orders"
SYNC_QUEUE = "channel-sync"
NOTIFY_QUEUE = "channel-notify"
SCHEDULE_QUEUE = "channel-schedule"
DEFAULT_SCHEDULE = "* * * * * */10"  # cron with seconds: every 10 s
HOUSEKEEPING_SCHEDULE = "23 3 * * *"  # daily, 03:23 UTC
DEFAULT_KEEP = timedelta(days=30)
DEFAULT_DETAIL = timedelta(days=3)  # runs kept one by one; older ones become per-store daily totals


def _label(store_key: str, kind: str, context: Any) -> str:
    """Names one job's requests in logs and the User-Agent: the store, the job, the worker process."""
    job = context.job.id if context.job is not None else uuid.uuid4().hex[:8]
    return f"{store_key}/{kind}-{job}/pid-{os.getpid()}"


def _sync_lock(store_key: str) -> str:
    return f"sync:{store_key}"


def _notification_result(outcome: NotificationOutcome) -> str:
    if outcome.parked:
        return "parked"
    if outcome.pending:
        return "pending"
    return str(outcome.result.status)


def unexpected(exc: BaseException) -> str:
    """A one-line account of an error that is not a channel error: its type and a short message.

    Never the traceback (its frames hold the resolved settings): the type and the first 300
    characters of the message, which a resolver or driver writes without secrets.
    """
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def budget_key(store: RegisteredStore) -> str:
    """The rate budget a store's requests share: its account's, once known (two registry keys for one
    merchant share one budget), else its registry key until its first sync pins the account."""
    return f"{store.channel}:{store.account_id or 'key:' + store.key}"


def check_account(store: RegisteredStore, connection: Connection) -> None:
    """Refuse credentials that open another account than the one the store first synced (pinned).

    :raises AccountMismatchError: naming the store and both account ids, never a secret.
    """
    found = connection.account_id
    upgraded = store.account_id in connection.previous_account_ids  # recorded by an older release: adopted
    if store.account_id and found != store.account_id and not upgraded:
        raise AccountMismatchError(
            f"store {store.key}: its credentials open account {found}, but the store is pinned to account "
            f"{store.account_id} since its first sync; nothing was read or written. If the merchant really "
            f"changed stores, register it again: channel stores add {store.key} {store.channel} ... --replace",
            store=store.key,
            pinned=store.account_id,
            found=found,
        )


class _Runner:
    """What every job does around its work: find the store, resolve its secrets, connect within its budget."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        credentials: CredentialResolver,
        channels: Channels | None,
        *,
        http_timeout: float | None = None,
        budget_wait: float = MAX_WAIT,
    ) -> None:
        self.dsn, self.schema, self.credentials = dsn, schema, credentials
        self.pool = PostgresPool(dsn, schema)  # this process's jobs share its connections, migrated once
        self._channels = channels
        self.http_timeout, self.budget_wait = http_timeout, budget_wait

    def channel(self, store: RegisteredStore) -> Channel:
        if self._channels is None:
            self._channels = Channels.discover()
        return self._channels[store.channel]

    @contextmanager
    def connected(
        self, store: RegisteredStore, label: str, spent: dict[str, float] | None = None
    ) -> Iterator[tuple[Channel, Connection]]:
        """The store connected within its budget; ``spent["budget_wait"]`` gets the seconds its requests waited."""
        channel = self.channel(store)
        settings = store_settings(store, channel.info(), self.credentials)
        budget = None
        guess = channel.info().capabilities.cost_budget  # a store counting points: (maximum, restore rate)
        if store.requests_per_second is not None or guess is not None:
            budget = PostgresRateBudget(
                self.dsn,
                budget_key(store),
                store.requests_per_second or (guess[1] if guess else 1.0),
                schema=self.schema,
                max_wait=self.budget_wait,
                burst=guess[0] if guess else 1.0,
                pool=self.pool,
            )
        try:
            with (
                run_scope(label=label, budget=budget, timeout=self.http_timeout),
                keep_credentials(keeper_for(self.credentials, store, channel.info())),
                keep_lookups(store.lookups),  # what connect asks, kept on the store's row (written by finished)
                channel.connect(settings) as connection,
            ):
                check_account(store, connection)
                yield channel, connection
        finally:
            if budget is not None:
                budget.close()
                if spent is not None:
                    spent["budget_wait"] = budget.waited

    def database(self) -> PostgresStore:
        """The orders database, on one of this process's pooled connections (given back on close)."""
        return PostgresStore(self.dsn, schema=self.schema, pool=self.pool)

    @contextmanager
    def opened(self, store_key: str, label: str) -> Iterator[tuple[Channel, Connection, PostgresStore]]:
        """The database and the registered store ``store_key``, connected; an unknown key is an error."""
        with self.database() as db:
            store = StoreRegistry(db).get(store_key)
            if store is None:
                raise ConfigurationError(f"no store {store_key} in the registry (see `channel stores list`)")
            with self.connected(store, label) as (channel, connection):
                yield channel, connection, db


@contextmanager
def connected_store(
    dsn: str,
    store_key: str,
    *,
    credentials: CredentialResolver | None = None,
    schema: str = "public",
    channels: Channels | None = None,
    label: str | None = None,
) -> Iterator[tuple[Channel, Connection, PostgresStore]]:
    """A registered store, connected with its resolved credentials and its rate budget, and its database.

    What each job does around its work, for a host (or ``channel stores ship``) doing one thing by hand.

    :raises ConfigurationError: no store ``store_key`` in the registry, or its credentials cannot be resolved.
    """
    runner = _Runner(dsn, schema, credentials or DefaultCredentials(), channels)
    try:
        with runner.opened(store_key, label or f"{store_key}/manual/pid-{os.getpid()}") as opened:
            yield opened
    finally:
        runner.pool.close()  # this runner's pool ends with the call: no connection outlives it


def make_app(
    dsn: str,
    *,
    credentials: CredentialResolver | None = None,
    schema: str = "public",
    channels: Channels | None = None,
    on_summary: Callable[[str, ImportSummary], None] | None = None,
    on_finished: Callable[[str, dict[str, Any], float], None] | None = None,
    schedule: str | None = DEFAULT_SCHEDULE,
    stalled_after: float = 30.0,
    claim_lease: timedelta = DEFAULT_LEASE,
    keep: timedelta = DEFAULT_KEEP,
    detail: timedelta = DEFAULT_DETAIL,
    http_timeout: float | None = None,
    budget_wait: float = MAX_WAIT,
    metrics: WorkerMetrics | None = None,
) -> Any:
    """A ``procrastinate.App`` with the scheduling, sync and notification tasks.

    :param dsn: the PostgreSQL database holding procrastinate's queue, the registry and the orders.
    :param credentials: turns a store's credentials reference into its secret settings, at run time (default:
        :class:`~channel_core.fleet.credentials.DefaultCredentials`, ``env:`` and ``file:`` references).
    :param schema: the schema of the registry and orders tables (:class:`PostgresStore`).
    :param on_summary: called with each finished sync's summary (metrics, a host's own history).
    :param on_finished: called after every sync job, completed or not, with the store key, the run's
        record (what ``sync_runs`` holds) and its duration in seconds; ``channel worker`` prints it.
    :param schedule: the cron (seconds first-class: six fields) of the scheduling task; ``None``: no
        periodic scheduling (the host calls :func:`enqueue_due` or :func:`enqueue_sync` itself).
    :param stalled_after: seconds without a heartbeat after which a worker's jobs are recovered.
    :param claim_lease: how long a notifier's claim on an order outlives a worker that died holding it.
    :param keep: how long finished jobs and the daily totals of run history are kept; the daily
        ``channel_core.housekeeping`` task deletes what is older.
    :param detail: how long each run stays in ``sync_runs`` one by one (each store's latest run stays
        whatever its age); older runs are folded into per-store daily totals (``PostgresStore.daily_runs``).
    :param http_timeout: seconds any request of a job may take, capping the channel's own timeout.
    :param budget_wait: the longest a request waits for its slot in a store's shared rate budget; a
        longer queue stops the run (resumed later). ``claim_lease`` must outlast the timeout times the
        attempts plus this wait.
    :param metrics: record syncs, notifications, budget waits, jobs in flight and each tick's store counts
        there (:class:`~channel_core.fleet.metrics.WorkerMetrics`; ``channel worker --metrics-port``).
    """
    try:
        import procrastinate
        import procrastinate.exceptions
        from procrastinate import JobContext
        from procrastinate.jobs import Status
    except ImportError:  # pragma: no cover - only without the extra installed
        raise ConfigurationError(
            "the task engine needs procrastinate: pip install 'channel-integrations[engine]'"
        ) from None
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn, **_engine_pool_options()))
    runner = _Runner(
        dsn, schema, credentials or DefaultCredentials(), channels, http_timeout=http_timeout, budget_wait=budget_wait
    )

    @app.task(name=SYNC_TASK, queue=SYNC_QUEUE, retry=False, pass_context=True)
    def sync_store(context: JobContext, store_key: str) -> dict[str, Any]:
        started = time.monotonic()
        spent: dict[str, Any] = {}
        with metrics.job(SYNC_TASK) if metrics is not None else nullcontext():
            result = _sync_store(context, store_key, spent)
        seconds = time.monotonic() - started
        if metrics is not None and "channel" in spent:
            metrics.sync_finished(spent["channel"], result, seconds, spent.get("budget_wait", 0.0))
        if on_finished is not None:
            on_finished(store_key, result, seconds)
        return result

    def _count_notifications(channel: str, outcomes: list[NotificationOutcome]) -> None:
        if metrics is not None:
            for outcome in outcomes:
                metrics.notification(channel, _notification_result(outcome))

    def _sync_store(context: JobContext, store_key: str, spent: dict[str, Any]) -> dict[str, Any]:
        with runner.database() as db:
            registry = StoreRegistry(db)
            store = registry.get(store_key)
            if store is None:
                logger.warning("sync_store_unknown", store=store_key)
                return {"stopped": "not registered"}
            label = _label(store_key, "sync", context)
            account = store.account_id or ""
            spent["channel"] = store.channel
            try:
                with runner.connected(store, label, spent) as (channel, connection):
                    account = connection.account_id
                    summary = Importer(channel, connection, db).run()
                    retried = (
                        []  # a run stopped by the store's limits: its notifications would only meet them too
                        if summary.stopped in ("quota", "rate_limited")
                        else Notifier(channel, connection, db, lease=claim_lease).retry_pending()
                    )
                    _count_notifications(store.channel, retried)
            except (ChannelError, ConfigurationError) as exc:  # before or around the import: no summary
                stopped = "quota" if isinstance(exc, QuotaExhaustedError) else "error"
                registry.finished(store, account, stopped, str(exc), run={"stopped": stopped, "stop_error": str(exc)})
                logger.warning("sync_store_stopped", store=store_key, reason=stopped, error=str(exc))
                return {"stopped": stopped, "stop_error": str(exc)}
            except Exception as exc:  # a resolver's KeyError, a database error: recorded, never a raw traceback
                error = unexpected(exc)
                registry.finished(store, account, "error", error, run={"stopped": "error", "stop_error": error})
                logger.error("sync_store_failed", store=store_key, error=error)
                return {"stopped": "error", "stop_error": error}
            result = {**summary.as_dict(), "notifications_retried": len(retried)}
            registry.finished(store, account, summary.stopped, summary.stop_error, run=result)
        if on_summary is not None:
            on_summary(store_key, summary)
        return result

    @app.task(name=WEBHOOK_TASK, queue=SYNC_QUEUE, retry=False, pass_context=True)
    def sync_webhook_orders(context: JobContext, store_key: str) -> dict[str, Any]:
        """Every order the store's pending webhook events name, fetched once each (a burst coalesces), under
        the store's lock, fence and budget; the events are marked done when the sync completed."""
        with runner.database() as db:
            store = StoreRegistry(db).get(store_key)
            if store is None:
                return {"stopped": "not registered"}
            events = db.pending_webhook_events(store.channel, store_key)
            keys = list(dict.fromkeys(key for _, ids in events for key in ids))
            if not events:
                return {"orders": 0}
            try:
                with runner.connected(store, _label(store_key, "webhooks", context)) as (channel, connection):
                    summary = Importer(channel, connection, db).sync_orders(keys)
            except (ChannelError, ConfigurationError) as exc:  # the events stay pending; polling covers them
                logger.warning("webhook_sync_stopped", store=store_key, error=str(exc))
                return {"stopped": "error", "stop_error": str(exc)}
            if summary.completed:
                db.finish_webhook_events(store.channel, store_key, [event_id for event_id, _ in events])
            return {"events": len(events), "orders": len(keys), **summary.as_dict()}

    @app.task(name=NOTIFY_TASK, queue=NOTIFY_QUEUE, retry=False, pass_context=True)
    def notify_shipment(
        context: JobContext, store_key: str, shipment: dict[str, Any], queued_at: str | None = None
    ) -> dict[str, Any]:
        when = datetime.fromisoformat(queued_at) if queued_at else None
        parcel = from_dict(Shipment, shipment)
        try:
            with (
                metrics.job(NOTIFY_TASK) if metrics is not None else nullcontext(),
                runner.opened(store_key, _label(store_key, "notify", context)) as (channel, connection, db),
            ):
                notifier = Notifier(channel, connection, db, lease=claim_lease)
                outcome = notifier.notify(parcel, queued_at=when)
                _count_notifications(channel.name, [outcome])
        except InvalidShipmentError:  # parked in the ledger with the reason: the operator decides
            raise
        except (ChannelError, ConfigurationError) as exc:  # no connection (credentials, another account, the API)
            if not _keep_for_later(store_key, parcel, when, exc):
                raise
            logger.warning("notify_shipment_deferred", store=store_key, order_id=parcel.order_id, error=str(exc))
            return {"status": "pending", "pending": True, "message": str(exc)}
        return {
            "notification_id": outcome.notification_id,
            "status": str(outcome.result.status),
            "pending": outcome.pending,
            "message": outcome.result.message,
        }

    def _keep_for_later(store_key: str, shipment: Shipment, queued_at: datetime | None, exc: Exception) -> bool:
        """A shipment whose job could not reach its store waits in the ledger, under the store's pinned
        account, for the store's next sync to send it: never lost with the job. False when the store has
        no pinned account yet (its first sync has not run): the job fails, visibly."""
        with runner.database() as db:
            store = StoreRegistry(db).get(store_key)
            if store is None or not store.account_id:
                return False
            nid = notification_id(store.channel, store.account_id, shipment)
            if db.get_notification(nid) is None:
                db.save_notification(
                    NotificationRecord(
                        nid, store.channel, store.account_id, shipment, NotificationState.PENDING, (),
                        f"not sent yet: {exc}", 0, created_at=queued_at,
                    )
                )  # fmt: skip
        return True

    async def schedule_stores(timestamp: int) -> dict[str, Any]:
        recovered = 0
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
            try:
                if job.task_name == SYNC_TASK:  # its worker died: fail it (freeing the lock), queue the store afresh
                    await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                    await _defer_sync_async(app, str(job.task_kwargs["store_key"]))
                elif job.task_name == NOTIFY_TASK:  # the ledger's claim and current-state check make a retry safe
                    await app.job_manager.retry_job(job)
                else:
                    continue
            except procrastinate.exceptions.ProcrastinateException as exc:  # another scheduler got there first
                logger.info("stalled_job_taken", job=job.id, error=str(exc))
                continue
            logger.warning("stalled_job_recovered", job=job.id, task=job.task_name)
            recovered += 1
        queued = await enqueue_due_async(app, dsn, schema, pool=runner.pool)
        totals = await asyncio.to_thread(_totals, dsn, schema, runner.pool)
        lag = float(totals["scheduling_lag_seconds"])
        if metrics is not None:
            metrics.tick(lag, totals)
        logger.info(
            "stores_scheduled", queued=len(queued), recovered=recovered, scheduling_lag=round(lag, 3),
            overdue=totals["overdue"],
        )  # fmt: skip
        return {"queued": queued, "recovered": recovered, "scheduling_lag": lag}

    @app.task(name=HOUSEKEEPING_TASK, queue=SCHEDULE_QUEUE, retry=False, queueing_lock=HOUSEKEEPING_TASK)
    async def housekeeping(timestamp: int) -> dict[str, Any]:
        def prune() -> tuple[int, int]:
            with runner.database() as db:  # every run stays in detail for `detail`, then as a daily total
                return db.roll_up_runs(min(detail, keep)), db.prune_daily_runs(keep)

        rolled, days = await asyncio.to_thread(prune)
        hours = max(1, int(keep.total_seconds() // 3600))
        for queue in (SYNC_QUEUE, NOTIFY_QUEUE, SCHEDULE_QUEUE):
            await app.job_manager.delete_old_jobs(nb_hours=hours, queue=queue, include_failed=True)
        logger.info("housekeeping_done", runs_rolled_up=rolled, daily_rows_deleted=days, kept_hours=hours)
        return {"runs_rolled_up": rolled, "daily_rows_deleted": days}

    if schedule is not None:
        app.periodic(cron=HOUSEKEEPING_SCHEDULE, periodic_id="channel-housekeeping")(housekeeping)

    # One waiting scheduling job at most: while every worker slot is busy, ticks do not pile up.
    task = app.task(name=SCHEDULE_TASK, queue=SCHEDULE_QUEUE, retry=False, queueing_lock=SCHEDULE_TASK)(schedule_stores)
    if schedule is not None:
        app.periodic(cron=schedule, periodic_id="channel-schedule")(task)
    return app


def _engine_pool_options() -> dict[str, Any]:
    """procrastinate's connection pool, two round trips cheaper per query: autocommit (each of its queries is
    one statement calling one of its functions, so no BEGIN and COMMIT around it) and the liveness check
    only for a connection idle for a while (procrastinate checks every connection on every checkout)."""
    import weakref

    import psycopg_pool

    returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def check(connection: Any) -> None:
        if time.monotonic() - returned.get(connection, 0.0) > IDLE_RECHECK:
            await psycopg_pool.AsyncConnectionPool.check_connection(connection)

    async def reset(connection: Any) -> None:
        returned[connection] = time.monotonic()

    async def configure(connection: Any) -> None:
        await connection.set_autocommit(True)  # a client-side setting: no round trip

    def factory(**options: Any) -> Any:
        options["check"], options["reset"], options["configure"] = check, reset, configure
        return psycopg_pool.AsyncConnectionPool(**options)

    return {"pool_factory": factory}


def prepare_database(dsn: str, schema: str = "public") -> None:
    """Create or upgrade procrastinate's schema and the channel tables, once, however many workers start."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with PostgresStore(dsn, schema=schema):
        pass  # its migrations run under their own advisory lock
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("SELECT pg_advisory_lock(hashtext('channel_core.procrastinate_schema'))")
        try:
            row = db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] is None:
                db.execute(SchemaManager.get_schema())
        finally:
            db.execute("SELECT pg_advisory_unlock(hashtext('channel_core.procrastinate_schema'))")


def enqueue_sync(app: Any, store_key: str) -> bool:
    """Queue one sync of ``store_key``; ``False`` when one is already waiting for it."""
    import procrastinate.exceptions

    key = _sync_lock(store_key)
    try:
        app.tasks[SYNC_TASK].configure(lock=key, queueing_lock=key).defer(store_key=store_key)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


def _totals(dsn: str, schema: str, pool: PostgresPool | None = None) -> dict[str, Any]:
    with PostgresStore(dsn, schema=schema, pool=pool) as db:
        return StoreRegistry(db).summary()


def enqueue_webhook_sync(app: Any, store_key: str) -> bool:
    """Queue the sync of ``store_key``'s pending webhook events; ``False`` when one is already waiting (it will
    take these events too). It shares the store's lock with its full syncs, so the two never overlap."""
    import procrastinate.exceptions

    try:
        app.tasks[WEBHOOK_TASK].configure(lock=_sync_lock(store_key), queueing_lock=f"webhooks:{store_key}").defer(
            store_key=store_key
        )
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


async def _defer_sync_async(app: Any, store_key: str) -> bool:
    import procrastinate.exceptions

    key = _sync_lock(store_key)
    try:
        await app.tasks[SYNC_TASK].configure(lock=key, queueing_lock=key).defer_async(store_key=store_key)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


IDLE_RECHECK = 2.0  # seconds: a pooled connection idle longer is asked a trivial query before reuse
CLAIM_BATCH = 500  # stores claimed per statement; a tick claims batch after batch until none is due


def _claim_due(dsn: str, schema: str, batch: int = CLAIM_BATCH, pool: PostgresPool | None = None) -> list[str]:
    with PostgresStore(dsn, schema=schema, pool=pool) as db:
        return StoreRegistry(db).claim_due(batch)


def enqueue_due(app: Any, dsn: str, schema: str = "public", *, batch: int = CLAIM_BATCH) -> list[str]:
    """Queue a sync of every registered store that is due, in batches until none is left; the keys queued."""
    queued: list[str] = []
    while True:
        keys = _claim_due(dsn, schema, batch)
        queued += _defer_syncs(app, keys)
        if len(keys) < batch:
            return queued


def _sync_jobs(app: Any, keys: list[str]) -> list[Any]:
    task = app.tasks[SYNC_TASK]
    return [
        task.configure(lock=_sync_lock(key), queueing_lock=_sync_lock(key)).make_new_job(store_key=key) for key in keys
    ]


def _defer_syncs(app: Any, keys: list[str]) -> list[str]:
    """:func:`_defer_syncs_async`, for a caller without an event loop."""
    import procrastinate.exceptions

    if not keys:
        return []
    try:
        app.job_manager.batch_defer_jobs(jobs=_sync_jobs(app, keys))
    except procrastinate.exceptions.AlreadyEnqueued:
        return [key for key in keys if enqueue_sync(app, key)]
    return list(keys)


async def enqueue_due_async(
    app: Any, dsn: str, schema: str = "public", *, batch: int = CLAIM_BATCH, pool: PostgresPool | None = None
) -> list[str]:
    queued: list[str] = []
    while True:
        keys = await asyncio.to_thread(_claim_due, dsn, schema, batch, pool)
        queued += await _defer_syncs_async(app, keys)
        if len(keys) < batch:
            return queued


async def _defer_syncs_async(app: Any, keys: list[str]) -> list[str]:
    """Queue a sync of each of ``keys`` in one statement; the keys queued. When one of them is still waiting
    from an earlier tick (its queueing lock refuses the whole statement), they go one by one instead."""
    import procrastinate.exceptions

    if not keys:
        return []
    try:
        await app.job_manager.batch_defer_jobs_async(jobs=_sync_jobs(app, keys))
    except procrastinate.exceptions.AlreadyEnqueued:
        return [key for key in keys if await _defer_sync_async(app, key)]
    return list(keys)


def enqueue_shipment(app: Any, store_key: str, shipment: Shipment) -> int:
    """Queue a shipment notification for a registered store; the job id.

    Safe to repeat: the ledger gives the same shipment the same notification id, and the
    channel checks the store's current state before it writes. The job carries the database's time of
    the call: a correction queued later supersedes this shipment even when the jobs run the other way round.
    """
    row = app.connector.get_sync_connector().execute_query_one("SELECT clock_timestamp() AS now")
    job_id: int = app.tasks[NOTIFY_TASK].defer(
        store_key=store_key, shipment=to_dict(shipment), queued_at=row["now"].isoformat()
    )
    return job_id
