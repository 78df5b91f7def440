"""Incremental import: drive ``fetch_orders`` over overlapping windows and store every page.

The invariant this module keeps: *after any sequence of runs, interruptions and
store activity, once the store is quiet, one more completed run leaves the
database equal, order by order and field by field, to the store.* The rules
that keep it:

* the checkpoint carries a promise, ``complete_until``: every order modified
  before that instant of the **store's** clock is stored with its current
  content. Only a run that read its whole window consistently moves it, to the
  instant the channel reports on its last page (``OrderPage.complete_until``);
* a run reads ``[complete_until - margin, open end)``. Orders modified since
  ``complete_until`` are always fetched in full; version tokens may save detail
  calls only in the overlap before it;
* each page's orders, skipped orders, failures and the resume cursor are
  committed in one transaction; an interrupted run resumes from the last
  committed page and keeps the old promise until its window completes; a read
  the channel cannot settle (:class:`~channel_core.errors.InconsistentReadError`)
  drops the cursor, so the window is read again from its first page;
* an order whose canonical fingerprint is unchanged is not written again; a
  changed one is updated in place, never duplicated;
* an order whose fetch failed is counted once per run, asked for again with
  backoff, and parked after ``max_failed_attempts`` until it changes (it is then
  listed, and fetched, again) or an operator retries it;
* a run takes a **fence** when it starts and checks it in every page's
  transaction: once a later run of the same store has taken one (two workers,
  or a worker presumed dead), this run stops and writes nothing more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from channel_core.errors import (
    ChannelError,
    FencedOutError,
    InconsistentReadError,
    QuotaExhaustedError,
    RateLimitedError,
)
from channel_core.hooktypes import Connection, OrderPage, OrderQuery
from channel_core.logs import get_logger
from channel_core.registry import Channel
from channel_core.sync.accounts import adopt_account, nothing_to_adopt
from channel_core.sync.store import Checkpoint, OrderStore, RunStart, WriteOutcome

__all__ = ["DEFAULT_MARGIN", "EPOCH", "MAX_FAILED_ATTEMPTS", "ImportSummary", "Importer"]

logger = get_logger(__name__)
DEFAULT_MARGIN = timedelta(minutes=15)
EPOCH = datetime(2010, 1, 15, tzinfo=UTC)
MAX_FAILED_ATTEMPTS = 5


@dataclass
class ImportSummary:
    """What one run did."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    parked: int = 0
    pages: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None  # None when the window completed; else why it stopped
    store_time_unknown: bool = False  # the store reported no clock: the promise stayed where it was
    stop_error: str | None = None  # the error that stopped the run, if any
    window_start: datetime | None = None
    complete_until: datetime | None = None
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
            "parked": self.parked,
            "pages": self.pages,
            "skip_reasons": dict(self.skip_reasons),
            "failures": dict(self.failures),
            "stopped": self.stopped,
            "stop_error": self.stop_error,
            "store_time_unknown": self.store_time_unknown,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "complete_until": self.complete_until.isoformat() if self.complete_until else None,
            "next_start": self.next_start.isoformat() if self.next_start else None,
        }


@dataclass
class _RunState:
    start: datetime
    since: datetime
    complete_until: datetime | None
    fence: int = 0
    promise: datetime | None = None
    clock_lag: timedelta = timedelta(0)  # the stored lag; a completed run replaces it with the channel's
    succeeded: set[str] = field(default_factory=set)


class Importer:
    """Runs one incremental sync of one connected store into an :class:`OrderStore`.

    :param margin: how far before ``complete_until`` the next window starts
        (covers the store's own clock imprecision; versions keep it cheap).
    :param initial_start: where the first run's window starts.
    :param rescan_from: read from this instant this run even when the checkpoint
        is later (orders stored unchanged cost no detail call).
    :param clock: the host's clock, used for failed-order backoff only: a promise
        always comes from the store's clock, and a run whose store reports none keeps
        the last promise (``store_time_unknown``).
    """

    def __init__(
        self,
        channel: Channel,
        connection: Connection,
        store: OrderStore,
        *,
        margin: timedelta = DEFAULT_MARGIN,
        initial_start: datetime = EPOCH,
        rescan_from: datetime | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_failed_attempts: int = MAX_FAILED_ATTEMPTS,
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.store = store
        self.margin = margin
        self.initial_start = initial_start
        self.rescan_from = rescan_from
        self.clock = clock
        self.max_failed_attempts = max_failed_attempts

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_page: Callable[[OrderPage, ImportSummary], None] | None = None,
    ) -> ImportSummary:
        name, account = self.channel.name, self.connection.account_id
        log = logger.bind(channel=name, account_id=account)
        run_start = self.clock()
        begun = self._begin(now=run_start)
        saved = begun.checkpoint
        start = saved.next_start if saved and saved.next_start else self.initial_start
        complete_until = saved.complete_until if saved else None
        resume = None
        if saved and saved.cursor:
            since, resume = saved.cursor_since or start, saved.cursor
            log.info("import_resume", window_start=since.isoformat())
        else:
            since = min(start, self.rescan_from) if self.rescan_from is not None else start
        state = _RunState(
            start=start,
            since=since,
            complete_until=complete_until,
            fence=begun.fence,
            clock_lag=saved.clock_lag if saved else timedelta(0),
        )
        summary = ImportSummary(window_start=since)
        query = OrderQuery(
            modified_since=since,
            complete_until=complete_until,
            known_version=lambda order_id: self.store.known_version(name, account, order_id),
            known_versions=lambda order_ids: self.store.known_versions(name, account, order_ids),
            resume=resume,
            retry_order_ids=begun.failed_order_ids,
            clock_lag=state.clock_lag,
        )
        try:
            for page in self.channel.fetch_orders(self.connection, query):
                self._store_page(page, summary, state)
                if on_page is not None:
                    on_page(page, summary)
                if should_stop() and page.checkpoint is not None:
                    summary.stopped = "interrupted"
                    break
        except FencedOutError as exc:
            self._stop(summary, "fenced", exc)
        except QuotaExhaustedError as exc:
            self._stop(summary, "quota", exc)
        except RateLimitedError as exc:  # a wait longer than the retry budget: resume from the checkpoint later
            self._stop(summary, "rate_limited", exc)
        except InconsistentReadError as exc:
            self._stop(summary, "inconsistent", exc)
            self._commit_checkpoint(  # read it again from page 1
                state, Checkpoint(start, complete_until, clock_lag=state.clock_lag), summary
            )
        except ChannelError as exc:  # API failures after retries, unreadable listing replies
            self._stop(summary, "error", exc)
        if summary.completed:
            promise = state.promise
            if promise is None:  # no store clock: the host's is no substitute. Keep the promise, read more
                summary.store_time_unknown = True
                log.warning(
                    "store_time_unknown",
                    hint="the store's replies carried no usable Date header; the next run reads from the same "
                    "point again (more reading, nothing missed) until they do",
                )
                promise = complete_until
            next_start = promise - self.margin if promise is not None else start
            self._commit_checkpoint(state, Checkpoint(next_start, promise, clock_lag=state.clock_lag), summary)
            if summary.completed:
                summary.complete_until, summary.next_start = promise, next_start
        if not summary.completed:
            summary.complete_until, summary.next_start = complete_until, start
        summary.failed = len(summary.failures)
        log.info("import_finished", **{k: v for k, v in summary.as_dict().items() if k != "failures"})
        return summary

    def sync_orders(self, order_ids: Sequence[str]) -> ImportSummary:
        """A targeted sync: fetch exactly ``order_ids`` (a webhook named them) and store them as a run would.

        Nothing is listed and the checkpoint and promise stay as they are: polling remains the source of
        truth for completeness. The run takes the store's fence like any other, so a full run of the
        same store that started earlier stops rather than write over it; an order that cannot be imported
        yet is skipped or failed exactly as polling would.
        """
        name, account = self.channel.name, self.connection.account_id
        begun = self._begin(now=self.clock())
        saved = begun.checkpoint
        start = saved.next_start if saved and saved.next_start else self.initial_start
        state = _RunState(
            start=start,
            since=start,
            complete_until=saved.complete_until if saved else None,
            fence=begun.fence,
            clock_lag=saved.clock_lag if saved else timedelta(0),
        )
        summary = ImportSummary(window_start=start)
        wanted = tuple(dict.fromkeys(str(i) for i in order_ids if str(i)))
        if not wanted:
            return summary
        query = OrderQuery(modified_since=start, only_order_ids=wanted, clock_lag=state.clock_lag)
        try:
            for page in self.channel.fetch_orders(self.connection, query):
                self._store_page(page, summary, state, keep_checkpoint=True)
        except FencedOutError as exc:
            self._stop(summary, "fenced", exc)
        except QuotaExhaustedError as exc:
            self._stop(summary, "quota", exc)
        except RateLimitedError as exc:
            self._stop(summary, "rate_limited", exc)
        except ChannelError as exc:
            self._stop(summary, "error", exc)
        summary.complete_until, summary.next_start = state.complete_until, start
        summary.failed = len(summary.failures)
        logger.info("orders_synced", channel=name, account_id=account, orders=len(wanted), stopped=summary.stopped)
        return summary

    def _begin(self, *, now: datetime) -> RunStart:
        """The run's fence, checkpoint and failed orders due; rows an older release kept under another id of
        this store are adopted first (found by the same statement)."""
        name, account = self.channel.name, self.connection.account_id
        previous = self.connection.previous_account_ids
        begun = self.store.begin_run(name, account, now=now, previous_account_ids=previous)
        if begun.adopt_from:
            adopt_account(self.store, self.connection)
            return self.store.begin_run(name, account, now=now)
        nothing_to_adopt(self.store, self.connection)
        return begun

    def _commit_checkpoint(self, state: _RunState, checkpoint: Checkpoint, summary: ImportSummary) -> None:
        name, account = self.channel.name, self.connection.account_id
        try:
            self.store.save_checkpoint(name, account, checkpoint, fence=state.fence)
        except FencedOutError as exc:
            self._stop(summary, "fenced", exc)

    @staticmethod
    def _stop(summary: ImportSummary, reason: str, exc: ChannelError) -> None:
        summary.stopped, summary.stop_error = reason, str(exc)
        level = "warning" if reason in ("quota", "rate_limited", "inconsistent", "fenced") else "error"
        getattr(logger, level)("import_stopped", reason=reason, error=str(exc))

    def _store_page(
        self, page: OrderPage, summary: ImportSummary, state: _RunState, *, keep_checkpoint: bool = False
    ) -> None:
        name, account = self.channel.name, self.connection.account_id
        if not (page.orders or page.skipped or page.failed):
            # Nothing to write: no transaction. The stored resume point stays where it was (an interrupted
            # run reads this page again: more reading, nothing missed); the final checkpoint moves it.
            summary.unchanged += len(page.unchanged)
            self._page_read(page, summary, state)
            return
        with self.store.transaction():
            self.store.check_fence(name, account, state.fence)  # first: a run that lost its store writes nothing
            outcomes = self.store.save_orders(
                account, [(order, page.versions.get(order.order_id)) for order in page.orders]
            )
            for order, outcome in zip(page.orders, outcomes, strict=True):
                if outcome == WriteOutcome.INSERTED:
                    summary.imported += 1
                elif outcome == WriteOutcome.UPDATED:
                    summary.updated += 1
                else:
                    summary.unchanged += 1
                self._succeeded(order.order_id, summary, state)
            for skipped in page.skipped:
                self.store.save_skipped(
                    name, account, skipped.order_id, skipped.reason, page.versions.get(skipped.order_id)
                )
                summary.skipped += 1
                summary.skip_reasons[skipped.reason] += 1
                self._succeeded(skipped.order_id, summary, state)
            for failed in page.failed:
                if failed.order_id in summary.failures or failed.order_id in state.succeeded:
                    continue  # counted once per run; a later success in the same run wins
                record = self.store.save_failed(
                    name,
                    account,
                    failed.order_id,
                    failed.error,
                    now=self.clock(),
                    max_attempts=self.max_failed_attempts,
                    version=page.versions.get(failed.order_id),
                )
                summary.failures[failed.order_id] = failed.error
                if record.parked:
                    summary.parked += 1
                    logger.warning(
                        "order_parked",
                        channel=name,
                        order_id=failed.order_id,
                        attempts=record.attempts,
                        error=failed.error,
                    )
            summary.unchanged += len(page.unchanged)
            if keep_checkpoint:
                summary.pages += 1
                return
            self.store.save_checkpoint(
                name,
                account,
                Checkpoint(
                    state.start,
                    state.complete_until,
                    page.checkpoint,
                    state.since if page.checkpoint else None,
                    clock_lag=state.clock_lag,
                ),
            )
        self._page_read(page, summary, state)

    @staticmethod
    def _page_read(page: OrderPage, summary: ImportSummary, state: _RunState) -> None:
        if page.complete_until is not None:
            state.promise = page.complete_until
            if page.clock_lag is not None:
                state.clock_lag = max(state.clock_lag, page.clock_lag)
        summary.pages += 1

    @staticmethod
    def _succeeded(order_id: str, summary: ImportSummary, state: _RunState) -> None:
        state.succeeded.add(order_id)
        summary.failures.pop(order_id, None)
