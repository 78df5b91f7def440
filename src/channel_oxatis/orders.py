"""Streaming an Oxatis modification window as canonical order pages.

The paging strategy (measured against the alternatives in ``docs/oxatis.md``):

* summaries are listed **newest first over an open-ended window**
  (``SetOrderDesc=true``, no ``OrderDateEnd``). Whether the store sorts by
  modification or by creation time, an order modified or created while we
  page can only move *forward* in that list, pushing the others back: an order
  not yet read can never slide onto a page already read, so the worst a busy
  store can do is make us read a summary twice (no second detail call);
* the run's promise (``OrderPage.complete_until``) is the store's clock,
  measured from the ``Date`` header of a reply received *before* the first
  listing request: every order modified before it is at a position we read.
  The host's clock plays no part;
* when ``OrderQuery.complete_until`` is known, two listings: orders modified
  since then are all fetched in full; then the overlap before it, where an
  unchanged summary version saves the detail call;
* ``TotalItems`` can only fall if orders are deleted while we page; then the
  listing restarts from page 1 (known versions cost nothing) at most
  ``MAX_RESCANS`` times, after which the run stops with
  :class:`~channel_core.errors.InconsistentReadError` and no promise.

Detail calls run in parallel, with a bounded number in flight, and the next list
page is read while the current page's details are fetched (pages are still
yielded, and checkpointed, strictly in order).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channel_core.errors import (
    ChannelAPIError,
    ChannelError,
    InconsistentReadError,
    PayloadError,
    QuotaExhaustedError,
    RateLimitedError,
)
from channel_core.hooktypes import FailedOrder, OrderPage, OrderQuery
from channel_core.logs import get_logger
from channel_core.models import Order, SkippedOrder
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import MappingContext, summary_version, to_order, to_utc
from channel_oxatis.storetime import wall_floor, wall_time

__all__ = ["MAX_RESCANS", "OLDEST_ALLOWED", "STORE_CLOCK_TOLERANCE", "iter_order_pages"]

logger = get_logger(__name__)

OLDEST_ALLOWED = datetime(2010, 1, 15, tzinfo=UTC)  # oxatis-api.md §1.8: no earlier dates
MAX_RESCANS = 3
# The Date header comes from the web server; order timestamps from the store's database.
STORE_CLOCK_TOLERANCE = timedelta(seconds=5)
# A lag measured on an order placed longer ago than this says more about the order than about the clocks.
LAG_CREDIBLE = timedelta(minutes=15)
ZONE_SUSPECT_AFTER = timedelta(minutes=10)
PAGES_AHEAD = 1  # list pages read (and their details queued) before the oldest pending page is stored

Outcome = Order | SkippedOrder | FailedOrder


@dataclass(frozen=True, slots=True)
class _Listing:
    """One listing of a run: orders modified in ``[since, until]`` (``until=None``: open-ended)."""

    since: datetime
    until: datetime | None
    trust_versions: bool  # may an unchanged summary version save the detail call?


def _fetch_one(
    conn: OxatisConnection, ctx: MappingContext, order_id: str, summary: Mapping[str, Any] | None
) -> Outcome:
    """Fetch and map one order; nothing from one order can escape and stop the run."""
    try:
        raw = conn.client.order_details(order_id)
    except (QuotaExhaustedError, RateLimitedError):  # the store's limits stop the run; the order did nothing
        raise
    except PayloadError as exc:
        if exc.order_id is None:  # the reply itself was unreadable (malformed XML, DTD): try again
            logger.warning("order_fetch_failed", channel="oxatis", order_id=order_id, error=str(exc))
            return FailedOrder(order_id, str(exc))
        logger.warning("order_invalid", channel="oxatis", order_id=order_id, error=str(exc))
        return SkippedOrder(order_id, f"invalid order data: {exc}")
    except ChannelAPIError as exc:
        logger.warning("order_fetch_failed", channel="oxatis", order_id=order_id, error=str(exc))
        return FailedOrder(order_id, str(exc))
    try:
        if summary is not None and raw.get("Shipped") is None and summary.get("Shipped") is not None:
            raw = {**raw, "Shipped": summary["Shipped"]}  # details sometimes omit Shipped (§2.3)
        return to_order(raw, ctx)
    except (QuotaExhaustedError, RateLimitedError):  # a stock-location lookup hit a limit
        raise
    except ChannelAPIError as exc:
        logger.warning("order_fetch_failed", channel="oxatis", order_id=order_id, error=str(exc))
        return FailedOrder(order_id, str(exc))
    except Exception as exc:  # a mapping defect must cost one order, never the run
        message = f"could not map the order: {type(exc).__name__}: {exc}"
        logger.error("order_mapping_failed", channel="oxatis", order_id=order_id, error=message)
        return FailedOrder(order_id, message)


def _page(outcomes: list[Outcome], **kwargs: Any) -> OrderPage:
    return OrderPage(
        orders=tuple(o for o in outcomes if isinstance(o, Order)),
        skipped=tuple(o for o in outcomes if isinstance(o, SkippedOrder)),
        failed=tuple(o for o in outcomes if isinstance(o, FailedOrder)),
        **kwargs,
    )


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where an interrupted run stopped: its listings, the one in progress, the next page and its promise."""

    listings: tuple[_Listing, ...]
    index: int
    next_page: int
    page_size: int
    promise: datetime | None
    total: int | None = None  # TotalItems of the listing in progress when its last page was stored

    def dump(self) -> str:
        return json.dumps(
            {
                "v": 3,
                "total": self.total,
                "listings": [
                    [item.since.isoformat(), item.until.isoformat() if item.until else None, item.trust_versions]
                    for item in self.listings
                ],
                "index": self.index,
                "next_page": self.next_page,
                "page_size": self.page_size,
                "promise": self.promise.isoformat() if self.promise else None,
            },
            sort_keys=True,
        )

    @classmethod
    def load(cls, resume: str | None) -> _Cursor | None:
        if not resume:
            return None
        try:
            data = json.loads(resume)
            if data.get("v") != 3:
                raise ValueError("an older cursor format")
            listings = tuple(
                _Listing(_aware(since), _aware(until) if until else None, bool(trust))
                for since, until, trust in data["listings"]
            )
            promise = _aware(data["promise"]) if data["promise"] else None
            index, next_page = int(data["index"]), int(data["next_page"])
            if not 0 <= index < len(listings) or next_page < 1:
                raise ValueError("cursor out of range")
            total = data.get("total")
            return cls(listings, index, next_page, int(data["page_size"]), promise, int(total) if total else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("checkpoint_ignored", channel="oxatis", reason="unreadable resume checkpoint")
            return None


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("naive datetime in cursor")
    return value.astimezone(UTC)


def _listings(query: OrderQuery, since: datetime) -> list[_Listing]:
    until = query.modified_until.astimezone(UTC) if query.modified_until is not None else None
    known = query.complete_until.astimezone(UTC) if query.complete_until is not None else None
    if until is not None:  # a bounded window asked for by the host: one listing, no promise
        return [_Listing(since, until, known is not None and until <= known)]
    if known is None or known <= since:
        return [_Listing(since, None, False)]
    return [_Listing(known, None, False), _Listing(since, None, True)]


def iter_order_pages(conn: OxatisConnection, query: OrderQuery) -> Iterator[OrderPage]:
    """Validate the query now, then return the lazy page iterator."""
    since = max(query.modified_since.astimezone(UTC), OLDEST_ALLOWED)
    return _pages(conn, query, _listings(query, since), _Cursor.load(query.resume))


def _plan(
    conn: OxatisConnection, listings: list[_Listing], cursor: _Cursor | None, lag: timedelta
) -> tuple[tuple[_Listing, ...], int, int, datetime | None]:
    """The listings this run reads, where it starts, and the promise it will make.

    The promise is the store's clock before the first listing request, less the tolerance and the
    clock lag earlier runs measured (the store's database stamping behind its web server). A
    resumed run finishes the interrupted run's listings, then reads everything
    modified since that run's promise, so that when it completes it promises
    up to its own start, not the interrupted run's.
    """
    measured = conn.client.store_time()
    now = measured - STORE_CLOCK_TOLERANCE - lag if measured is not None else None
    if cursor is not None and cursor.promise is None and now is not None:
        cursor = None  # its run had no store clock, so it cannot be finished into a promise: read it all again
    if cursor is not None and cursor.page_size != conn.settings.page_size:  # another page size: from page 1
        cursor = _Cursor(cursor.listings, cursor.index, 1, conn.settings.page_size, cursor.promise)
    if cursor is None:
        open_ended = listings[-1].until is None
        return tuple(listings), 0, 1, now if open_ended else None
    planned = cursor.listings
    if cursor.promise is not None and now is not None and now > cursor.promise:
        return (*planned, _Listing(cursor.promise, None, False)), cursor.index, cursor.next_page, now
    return planned, cursor.index, cursor.next_page, cursor.promise


def _server_lag(conn: OxatisConnection) -> timedelta:
    """How far the clock that stamps orders (``GetServerDate``) runs behind the ``Date`` header of the same
    reply; zero when it is not behind or cannot be told. A difference of hours is a wrong
    ``store_timezone`` (``_check_zone`` says so), not a lag to wait out."""
    try:
        server = conn.client.server_date()
    except (QuotaExhaustedError, RateLimitedError):
        raise
    except ChannelError as exc:  # a measurement only: without it the stored lag still applies
        logger.info("server_date_unavailable", channel="oxatis", error=str(exc))
        return timedelta(0)
    header = conn.client.store_time()
    if server is None or header is None:
        return timedelta(0)
    lag = _lag(header, server, conn.settings.tz)
    return lag if lag is not None and timedelta(0) < lag <= LAG_CREDIBLE else timedelta(0)


def _lag(reply_time: datetime, wall: datetime, tz: Any) -> timedelta | None:
    """How far the naive store wall time ``wall`` stands behind ``reply_time``; on the autumn night, when the
    wall time names two instants, the reading closest to the reply (never after it) is the one meant."""
    readings = [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)] if wall.year > 1 else []
    lags = [reply_time - at for at in readings if at <= reply_time + STORE_CLOCK_TOLERANCE]
    return max(timedelta(0), min(lags)) if lags else None


class _LagMeter:
    """How far the store's stamps run behind its reply clock, measured on the orders a run lists.

    An order dated ``S`` (its ``Date``, stamped by the store's database) listed in a reply whose
    ``Date`` header says ``D`` was placed before ``D``, so ``D - S`` is at least the lag between
    the two clocks; the smallest such value this run, among orders placed recently enough to tell
    (``LAG_CREDIBLE``), is the run's measurement.
    """

    def __init__(self, tz: Any) -> None:
        self.tz = tz
        self.seen: timedelta | None = None  # read and written by the listing's thread only

    def observe(self, reply_time: datetime | None, summaries: list[dict[str, Any]]) -> None:
        if reply_time is None:
            return
        for summary in summaries:
            date = summary.get("Date")
            lag = _lag(reply_time, date, self.tz) if isinstance(date, datetime) else None
            if lag is not None and lag <= LAG_CREDIBLE:
                self.seen = lag if self.seen is None else min(self.seen, lag)


def _pages(
    conn: OxatisConnection, query: OrderQuery, listings: list[_Listing], cursor: _Cursor | None
) -> Iterator[OrderPage]:
    ctx = conn.mapping_context()
    page_size = conn.settings.page_size
    stored_lag = max(timedelta(0), query.clock_lag, _server_lag(conn))
    planned_tuple, first_listing, first_page, promise = _plan(conn, listings, cursor, stored_lag)
    planned = list(planned_tuple)
    meter = _LagMeter(conn.settings.tz)
    lag = stored_lag
    if promise is not None:
        logger.info(
            "store_clock",
            channel="oxatis",
            store_time=promise.isoformat(),
            host_ahead_s=round((datetime.now(UTC) - promise - STORE_CLOCK_TOLERANCE).total_seconds(), 1),
            clock_lag_s=stored_lag.total_seconds(),
        )
    fetched: dict[str, str | None] = {}  # fetched in this run (after the promise), with the version listed
    with ThreadPoolExecutor(max_workers=conn.settings.max_concurrency, thread_name_prefix="oxatis") as pool:
        if query.retry_order_ids:
            outcomes = list(pool.map(lambda oid: _fetch_one(conn, ctx, oid, None), query.retry_order_ids))
            for outcome in outcomes:
                fetched[outcome.order_id] = None  # tried once this run, after the promise: enough
            yield _page(outcomes, checkpoint=query.resume)
        index = first_listing
        while index < len(planned):
            listing = planned[index]
            start_page = first_page if index == first_listing else 1
            baseline = cursor.total if cursor is not None and index == first_listing else None
            # Pipelined: the next list page is read, and its detail calls queued, while this page's
            # details are still in flight; pages are still yielded (and stored) strictly in order.
            in_flight: deque[tuple[int, OrderPage, list[Future[Outcome]]]] = deque()
            listed = _read_listing(conn, query, listing, start_page, fetched, meter, baseline)
            while True:
                try:
                    page_number, page, fetch = next(listed)
                except StopIteration:
                    break
                except BaseException:  # quota, an unreadable list page: store what was already fetched first
                    while in_flight:
                        yield _finished(in_flight.popleft(), planned, index, page_size, promise, lag)
                    raise
                for order_id, _ in fetch:  # claimed when queued: a summary read twice costs one detail call
                    fetched[order_id] = page.versions.get(order_id)
                futures = [pool.submit(_fetch_one, conn, ctx, order_id, summary) for order_id, summary in fetch]
                in_flight.append((page_number, page, futures))
                if len(in_flight) > PAGES_AHEAD:
                    yield _finished(in_flight.popleft(), planned, index, page_size, promise, lag)
            if index == len(planned) - 1 and promise is not None and planned[-1].until is None:
                # Every list page is read: a larger lag than the stored one means orders stamped before the
                # earlier promises may hide under them, where versions were trusted. Read the whole window
                # again, widened by the difference and trusting nothing, and promise that much less.
                measured = meter.seen or timedelta(0)
                if measured > lag:
                    widen = measured - lag
                    if query.complete_until is not None:
                        planned.append(_Listing(min(item.since for item in planned) - widen, None, False))
                    logger.warning(
                        "store_clock_lag",
                        channel="oxatis",
                        lag_s=measured.total_seconds(),
                        was_s=lag.total_seconds(),
                        hint="the store's database stamps orders behind the Date its web server sends; the "
                        "untrusted window is widened by the difference from now on",
                    )
                    promise, lag = promise - widen, measured
            while in_flight:
                yield _finished(in_flight.popleft(), planned, index, page_size, promise, lag)
            index += 1


def _finished(
    entry: tuple[int, OrderPage, list[Future[Outcome]]],
    planned: list[_Listing],
    index: int,
    page_size: int,
    promise: datetime | None,
    lag: timedelta,
) -> OrderPage:
    """Wait for one listed page's detail calls and build the page the host stores, with its resume cursor."""
    page_number, page, futures = entry
    outcomes = [future.result() for future in futures]
    done = page.checkpoint is None
    last_listing = index == len(planned) - 1
    listings = tuple(planned)
    if done and last_listing:
        checkpoint: str | None = None
    elif done:
        checkpoint = _Cursor(listings, index + 1, 1, page_size, promise).dump()
    else:
        checkpoint = _Cursor(listings, index, page_number + 1, page_size, promise, page.listed_total).dump()
    complete = done and last_listing
    return _page(
        outcomes,
        unchanged=page.unchanged,
        versions=page.versions,
        checkpoint=checkpoint,
        window_until=planned[index].until,
        complete_until=promise if complete else None,
        clock_lag=lag if complete and promise is not None else None,
        page_of=page.page_of,
        listed_total=page.listed_total,
    )


def _check_zone(conn: OxatisConnection, summaries: list[dict[str, Any]], store_now: datetime | None) -> None:
    """The newest listed order dated after the store's own clock means ``store_timezone`` is wrong."""
    if store_now is None:
        return
    dates = [to_utc(s.get("Date"), conn.settings.tz) for s in summaries]
    newest = max((d for d in dates if d is not None), default=None)
    if newest is not None and newest > store_now + ZONE_SUSPECT_AFTER:
        logger.warning(
            "store_timezone_suspect",
            channel="oxatis",
            store_timezone=conn.settings.store_timezone,
            hours_in_the_future=round((newest - store_now).total_seconds() / 3600, 1),
            hint="orders are dated after the store's own clock: set store_timezone (OXATIS_STORE_TIMEZONE) "
            "to the store's zone, often Europe/Paris",
        )


def _read_listing(
    conn: OxatisConnection,
    query: OrderQuery,
    listing: _Listing,
    page_number: int,
    fetched: Mapping[str, str | None],
    meter: _LagMeter,
    baseline: int | None = None,
) -> Iterator[tuple[int, OrderPage, list[tuple[str, Mapping[str, Any]]]]]:
    """Page through one listing; yield each page's versions, unchanged ids and what to fetch.

    The yielded ``OrderPage`` carries ``checkpoint=None`` on the listing's last page. ``baseline`` is
    ``TotalItems`` as the interrupted run last saw it: a resumed listing that shrank since (orders
    deleted meanwhile) may have slid an order onto a page already stored, so it is read from page 1.
    """
    tz = conn.settings.tz
    start = wall_floor(listing.since, tz)
    end = wall_time(listing.until, tz) if listing.until is not None else None
    descending = listing.until is None
    rescans, expected_total = 0, baseline
    while True:
        page = conn.client.summary_page(start, end, page_number, descending=descending)
        meter.observe(conn.client.store_time(), page.summaries)
        shrank = expected_total is not None and page.total_items < expected_total
        if shrank and page_number > 1:
            if rescans >= MAX_RESCANS:
                raise InconsistentReadError(
                    f"orders left the Oxatis listing while it was read ({expected_total} then {page.total_items}) "
                    f"{rescans} times; the next run reads the window again"
                )
            rescans += 1
            logger.info(
                "window_rescan",
                channel="oxatis",
                reason="orders left the window while paging",
                before=expected_total,
                now=page.total_items,
            )
            expected_total, page_number = page.total_items, 1
            continue
        if expected_total is None and page_number == 1 and listing.until is None:
            _check_zone(conn, page.summaries, conn.client.store_time())
        expected_total = page.total_items
        versions: dict[str, str] = {}
        unchanged: list[str] = []
        to_fetch: list[tuple[str, Mapping[str, Any]]] = []
        # the page's stored versions in one lookup, where versions may be trusted at all
        trusted = listing.trust_versions and page.summaries
        known = query.versions_of([str(s["OxID"]) for s in page.summaries]) if trusted else {}
        for summary in page.summaries:
            order_id = str(summary["OxID"])
            version = summary_version(summary)
            versions[order_id] = version
            if order_id in fetched and fetched[order_id] in (None, version):
                continue  # already fetched in this run, after the promise
            if listing.trust_versions and known.get(order_id) == version:
                unchanged.append(order_id)
            else:
                to_fetch.append((order_id, summary))
        last = page_number >= page.total_pages or not page.summaries
        yield (
            page_number,
            OrderPage(
                unchanged=tuple(unchanged),
                versions=versions,
                checkpoint=None if last else "more",
                page_of=(page_number, max(page_number, page.total_pages)),
                listed_total=page.total_items,
            ),
            to_fetch,
        )
        if last:
            return
        page_number += 1
