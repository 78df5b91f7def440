"""An adversarial store for the import invariant, driven by one seed.

The sandbox answers over loopback while a seeded scheduler acts on its store
before every request: it moves the store's clock, edits orders the summary can
see (payment, progress state) and orders it cannot (ship-to city, notes), gives
an address to orders skipped for having none, places new orders, and answers
some detail calls with a blank or malformed reply. Imports run with the host's
clock skewed against the store's, get interrupted between pages, and some
nights are the Europe/Paris clock changes.

The invariant, checked by content: once the store is quiet, one more completed
run leaves the database equal, order by order and field by field, to the
store's truth (each order's detail reply mapped to the canonical model), with
no order missing, none stale, none stored twice, and skipped orders only where
the truth is a skip.
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from channel_core import Channel, Order, PayloadError, SkippedOrder, to_dict
from channel_core.sync import Importer, SQLiteStore
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import to_order
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, data, replies
from channel_oxatis.sandbox.operations import Reply

PARIS = ZoneInfo("Europe/Paris")
NIGHTS = {
    "ordinary": datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
    "fall_back": datetime(2026, 10, 25, 0, 35, tzinfo=UTC),  # 02:35 CEST; at 01:00 UTC the wall clock reads 02:00
    "spring_forward": datetime(2026, 3, 29, 0, 40, tzinfo=UTC),  # 01:40 CET; at 01:00 UTC it jumps to 03:00
}
DETAIL = "OrderGetMoreDetails"


class SimClock:
    """The store's clock: moves only when the scheduler says so."""

    PARIS = PARIS

    def __init__(self, start: datetime) -> None:
        self.instant = start

    def __call__(self) -> datetime:
        return self.instant

    def advance(self, seconds: float) -> None:
        self.instant += timedelta(seconds=seconds)


@dataclass
class Scenario:
    seed: int
    night: str
    skew_s: float  # host clock minus store clock
    list_order: str
    count: int
    visible: int
    page_size: int
    runs: int
    activity: float  # probability of a store action before a request
    stop_rate: float  # probability of stopping after a page
    fault_rate: float  # probability of a blank or malformed detail reply
    stamp_lag_s: float = 0.0  # the store's database stamps orders this far behind its Date header
    server_date_clock: str = "database"  # GetServerDate reads the clock that stamps orders (docs/oxatis.md)
    no_date_rate: float = 0.0  # probability that a run's replies carry no Date header
    delete_rate: float = 0.0  # share of store actions that delete an order

    @classmethod
    def from_seed(cls, seed: int) -> Scenario:
        rng = random.Random(seed)
        count = rng.randint(12, 36)
        return cls(
            seed=seed,
            night=("ordinary", "fall_back", "spring_forward")[seed % 3],
            skew_s=rng.choice((-600.0, -30.0, 0.0, 2.0, 60.0, 600.0, rng.uniform(-600, 600))),
            list_order=rng.choice(("modified", "created")),
            count=count,
            visible=count - rng.randint(0, 6),
            page_size=rng.choice((3, 4, 5, 7)),
            runs=rng.randint(2, 6),
            activity=rng.choice((0.1, 0.3, 0.6)),
            stop_rate=rng.choice((0.0, 0.2, 0.4)),
            fault_rate=rng.choice((0.0, 0.05, 0.1)),
            stamp_lag_s=rng.choice((0.0, 0.0, 3.0, 30.0, 300.0)),
            no_date_rate=rng.choice((0.0, 0.0, 0.3, 1.0)),
            delete_rate=rng.choice((0.0, 0.1, 0.25)),
        )


@dataclass
class ContentCheck:
    """The database against the store's truth, order by order, by canonical content."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    wrongly_skipped: list[str] = field(default_factory=list)
    not_skipped: list[str] = field(default_factory=list)
    duplicates: int = 0

    @property
    def lost(self) -> int:
        """Orders a host would get wrong: missing, stale, or skipped although importable."""
        return len(self.missing) + len(self.stale) + len(self.wrongly_skipped)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.not_skipped or self.duplicates)


@dataclass
class Outcome:
    scenario: Scenario
    check: ContentCheck = field(default_factory=ContentCheck)
    actions: int = 0
    final_completed: bool = True
    list_calls: int = 0
    detail_calls: int = 0

    @property
    def ok(self) -> bool:
        return self.final_completed and self.check.ok

    def describe(self) -> str:
        return f"seed {self.scenario.seed}: {self.scenario}; final_completed={self.final_completed}; {self.check}"


class Scheduler:
    """Acts on the store before each request, from the scenario's seeded random streams.

    The importer reads the next list page while detail calls are in flight, so two
    requests can arrive at once: each method draws from its own stream (the n-th
    list call of a seed always does the same thing) and a lock keeps the store's
    changes whole.
    """

    def __init__(self, scenario: Scenario, server: SandboxServer, clock: SimClock) -> None:
        self.scenario = scenario
        self.server = server
        self.clock = clock
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()
        self.active = True
        self.actions = 0

    def on_request(self, method: str) -> None:
        if not self.active:
            return
        with self._lock:
            stream = self._streams.setdefault(method, random.Random(f"{self.scenario.seed}:{method}"))
            self.clock.advance(stream.uniform(1.0, 20.0))
            if stream.random() < self.scenario.activity:
                self.act(stream)
            fault = method == DETAIL and stream.random() < self.scenario.fault_rate
            blank = stream.random() < 0.5
        if fault:
            raise Reply(replies.envelope(None) if blank else replies.MALFORMED)  # no Data/Order, or cut XML

    def between_runs(self) -> None:
        self.clock.advance(self.rng.uniform(30, 900))
        for _ in range(self.rng.randint(0, 4)):
            self.act(self.rng)

    def act(self, rng: random.Random) -> None:
        store = self.server.store
        self.actions += 1
        if rng.random() < self.scenario.delete_rate and store.visible > 4:  # the merchant deletes an order
            victim = data.order_id_for(rng.randint(1, store.visible))
            if store.order(victim) is not None:
                store.delete_order(victim)
                return
        roll = rng.random()
        if roll < 0.15 and store.create_order() is not None:
            return
        oxid = data.order_id_for(rng.randint(1, store.visible))
        order = store.order(oxid)
        if order is None:  # deleted earlier
            return
        if roll < 0.4:  # a change the summary shows
            state = rng.choice([sid for sid, *_ in data.STATES])
            store.modify(oxid, {"ProgressStateID": state, "PaymentStatusCode": rng.choice((0, 20, 40))})
        elif roll < 0.8:  # a change only the details show
            city = rng.choice(("Lyon", "Nantes", "Lille", "Brest", "Rouen"))
            store.modify(oxid, {"ShippingCity": city, "InternalNote": f"edit {self.actions}"})
        else:  # an address for an order that had none (or a new one)
            store.modify(
                oxid,
                {
                    "ShippingFirstName": "Jean",
                    "ShippingLastName": "Dupont",
                    "ShippingAddressL1": f"{self.actions} rue Neuve",
                    "ShippingZipCode": "75011",
                    "ShippingCity": "Paris",
                    "ShippingCountryISOCode": "FR",
                },
            )


def _settings(server: SandboxServer, page_size: int) -> dict[str, Any]:
    return {
        "token": server.config.token,
        "base_url": server.url,
        "store_timezone": "Europe/Paris",
        "retry_backoff": 0.0,
        "page_size": page_size,
        "max_concurrency": 1,
        "requests_per_second": 10_000.0,
    }


def _canonical(order: Order) -> str:
    return json.dumps(to_dict(order), sort_keys=True, ensure_ascii=False)


def simulate(oxatis: Channel, seed: int, **overrides: Any) -> Outcome:
    """Run the scenario of ``seed`` (fields in ``overrides`` replace the drawn ones)."""
    scenario = dataclasses.replace(Scenario.from_seed(seed), **overrides)
    start = NIGHTS[scenario.night]
    clock = SimClock(start)
    anchor = (start - timedelta(hours=1)).astimezone(PARIS).replace(tzinfo=None)
    config = SandboxConfig(
        count=scenario.count,
        seed=seed,
        visible=scenario.visible,
        list_order=scenario.list_order,
        clock=clock,
        anchor=anchor,
        stamp_lag=scenario.stamp_lag_s,
        server_date_clock=scenario.server_date_clock,
    )
    outcome = Outcome(scenario)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as server:
        scheduler = Scheduler(scenario, server, clock)
        server.on_request = scheduler.on_request
        host_clock = lambda: clock() + timedelta(seconds=scenario.skew_s)  # noqa: E731
        stop_rng = random.Random(seed * 31 + 7)
        with SQLiteStore(Path(tmp) / "orders.sqlite3") as db:
            for _ in range(scenario.runs):
                server.config.date_header = stop_rng.random() >= scenario.no_date_rate
                with oxatis.connect(_settings(server, scenario.page_size)) as connection:
                    Importer(oxatis, connection, db, clock=host_clock).run(
                        should_stop=lambda: stop_rng.random() < scenario.stop_rate
                    )
                scheduler.between_runs()
            scheduler.active = False  # the store goes quiet
            server.config.date_header = True
            clock.advance(3600)
            calls_before = dict(server.calls)
            with oxatis.connect(_settings(server, scenario.page_size)) as connection:
                final = Importer(oxatis, connection, db, clock=host_clock).run()
            outcome.final_completed = final.completed
            outcome.list_calls = server.calls["OrderGetSummaryList"] - calls_before.get("OrderGetSummaryList", 0)
            outcome.detail_calls = server.calls[DETAIL] - calls_before.get(DETAIL, 0)
            outcome.actions = scheduler.actions
            outcome.check = check_content(oxatis, server, db)
    return outcome


def check_content(oxatis: Channel, server: SandboxServer, db: SQLiteStore, **settings: Any) -> ContentCheck:
    """Map every order the sandbox holds from its detail reply and compare with the database.

    ``settings`` are the import's own settings that change the mapping (a stock-location characteristic, an AppId).
    """
    check = ContentCheck()
    stored = [s.order for s in db.iter_orders("oxatis")]
    by_id = {o.order_id: o for o in stored}
    check.duplicates = len(stored) - len(by_id)
    skipped = {oid for _, oid, _ in db.skipped("oxatis")}
    with oxatis.connect({**_settings(server, 50), **settings}) as connection:
        assert isinstance(connection, OxatisConnection)
        ctx = connection.mapping_context()
        for n in range(1, server.store.visible + 1):
            oxid = str(data.order_id_for(n))
            if server.store.order(int(oxid)) is None:  # deleted in the store: nothing to compare
                continue
            check.checked += 1
            try:
                truth: Order | SkippedOrder = to_order(connection.client.order_details(oxid), ctx)
            except PayloadError as exc:  # the store's own data is invalid: the truth is a skip
                truth = SkippedOrder(oxid, str(exc))
            if isinstance(truth, SkippedOrder):
                if oxid not in skipped:
                    check.not_skipped.append(oxid)
                continue
            mine = by_id.get(oxid)
            if mine is None:
                (check.wrongly_skipped if oxid in skipped else check.missing).append(oxid)
            elif _canonical(mine) != _canonical(truth):
                check.stale.append(oxid)
    return check


def account_mismatches(oxatis: Channel, settings: dict[str, Any], db: Any, orders: int) -> tuple[list[str], int]:
    """One account of a multi-store database against its sandbox store, by content.

    Returns the order ids that differ (missing, stale, or stored although the truth is a skip)
    and how many orders the store has that are importable.
    """
    wrong: list[str] = []
    importable = 0
    with oxatis.connect(settings) as connection:
        assert isinstance(connection, OxatisConnection)
        ctx = connection.mapping_context()
        for n in range(1, orders + 1):
            oxid = str(data.order_id_for(n))
            truth = to_order(connection.client.order_details(oxid), ctx)
            stored = db.get_order("oxatis", oxid, connection.account_id)
            if isinstance(truth, SkippedOrder):
                if stored is not None:
                    wrong.append(oxid)
                continue
            importable += 1
            if stored is None or _canonical(stored.order) != _canonical(truth):
                wrong.append(oxid)
    return wrong, importable
