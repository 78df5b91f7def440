"""Streaming an Oxatis modification window as canonical order pages.

Summaries are listed oldest first (``SetOrderDesc=false``) over a window fixed
for the whole run, then ``OrderGetMoreDetails`` is called, in parallel with a
bounded number in flight, for each order whose summary version the host does
not already have. An order modified while we page leaves the fixed window and
shifts later orders onto earlier pages; when ``TotalItems`` drops between pages
the window is rescanned from page 1 (orders already stored cost no detail call).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from channel_core.errors import ChannelAPIError, PayloadError, QuotaExhaustedError
from channel_core.hooktypes import FailedOrder, OrderPage, OrderQuery
from channel_core.logs import get_logger
from channel_core.models import Order, SkippedOrder
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import MappingContext, summary_version, to_order

__all__ = ["MAX_RESCANS", "OLDEST_ALLOWED", "iter_order_pages"]

logger = get_logger(__name__)

OLDEST_ALLOWED = datetime(2010, 1, 15, tzinfo=UTC)  # oxatis-api.md §1.8: no earlier dates
MAX_RESCANS = 5

Outcome = Order | SkippedOrder | FailedOrder


def _local(value: datetime, conn: OxatisConnection) -> datetime:
    """Store-local naive time in whole seconds, as Oxatis takes it."""
    return value.astimezone(conn.settings.tz).replace(tzinfo=None, microsecond=0)


def _window_end(until: datetime, conn: OxatisConnection) -> datetime:
    """The wire window end: one whole second before ``until``.

    An order modified while we page must leave the window (its new modification
    time is after the end), so that ``TotalItems`` drops and the rescan catches
    the shift; an order modified within the same second would otherwise move to
    the end of the list, shifting others onto pages already read. The second
    given up here is inside the next run's overlap margin.
    """
    return _local(until, conn) - timedelta(seconds=1)


def _fetch_one(
    conn: OxatisConnection, ctx: MappingContext, order_id: str, summary: Mapping[str, Any] | None
) -> Outcome:
    try:
        raw = conn.client.order_details(order_id)
        if summary is not None and raw.get("Shipped") is None and summary.get("Shipped") is not None:
            raw = {**raw, "Shipped": summary["Shipped"]}  # details sometimes omit Shipped (§2.3)
        return to_order(raw, ctx)
    except QuotaExhaustedError:
        raise
    except PayloadError as exc:
        if exc.order_id is None:  # the reply itself was unreadable (malformed XML, DTD): try again next run
            logger.warning("order_fetch_failed", channel="oxatis", order_id=order_id, error=str(exc))
            return FailedOrder(order_id, str(exc))
        logger.warning("order_invalid", channel="oxatis", order_id=order_id, error=str(exc))
        return SkippedOrder(order_id, f"invalid order data: {exc}")
    except ChannelAPIError as exc:
        logger.warning("order_fetch_failed", channel="oxatis", order_id=order_id, error=str(exc))
        return FailedOrder(order_id, str(exc))


def _page(outcomes: list[Outcome], **kwargs: Any) -> OrderPage:
    return OrderPage(
        orders=tuple(o for o in outcomes if isinstance(o, Order)),
        skipped=tuple(o for o in outcomes if isinstance(o, SkippedOrder)),
        failed=tuple(o for o in outcomes if isinstance(o, FailedOrder)),
        **kwargs,
    )


def _cursor(since: datetime, until: datetime, next_page: int, total: int, page_size: int) -> str:
    return json.dumps(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "next_page": next_page,
            "total": total,
            "page_size": page_size,
        },
        sort_keys=True,
    )


def _read_cursor(resume: str | None) -> dict[str, Any] | None:
    if not resume:
        return None
    try:
        data = json.loads(resume)
        return {
            "since": datetime.fromisoformat(data["since"]),
            "until": datetime.fromisoformat(data["until"]),
            "next_page": int(data["next_page"]),
            "total": int(data["total"]),
            "page_size": int(data.get("page_size", 0)),
        }
    except (ValueError, KeyError, TypeError):
        logger.warning("checkpoint_ignored", channel="oxatis", reason="unreadable resume checkpoint")
        return None


def iter_order_pages(conn: OxatisConnection, query: OrderQuery) -> Iterator[OrderPage]:
    """Validate the query now, then return the lazy page iterator."""
    since = max(query.modified_since, OLDEST_ALLOWED)
    until = query.modified_until or datetime.now(UTC)
    cursor = _read_cursor(query.resume)
    return _pages(conn, query, since.astimezone(UTC), until.astimezone(UTC), cursor)


def _pages(
    conn: OxatisConnection,
    query: OrderQuery,
    since: datetime,
    until: datetime,
    cursor: dict[str, Any] | None,
) -> Iterator[OrderPage]:
    ctx = conn.mapping_context()
    page_number, expected_total = 1, None
    if cursor is not None:
        since, until = cursor["since"], cursor["until"]
        if cursor["page_size"] == conn.settings.page_size:
            page_number, expected_total = cursor["next_page"], cursor["total"]
        # a different page size: rescan the window from page 1 (stored orders cost no detail call)
    with ThreadPoolExecutor(max_workers=conn.settings.max_concurrency, thread_name_prefix="oxatis") as pool:
        if query.retry_order_ids:
            outcomes = list(pool.map(lambda oid: _fetch_one(conn, ctx, oid, None), query.retry_order_ids))
            yield _page(outcomes, checkpoint=query.resume, window_until=until)
        rescans = 0
        seen: dict[str, str] = {}  # versions already yielded in this run: a rescan costs no detail call
        while True:
            page = conn.client.summary_page(_local(since, conn), _window_end(until, conn), page_number)
            if (
                expected_total is not None
                and page.total_items < expected_total
                and page_number > 1
                and rescans < MAX_RESCANS
            ):
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
            expected_total = page.total_items
            versions: dict[str, str] = {}
            unchanged: list[str] = []
            to_fetch: list[tuple[str, Mapping[str, Any]]] = []
            for summary in page.summaries:
                order_id = str(summary["OxID"])
                version = summary_version(summary)
                versions[order_id] = version
                if seen.get(order_id) == version or query.known_version(order_id) == version:
                    unchanged.append(order_id)
                else:
                    to_fetch.append((order_id, summary))
            outcomes = list(pool.map(lambda pair: _fetch_one(conn, ctx, pair[0], pair[1]), to_fetch))
            for outcome in outcomes:
                if not isinstance(outcome, FailedOrder):
                    seen[outcome.order_id] = versions[outcome.order_id]
            last = page_number >= page.total_pages or not page.summaries
            yield _page(
                outcomes,
                unchanged=tuple(unchanged),
                versions=versions,
                checkpoint=None
                if last
                else _cursor(since, until, page_number + 1, page.total_items, conn.settings.page_size),
                window_until=until,
            )
            if last:
                return
            page_number += 1
