"""Listing orders: one query returns whole orders, paged by cursor in ``UPDATED_AT`` order over
``updated_at`` windows.

* **Windows.** A run reads ``updated_at >= since`` (and ``< until`` when the host bounds it). A
  connection may be paged at most ``depth_cap`` deep, so before a page would cross it the listing
  starts a new window at the last ``updatedAt`` it saw (``>=``: orders sharing that second are read
  again, never skipped).
* **Page shape.** The page size and the nested ``first`` arguments are chosen so that the whole
  query's requested cost stays under the single-query limit and the bucket's size as the last reply
  reported it (:class:`~channel_shopify.documents.OrderShape`). Nested lists are sized to the largest the
  last 250 orders had, so a page holds as many orders as it can; an order with more lines or groups than
  the shape holds is completed with follow-up queries.
* **Checkpoint.** Opaque JSON: the window's start and end, the cursor, the depth and the instant the
  run started (the store's clock).
* **Promise.** On the last page of an open-ended read: the ``Date`` of the run's first reply, less
  the search index's lag (``index_lag``) and the clock lag the host measured. Every order modified
  before it was listed: an order edited while we page moves to the end of the ``UPDATED_AT`` order,
  which the open-ended listing reaches.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from channel_core.errors import ChannelAPIError, ChannelError, ClientError, PayloadError, ServerError
from channel_core.hooktypes import FailedOrder, OrderPage, OrderQuery
from channel_core.logs import get_logger
from channel_core.models import Order, SkippedOrder
from channel_shopify import documents as docs
from channel_shopify.documents import OrderShape
from channel_shopify.mapping import gid, gid_number

__all__ = ["iter_order_pages"]

logger = get_logger(__name__)
CHECKPOINT_VERSION = 1

if False:  # pragma: no cover - typing only, without an import cycle at run time
    from channel_shopify.connection import ShopifyConnection


@dataclass(frozen=True, slots=True)
class Position:
    window_start: datetime
    until: datetime | None
    after: str | None = None
    depth: int = 0
    started: datetime | None = None  # the store's clock at the run's first reply
    last_seen: datetime | None = None  # the latest updatedAt this window listed: where a cut window resumes

    def encode(self) -> str:
        return json.dumps(
            {
                "v": CHECKPOINT_VERSION,
                "ws": self.window_start.isoformat(),
                "until": self.until.isoformat() if self.until else None,
                "after": self.after,
                "depth": self.depth,
                "t0": self.started.isoformat() if self.started else None,
                "seen": self.last_seen.isoformat() if self.last_seen else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str, query: OrderQuery) -> Position | None:
        try:
            data = json.loads(text)
            if data.get("v") != CHECKPOINT_VERSION:
                return None
            return cls(
                window_start=datetime.fromisoformat(data["ws"]),
                until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
                after=data.get("after"),
                depth=int(data.get("depth") or 0),
                started=datetime.fromisoformat(data["t0"]) if data.get("t0") else None,
                last_seen=datetime.fromisoformat(data["seen"]) if data.get("seen") else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _search(position: Position) -> str:
    search = f"updated_at:>='{_stamp(position.window_start)}'"
    if position.until is not None:
        search += f" AND updated_at:<'{_stamp(position.until)}'"
    return search


def iter_order_pages(connection: ShopifyConnection, query: OrderQuery) -> Iterator[OrderPage]:
    start = Position(query.modified_since.astimezone(UTC).replace(microsecond=0), query.modified_until)
    if query.resume:
        resumed = Position.decode(query.resume, query)
        if resumed is None:
            logger.warning("checkpoint_not_understood", channel="shopify", hint="reading the window from its start")
        else:
            start = resumed
    return _Listing(connection, query).pages(start)


class _Listing:
    def __init__(self, connection: ShopifyConnection, query: OrderQuery) -> None:
        self.connection, self.query = connection, query
        self.client = connection.client
        self.settings = connection.settings
        self.calibration = 1.0  # the store's requested cost over our estimate, when it says more
        self.recent: deque[tuple[int, int, int]] = deque(maxlen=250)  # (lines, groups, lines per group) per order

    # ------------------------------------------------------------------ shapes

    def limit(self) -> float:
        """The most one query may request: the single-query limit, and the bucket's size."""
        return min(float(self.settings.max_query_cost), self.client.bucket.maximum)

    def shape(self) -> OrderShape:
        seen = None
        if self.recent:
            seen = (
                max(r[0] for r in self.recent),
                max(r[1] for r in self.recent),
                max(r[2] for r in self.recent),
            )
        return OrderShape.fitting(self.limit() / self.calibration, seen=seen)

    def _observe(self, node: dict[str, Any]) -> None:
        """How big this order's nested lists were (one more than read when the reply says there are more)."""

        def size(connection: Any) -> int:
            if not isinstance(connection, dict):
                return 0
            count = len(connection.get("nodes") or [])
            return count + 1 if (connection.get("pageInfo") or {}).get("hasNextPage") else count

        groups = (node.get("fulfillmentOrders") or {}).get("nodes") or []
        self.recent.append(
            (
                size(node.get("lineItems")),
                size(node.get("fulfillmentOrders")),
                max((size(g.get("lineItems")) for g in groups if isinstance(g, dict)), default=0),
            )
        )

    def run(self, operation: str, document: str, variables: dict[str, Any], estimate: int) -> Any:
        reply = self.client.execute(operation, document, variables, cost=min(estimate * self.calibration, self.limit()))
        if reply.requested and reply.requested > estimate:
            self.calibration = max(self.calibration, reply.requested / estimate)
        return reply

    # ------------------------------------------------------------------ pages

    def pages(self, position: Position) -> Iterator[OrderPage]:
        if self.query.only_order_ids:  # a targeted sync: exactly these, no listing
            yield self._by_id(self._resolve(self.query.only_order_ids), None)
            return
        if self.query.retry_order_ids:
            yield self._by_id(self.query.retry_order_ids, position.encode())
        cap = self.settings.depth_cap  # lowered when the store says its own cap is shallower
        while True:
            shape = self.shape()
            if position.depth + shape.first > cap and position.after is not None:
                position = self._next_window(position, reason="depth cap")
            shape = replace(shape, first=max(1, min(shape.first, cap - position.depth)))
            reply = self.run(
                "ChannelOrders",
                docs.ORDERS,
                {**shape.variables(), "after": position.after, "query": _search(position)},
                shape.cost(),
            )
            if position.started is None:
                position = replace(position, started=self.client.http.server_time())
            listing = reply.data.get("orders")
            if isinstance(listing, dict) and reply.errors:  # a partial page: some orders' fields are missing
                raise ServerError(
                    "the orders listing came back partial: "
                    + "; ".join(str(e.get("message")) for e in reply.errors)
                    + " (nothing of this page is stored; the run resumes from the checkpoint)",
                    channel="shopify",
                    operation="ChannelOrders",
                )
            if not isinstance(listing, dict):
                codes = {str((e.get("extensions") or {}).get("code")) for e in reply.errors}
                if "PAGINATION_LIMIT" in codes and (position.after is not None or shape.first > 1):
                    cap = max(1, min(cap, position.depth + shape.first - 1))
                    if position.after is not None:
                        position = self._next_window(position, reason="the store's pagination limit")
                    continue
                raise ChannelAPIError(
                    "the orders listing failed: " + "; ".join(str(e.get("message")) for e in reply.errors),
                    channel="shopify",
                    operation="ChannelOrders",
                )
            # Where a cut window may resume: the latest updatedAt the search index has surely caught up with
            # (stamped index_lag before this listing's reply; not a later reply's, such as a follow-up query's).
            # A newer stamp may not be the order's sort key yet.
            now = self.client.http.server_time()
            nodes = [n for n in listing.get("nodes") or [] if isinstance(n, dict)]
            orders, skipped, failed, versions = self._map(nodes, shape)
            info = listing.get("pageInfo") or {}
            settled = None if now is None else now - timedelta(seconds=self.settings.index_lag)
            stamps = [
                str(n["updatedAt"])
                for n in nodes
                if isinstance(n.get("updatedAt"), str)
                and settled is not None
                and datetime.fromisoformat(n["updatedAt"].replace("Z", "+00:00")) <= settled
            ]
            last_seen = max(stamps, default=None)
            position = replace(
                position, after=info.get("endCursor") or position.after, depth=position.depth + len(nodes)
            )
            if last_seen is not None and (position.last_seen is None or last_seen > _stamp(position.last_seen)):
                position = replace(position, last_seen=datetime.fromisoformat(last_seen.replace("Z", "+00:00")))
            last = not info.get("hasNextPage")
            promise = self._promise(position) if last else None
            yield OrderPage(
                orders=tuple(orders),
                skipped=tuple(skipped),
                failed=tuple(failed),
                versions=versions,
                checkpoint=position.encode(),
                window_until=position.until,
                complete_until=promise,
                clock_lag=self.query.clock_lag if promise is not None else None,
            )
            if last:
                return

    def _next_window(self, position: Position, *, reason: str) -> Position:
        start = position.last_seen or position.window_start
        if start <= position.window_start:
            raise ClientError(
                f"more orders share one updatedAt second ({_stamp(start)}) than one listing may page ({reason})",
                channel="shopify",
                operation="ChannelOrders",
            )
        logger.info("orders_window_cut", channel="shopify", reason=reason, window_start=_stamp(start))
        return replace(position, window_start=start, after=None, depth=0, last_seen=None)

    def _promise(self, position: Position) -> datetime | None:
        if position.until is not None or position.started is None:
            return None
        return position.started - timedelta(seconds=self.settings.index_lag) - self.query.clock_lag

    # ------------------------------------------------------------------ orders

    def _map(
        self, nodes: list[dict[str, Any]], shape: OrderShape
    ) -> tuple[list[Order], list[SkippedOrder], list[FailedOrder], dict[str, str]]:
        orders: list[Order] = []
        skipped: list[SkippedOrder] = []
        failed: list[FailedOrder] = []
        versions: dict[str, str] = {}
        for node in nodes:
            raw_id = node.get("id")
            try:
                order_id = gid_number(raw_id, "Order")
            except PayloadError as exc:
                logger.warning("order_without_id", channel="shopify", error=str(exc))
                failed.append(FailedOrder(str(raw_id), str(exc)))
                continue
            self._observe(node)
            try:
                self._complete(node, shape)
                mapped = self.connection.map_order(node)
            except ChannelError as exc:
                failed.append(FailedOrder(order_id, str(exc)))
                continue
            if isinstance(node.get("updatedAt"), str):
                versions[order_id] = node["updatedAt"]
            if isinstance(mapped, SkippedOrder):
                skipped.append(mapped)
            else:
                orders.append(mapped)
        return orders, skipped, failed, versions

    def _complete(self, node: dict[str, Any], shape: OrderShape) -> None:
        """Fetch the lines and groups the page's shape cut off, into ``node``."""
        lines = node.get("lineItems") or {}
        while (lines.get("pageInfo") or {}).get("hasNextPage"):
            first = max(1, min(250, int((self.limit() / self.calibration - 3) // docs.LINE_COST)))
            reply = self.run(
                "ChannelOrderLines",
                docs.ORDER_LINES,
                {"id": node["id"], "first": first, "after": lines["pageInfo"].get("endCursor")},
                docs.lines_cost(first),
            )
            more = ((reply.data.get("order") or {}).get("lineItems")) or {}
            lines = {
                "nodes": [*lines.get("nodes", []), *(more.get("nodes") or [])],
                "pageInfo": more.get("pageInfo") or {},
            }
            node["lineItems"] = lines
        groups = node.get("fulfillmentOrders") or {}
        cut = (groups.get("pageInfo") or {}).get("hasNextPage") or any(
            ((g.get("lineItems") or {}).get("pageInfo") or {}).get("hasNextPage") for g in groups.get("nodes") or []
        )
        if not cut:
            return
        collected: list[dict[str, Any]] = []
        after = None
        group_lines = min(
            250, max(shape.group_lines, int((self.limit() / self.calibration - 3 - 7) // docs.GROUP_LINE_COST))
        )
        while True:
            first = max(
                1, min(50, int((self.limit() / self.calibration - 3) // (7 + group_lines * docs.GROUP_LINE_COST)))
            )
            reply = self.run(
                "ChannelOrderGroups",
                docs.ORDER_GROUPS,
                {"id": node["id"], "first": first, "after": after, "groupLines": group_lines},
                docs.groups_cost(first, group_lines),
            )
            more = ((reply.data.get("order") or {}).get("fulfillmentOrders")) or {}
            for group in more.get("nodes") or []:
                if ((group.get("lineItems") or {}).get("pageInfo") or {}).get("hasNextPage"):
                    raise PayloadError(
                        f"a fulfillment order holds more than {group_lines} lines, more than one query may read",
                        order_id=gid_number(node["id"], "Order"),
                    )
                collected.append(group)
            info = more.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        node["fulfillmentOrders"] = {"nodes": collected, "pageInfo": {"hasNextPage": False}}

    def _resolve(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """Order ids, with lookups (``fulfillment_order:N``, from a webhook naming no order) resolved by one call."""
        resolved = []
        for key in keys:
            kind, _, number = key.rpartition(":")
            if kind != "fulfillment_order":
                resolved.append(key)
                continue
            reply = self.run(
                "ChannelFulfillmentOrderOwner",
                docs.FULFILLMENT_ORDER_OWNER,
                {"id": gid("FulfillmentOrder", number)},
                docs.FULFILLMENT_ORDER_OWNER_COST,
            )
            owner = (reply.data.get("fulfillmentOrder") or {}).get("orderId")
            if owner:
                resolved.append(gid_number(owner, "Order"))
        return tuple(dict.fromkeys(resolved))

    def _by_id(self, order_ids: tuple[str, ...], checkpoint: str | None) -> OrderPage:
        orders: list[Order] = []
        skipped: list[SkippedOrder] = []
        failed: list[FailedOrder] = []
        versions: dict[str, str] = {}
        shape = replace(self.shape(), first=1)
        for order_id in order_ids:
            try:
                reply = self.run(
                    "ChannelOrder", docs.ORDER_ONE, {"id": gid("Order", order_id), **_nested(shape)}, shape.order_cost()
                )
            except ChannelAPIError as exc:
                if not exc.retriable:
                    raise
                failed.append(FailedOrder(order_id, str(exc)))
                continue
            node = reply.data.get("order")
            if reply.errors:  # partial or failed: try this order again later rather than store half of it
                failed.append(FailedOrder(order_id, "; ".join(str(e.get("message")) for e in reply.errors)))
                continue
            if not isinstance(node, dict):
                skipped.append(SkippedOrder(order_id, "the order no longer exists in the store"))
                continue
            more_orders, more_skipped, more_failed, more_versions = self._map([node], shape)
            orders += more_orders
            skipped += more_skipped
            failed += more_failed
            versions.update(more_versions)
        return OrderPage(
            orders=tuple(orders), skipped=tuple(skipped), failed=tuple(failed), versions=versions, checkpoint=checkpoint
        )


def _nested(shape: OrderShape) -> dict[str, int]:
    return {"lines": shape.lines, "groups": shape.groups, "groupLines": shape.group_lines}
