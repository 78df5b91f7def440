"""Incremental import: drive ``fetch_orders`` over overlapping windows and store every page.

Rules (each one protects against losing or duplicating an order):

* a run's window is ``[start, run start]``; the next run starts at
  ``min(run start, newest modified_at seen) - margin``, never earlier than this run's start;
* each page's orders, skipped orders, failures and the resume checkpoint are
  committed in one transaction, after the page is complete; an interrupted run
  (Ctrl-C, quota, error) resumes from the last committed page;
* an order whose canonical fingerprint is unchanged is not written again; a
  changed one is updated in place, never duplicated;
* orders whose fetch failed are asked for again, by id, at the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from channel_core.errors import ChannelError, QuotaExhaustedError
from channel_core.hooktypes import Connection, OrderPage, OrderQuery
from channel_core.logs import get_logger
from channel_core.registry import Channel
from channel_core.sync.store import Checkpoint, OrderStore, WriteOutcome

__all__ = ["DEFAULT_MARGIN", "EPOCH", "ImportSummary", "Importer"]

logger = get_logger(__name__)
DEFAULT_MARGIN = timedelta(minutes=15)
EPOCH = datetime(2010, 1, 15, tzinfo=UTC)


@dataclass
class ImportSummary:
    """What one run did."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    pages: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None  # None when the window completed; else why it stopped
    window_start: datetime | None = None
    window_end: datetime | None = None
    next_start: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.stopped is None

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "pages": self.pages,
            "skip_reasons": dict(self.skip_reasons),
            "failures": dict(self.failures),
            "stopped": self.stopped,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "next_start": self.next_start.isoformat() if self.next_start else None,
        }


class Importer:
    """Runs one incremental sync of one connected store into an :class:`OrderStore`."""

    def __init__(
        self,
        channel: Channel,
        connection: Connection,
        store: OrderStore,
        *,
        margin: timedelta = DEFAULT_MARGIN,
        initial_start: datetime = EPOCH,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.store = store
        self.margin = margin
        self.initial_start = initial_start
        self.clock = clock

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_page: Callable[[OrderPage, ImportSummary], None] | None = None,
    ) -> ImportSummary:
        name, account = self.channel.name, self.connection.account_id
        log = logger.bind(channel=name, account_id=account)
        saved = self.store.load_checkpoint(name, account)
        start = saved.next_start if saved and saved.next_start else self.initial_start
        run_start = self.clock()
        summary = ImportSummary()
        if saved and saved.cursor and saved.cursor_until:
            since, until, resume = saved.cursor_since or start, saved.cursor_until, saved.cursor
            log.info("import_resume", window_end=until.isoformat())
        else:
            since, until, resume = start, run_start, None
        summary.window_start, summary.window_end = since, until
        query = OrderQuery(
            modified_since=since,
            modified_until=until,
            known_version=lambda order_id: self.store.known_version(name, account, order_id),
            resume=resume,
            retry_order_ids=tuple(self.store.failed_order_ids(name, account)),
        )
        newest: datetime | None = None
        try:
            for page in self.channel.fetch_orders(self.connection, query):
                newest = self._store_page(page, summary, newest, start, since, until)
                if on_page is not None:
                    on_page(page, summary)
                if should_stop() and page.checkpoint is not None:
                    summary.stopped = "interrupted"
                    break
        except QuotaExhaustedError as exc:
            summary.stopped = "quota"
            summary.failures["_run"] = str(exc)
            log.warning("import_stopped", reason="quota", error=str(exc))
        except ChannelError as exc:  # API failures after retries, unreadable listing replies
            summary.stopped = "error"
            summary.failures["_run"] = str(exc)
            log.error("import_stopped", reason="error", error=str(exc))
        if summary.completed:
            candidate = min(until, newest) if newest is not None else until
            next_start = max(start, candidate - self.margin)
            self.store.save_checkpoint(name, account, Checkpoint(next_start))
            summary.next_start = next_start
        else:
            summary.next_start = start
        log.info("import_finished", **{k: v for k, v in summary.as_dict().items() if k != "failures"})
        return summary

    def _store_page(
        self,
        page: OrderPage,
        summary: ImportSummary,
        newest: datetime | None,
        start: datetime,
        since: datetime,
        until: datetime,
    ) -> datetime | None:
        name, account = self.channel.name, self.connection.account_id
        with self.store.transaction():
            for order in page.orders:
                outcome = self.store.save_order(account, order, page.versions.get(order.order_id))
                if outcome == WriteOutcome.INSERTED:
                    summary.imported += 1
                elif outcome == WriteOutcome.UPDATED:
                    summary.updated += 1
                else:
                    summary.unchanged += 1
                if newest is None or order.modified_at > newest:
                    newest = order.modified_at
            for skipped in page.skipped:
                self.store.save_skipped(
                    name, account, skipped.order_id, skipped.reason, page.versions.get(skipped.order_id)
                )
                summary.skipped += 1
                summary.skip_reasons[skipped.reason] += 1
            for failed in page.failed:
                self.store.save_failed(name, account, failed.order_id, failed.error)
                summary.failed += 1
                summary.failures[failed.order_id] = failed.error
            summary.unchanged += len(page.unchanged)
            self.store.save_checkpoint(
                name,
                account,
                Checkpoint(
                    start,
                    page.checkpoint,
                    since if page.checkpoint else None,
                    until if page.checkpoint else None,
                ),
            )
        summary.pages += 1
        return newest
