"""Syncs on procrastinate, the PostgreSQL task engine: one running sync per store, nothing home-made.

``pip install 'channel-integrations[engine]'``. A host builds the app once with :func:`make_app`,
then defers work with :func:`enqueue_sync` and runs workers (``app.run_worker(...)`` or
``procrastinate worker``). Each ``channel_core.sync_store`` job runs one :class:`Importer` pass
and retries the store's due notifications, on :class:`PostgresStore`.

* **One sync per store**: every job carries the lock ``sync:<store>``, so procrastinate never
  runs two at once; the fence (:meth:`OrderStore.take_fence`) still stops a worker that lost
  its store some other way. ``queueing_lock`` is the same key, so a store that is already
  waiting is not queued twice (:func:`enqueue_sync` returns ``False``).
* **No engine retries**: the next sync resumes from the checkpoint, and a retry waiting on its
  backoff would hold the store's lock (procrastinate issues #1599, #1543, #1446).
* **Run history**: every finished sync's summary goes to ``sync_runs`` (:meth:`PostgresStore.runs`).
* **Credentials stay with the host**: a job carries only the store's key; ``resolve`` turns it
  into the channel name and settings (secrets included) when the job runs, and nothing secret
  is written to PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.registry import Channels
from channel_core.sync.importer import Importer, ImportSummary
from channel_core.sync.notifier import Notifier
from channel_core.sync.postgres import PostgresStore

__all__ = ["SYNC_QUEUE", "SYNC_TASK", "StoreTarget", "enqueue_sync", "make_app"]

SYNC_TASK = "channel_core.sync_store"
SYNC_QUEUE = "channel-sync"


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """What ``resolve`` returns for a store key: the channel and its connect settings, at run time."""

    channel: str
    settings: Mapping[str, Any]


def make_app(
    dsn: str,
    resolve: Callable[[str], StoreTarget],
    *,
    schema: str = "public",
    channels: Channels | None = None,
    on_summary: Callable[[str, ImportSummary], None] | None = None,
) -> Any:
    """A ``procrastinate.App`` with the ``channel_core.sync_store`` task.

    :param dsn: the PostgreSQL database holding procrastinate's queue and the orders.
    :param resolve: store key -> :class:`StoreTarget` (a host's credential lookup).
    :param schema: the schema of the orders tables (:class:`PostgresStore`).
    :param on_summary: called with each finished sync's summary (run history, metrics).
    """
    try:
        import procrastinate
    except ImportError:  # pragma: no cover - only without the extra installed
        raise ConfigurationError(
            "the task engine needs procrastinate: pip install 'channel-integrations[engine]'"
        ) from None
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    installed = channels

    @app.task(name=SYNC_TASK, queue=SYNC_QUEUE, retry=False)
    def sync_store(store_key: str) -> dict[str, Any]:
        nonlocal installed
        target = resolve(store_key)
        installed = installed or Channels.discover()
        channel = installed[target.channel]
        with PostgresStore(dsn, schema=schema) as db, channel.connect(target.settings) as connection:
            summary = Importer(channel, connection, db).run()
            retried = Notifier(channel, connection, db).retry_pending()
            result = {**summary.as_dict(), "notifications_retried": len(retried)}
            db.record_run(channel.name, connection.account_id, result, store_key)  # the store's run history
        if on_summary is not None:
            on_summary(store_key, summary)
        return result

    return app


def enqueue_sync(app: Any, store_key: str) -> bool:
    """Queue one sync of ``store_key``; ``False`` when one is already waiting for it."""
    import procrastinate.exceptions

    key = f"sync:{store_key}"
    try:
        app.tasks[SYNC_TASK].configure(lock=key, queueing_lock=key).defer(store_key=store_key)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True
