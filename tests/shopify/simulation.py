"""A seeded, adversarial shop for the Shopify import invariant.

Before every query the scheduler moves the shop's clock and acts as a merchant would: edits orders
(which moves them to the end of the ``UPDATED_AT`` order, possibly past the cursor), places new
ones, cancels, holds and releases fulfillment orders, fulfils lines in the admin, deletes orders.
The search index may lag behind edits; listings may be capped shallow, so windows must be cut;
queries are throttled now and then; runs are interrupted between pages.

The invariant, checked by content: once the shop is quiet, one more completed run leaves the
database equal, order by order and field by field, to the shop's truth (each order read whole and
mapped), with no order missing, none stale and none stored twice; deleted orders excepted (polling
cannot see a deletion).
"""

from __future__ import annotations

import random
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from graphql import execute_sync, parse

from channel_core import Channel, Order, SkippedOrder, to_dict
from channel_core.sync import Importer, SQLiteStore
from channel_shopify import documents as docs
from channel_shopify.connection import ShopifyConnection
from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer
from channel_shopify.sandbox.graph import root_value
from channel_shopify.sandbox.server import sandbox_schema

DOMAIN = "sim-shop.myshopify.com"


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.instant = start
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.instant

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.instant += timedelta(seconds=seconds)


@dataclass
class Outcome:
    seed: int
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    wrongly_skipped: list[str] = field(default_factory=list)
    duplicates: int = 0
    runs: int = 0
    actions: int = 0
    windows_cut: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.wrongly_skipped or self.duplicates)


class Merchant:
    """Acts on the shop before each query, from one seed."""

    def __init__(self, server: ShopifySandboxServer, clock: SimClock, rng: random.Random, rate: float) -> None:
        self.server, self.clock, self.rng, self.rate = server, clock, rng, rate
        self.quiet = False
        self.actions = 0

    def __call__(self, operation: str) -> None:
        if self.quiet:
            return
        self.clock.advance(self.rng.uniform(0.0, 3.0))
        shop = self.server.shop(DOMAIN)
        for _ in range(self.rng.randint(0, 3)):
            if self.rng.random() > self.rate:
                continue
            self.actions += 1
            ids = sorted(shop.orders)
            roll = self.rng.random()
            if roll < 0.35 and ids:
                shop.edit(self.rng.choice(ids))
            elif roll < 0.5:
                shop.create_order(self.rng)
            elif roll < 0.6 and ids:
                shop.cancel(self.rng.choice(ids))
            elif roll < 0.7 and ids:
                order = shop.orders[self.rng.choice(ids)]
                open_groups = [g for g in order.fulfillment_orders if g.status in ("OPEN", "IN_PROGRESS")]
                if open_groups:
                    shop.hold(open_groups[0].id, "Fraud check")
            elif roll < 0.8 and ids:
                order = shop.orders[self.rng.choice(ids)]
                held = [g for g in order.fulfillment_orders if g.status == "ON_HOLD"]
                if held:
                    shop.release(held[0].id)
            elif roll < 0.95 and ids:
                order = shop.orders[self.rng.choice(ids)]
                groups = [g for g in order.fulfillment_orders if g.status in ("OPEN", "IN_PROGRESS")]
                lines = [(g, x) for g in groups for x in g.lines if x.remaining]
                if lines:
                    group, line = self.rng.choice(lines)
                    shop.fulfill(order.id, [(group.id, [(line.id, 1)])], tracking=("DPD", f"DPD{self.actions}", None))
            elif ids:
                shop.delete(self.rng.choice(ids))


def truth(
    server: ShopifySandboxServer, connection: ShopifyConnection, domain: str = DOMAIN
) -> dict[str, Order | SkippedOrder]:
    """Every order the shop holds, read whole (no cost limit) and mapped."""
    shop = server.shop(domain)
    root = root_value(shop, depth_cap=10**9, precision="exact", listing="all", scopes=shop.scopes)
    document = parse(docs.ORDER_ONE)
    found: dict[str, Order | SkippedOrder] = {}
    for number in sorted(shop.orders):
        variables = {"id": f"gid://shopify/Order/{number}", "lines": 250, "groups": 50, "groupLines": 250}
        result = execute_sync(sandbox_schema(), document, root_value=root, variable_values=variables)
        assert not result.errors and result.data is not None, result.errors
        found[str(number)] = connection.map_order(result.data["order"])
    return found


def simulate(shopify: Channel, seed: int, *, index_lag: float | None = None) -> Outcome:
    rng = random.Random(seed)
    clock = SimClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 86400)))
    search_lag = rng.choice([0.0, 0.0, 4.0, 9.0])
    config = ShopifySandboxConfig(
        orders=rng.randint(15, 45),
        seed=seed,
        clock=clock,
        search_lag=search_lag,
        search_precision=rng.choice(["second", "exact"]),
        write_touch_delay=rng.choice([0.0, 0.0, 0.0, 5.0]),
        depth_cap=rng.choice([25000, 40, 15]),
        bucket_size=20000.0,  # a Plus shop's bucket: the cost-shaping tests use small ones
        restore_rate=2000.0,
    )
    server = ShopifySandboxServer(config).start()
    server.add_shop(DOMAIN)
    merchant = Merchant(server, clock, rng, rate=rng.choice([0.2, 0.5, 0.9]))
    server.config.before_request = merchant
    outcome = Outcome(seed)
    tenant = server.tenant(DOMAIN)
    settings = {
        "shop": DOMAIN,
        "base_url": server.base_url(DOMAIN),
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "index_lag": search_lag + config.write_touch_delay + 1.0 if index_lag is None else index_lag,
        "depth_cap": rng.choice([25000, config.depth_cap]),
        "retry_attempts": 8,
        "retry_backoff": 0.0,
    }
    if rng.random() < 0.3:
        server.add_fault("throttled", times=rng.randint(1, 3), after=rng.randint(0, 5))
    if rng.random() < 0.3:
        server.add_fault(rng.choice(["http500", "reset", "malformed", "http503"]), after=rng.randint(0, 8))
    try:
        with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "orders.sqlite3") as db:
            with shopify.connect(settings) as connection:
                assert isinstance(connection, ShopifyConnection)
                for _ in range(rng.randint(2, 5)):
                    stop_after = rng.choice([None, None, 1, 2, 3])
                    pages = [0]

                    def should_stop(pages: list[int] = pages, stop_after: int | None = stop_after) -> bool:
                        pages[0] += 1
                        return stop_after is not None and pages[0] >= stop_after

                    Importer(shopify, connection, db, clock=clock).run(should_stop=should_stop)
                    outcome.runs += 1
                merchant.quiet = True
                clock.advance(max(60.0, search_lag * 3))
                server.config.faults.clear()
                summary = Importer(shopify, connection, db, clock=clock).run()
                assert summary.completed, summary
                outcome.runs += 1
                expected = truth(server, connection)
            stored = [s.order for s in db.iter_orders("shopify")]
            by_id = {o.order_id: o for o in stored}
            outcome.duplicates = len(stored) - len(by_id)
            skipped = {oid for _, oid, _ in db.skipped("shopify")}
            for order_id, want in expected.items():
                if isinstance(want, SkippedOrder):
                    if order_id in by_id and order_id not in skipped:
                        outcome.stale.append(order_id)
                    continue
                have = by_id.get(order_id)
                if have is None:
                    (outcome.wrongly_skipped if order_id in skipped else outcome.missing).append(order_id)
                elif to_dict(have) != to_dict(want):
                    outcome.stale.append(order_id)
    finally:
        server.stop()
    outcome.actions = merchant.actions
    return outcome


def describe(outcome: Outcome) -> dict[str, Any]:
    return {
        "seed": outcome.seed,
        "missing": outcome.missing,
        "stale": outcome.stale,
        "wrongly_skipped": outcome.wrongly_skipped,
        "duplicates": outcome.duplicates,
    }
