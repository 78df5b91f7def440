"""Benchmarks for channel_core and channel_oxatis. Reports figures and ratios measured in one run.

    python benchmarks/run.py decode          # reply bytes -> canonical Order vs a bare lxml parse (paired)
    python benchmarks/run.py throughput      # 0 ms: import rate vs the sandbox's serving rate (load: own process),
                                             # client CPU per order at 0 ms and at a store's pace (20 ms)
    python benchmarks/run.py busy            # the store edits orders after every list page: list calls, loss
    python benchmarks/run.py pg              # one store's import: PostgreSQL vs SQLite, round trips per order
    python benchmarks/run.py fleet           # 1k/10k/100k stores: claim, tick, status --json, query plans
    python benchmarks/run.py jobs            # unchanged stores through one worker: CPU and statements per sync
    python benchmarks/run.py tls             # a job's first HTTPS call: a new TLS connection vs one left by a job
    python benchmarks/run.py engine          # procrastinate on PostgreSQL: stores per minute, 1 vs 2 workers
    python benchmarks/run.py latency         # 1,000 orders at 50 ms latency, 8 in flight: share of 8 / 50 ms
    python benchmarks/run.py concurrency     # 1,000 orders at 50 ms latency: 1 in flight vs default
    python benchmarks/run.py calls           # detail calls per imported order; 0 on an unchanged re-sync
    python benchmarks/run.py memory          # peak RSS importing 1,000 vs 20,000 orders
    python benchmarks/run.py shopify         # Shopify: 5,000 orders at 0 and 50 ms, orders/s and points per order
    python benchmarks/run.py webhooks        # store change -> database: webhooks vs polling; 200 deliveries/s for 30 s
    python benchmarks/run.py                 # all of them

Not tests: nothing here asserts on timings; targets are printed beside the figures.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from channel_core import Channels, StatusMapping, UnmappedCodes
from channel_core.sync import Importer, SQLiteStore
from channel_oxatis.client import decode_order
from channel_oxatis.mapping import DEFAULT_STATUS_MAPPING, MappingContext, to_order
from channel_oxatis.sandbox import SandboxConfig, SandboxServer, SandboxStore, replies
from channel_oxatis.wire import parse_envelope


def _best(fn: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _paired_ratio(bodies: list[bytes], decode: Callable[[bytes], Any], rounds: int = 7) -> tuple[float, float, float]:
    """Decode vs bare parse, paired and interleaved reply by reply, in this thread's CPU time.

    Returns (median ratio over rounds, parse us per reply, decode us per reply) of the median round.
    """
    results = []
    for _ in range(rounds):
        gc.collect()
        parse_ns = decode_ns = 0
        for body in bodies:
            started = time.thread_time_ns()
            etree.fromstring(body)
            middle = time.thread_time_ns()
            decode(body)
            parse_ns += middle - started
            decode_ns += time.thread_time_ns() - middle
        results.append((decode_ns / parse_ns, parse_ns / len(bodies) / 1000, decode_ns / len(bodies) / 1000))
    results.sort()
    return results[len(results) // 2]


def _complete_order(store: SandboxStore) -> dict[str, Any]:
    """A sandbox order with every OrderEntity field the sandbox knows filled, 4 lines and 2 bundled items."""
    from channel_oxatis.sandbox.wsdl import ORDER_FIELDS

    base = next(
        o
        for n in range(1, store.count + 1)
        if (o := store.order(100000 + n)) and any(i.get("BundledItems") for i in o.get("OrderItems") or [])
    )
    lines = list(base["OrderItems"])
    while len(lines) < 4:
        lines.append({**lines[-1], "ItemOxID": 500100 + len(lines), "BundledItems": None})
    lines = lines[:4]
    bundle = next(i["BundledItems"] for i in lines if i.get("BundledItems"))
    lines[0] = {**lines[0], "BundledItems": (list(bundle) * 2)[:2]}
    for line in lines[1:]:
        line["BundledItems"] = None
    filler = {"str": "x", "int": 1, "bool": True}
    complete = {**base, "OrderItems": lines}
    for name in ORDER_FIELDS:
        if complete.get(name) is None and name not in ("OrderItems",):
            complete[name] = filler["str"] if "Name" in name or "Address" in name or "Note" in name else None
    return complete


def bench_decode(count: int = 500) -> dict[str, Any]:
    store = SandboxStore(count=count)
    bodies = [replies.envelope(replies.render_order(store.order(100000 + n) or {})) for n in range(1, count + 1)]
    ctx = MappingContext(
        tz=zoneinfo.ZoneInfo("Europe/Paris"),
        account_country="FR",
        states_by_id={},
        status_mapping=StatusMapping.merged(DEFAULT_STATUS_MAPPING),
        shipped_code="SST-SHIPPED",
        unmapped=UnmappedCodes(),
    )

    def decode(body: bytes) -> Any:
        return to_order(decode_order(parse_envelope(body, operation="OrderGetMoreDetails")), ctx)

    def walk(element: Any) -> None:
        for child in element:
            if len(child):
                walk(child)
            else:
                _ = child.tag, child.text

    ratio, parse_us, decode_us = _paired_ratio(bodies, decode)
    floor, _, _ = _paired_ratio(bodies, lambda body: walk(etree.fromstring(body)))
    complete = replies.envelope(replies.render_order(_complete_order(store)))
    complete_ratio, _, _ = _paired_ratio([complete] * 200, decode)
    return {
        "orders": count,
        "mean_reply_bytes": round(sum(len(b) for b in bodies) / len(bodies)),
        "lxml_parse_us_per_order": round(parse_us, 1),
        "decode_to_order_us_per_order": round(decode_us, 1),
        "ratio": round(ratio, 2),
        "target_ratio_max": 5.0,
        "complete_reply_bytes": len(complete),
        "complete_reply_ratio": round(complete_ratio, 2),
        "target_complete_ratio_max": 3.0,
        "parse_and_touch_every_element_ratio": round(floor, 2),  # parse + walk vs parse: the lxml floor
        "method": "paired and interleaved per reply, thread CPU time, median of 7 rounds",
    }


class _RateProbe:
    """Counts request starts seen by the sandbox to find the highest rate over any 1-second window."""

    def __init__(self, server: SandboxServer) -> None:
        self.times: deque[float] = deque()
        self.peak = 0
        original = server._handle
        lock = threading.Lock()

        def handle(path: str, body: bytes, user_agent: str = "") -> None:
            now = time.monotonic()
            with lock:
                self.times.append(now)
                while self.times and now - self.times[0] > 1.0:
                    self.times.popleft()
                self.peak = max(self.peak, len(self.times))
            original(path, body, user_agent)

        server._handle = handle  # type: ignore[method-assign]


def _settings(server: SandboxServer, **extra: Any) -> dict[str, Any]:
    return {"token": server.config.token, "base_url": server.url, "store_timezone": "Europe/Paris", **extra}


def _timed_import(count: int, latency: float, **settings: Any) -> tuple[float, int, int]:
    oxatis = Channels.discover()["oxatis"]
    with SandboxServer(SandboxConfig(count=count, latency=latency)) as server, tempfile.TemporaryDirectory() as tmp:
        probe = _RateProbe(server)
        with SQLiteStore(Path(tmp) / "bench.sqlite3") as store:
            connection = oxatis.connect(_settings(server, **settings))
            started = time.perf_counter()
            summary = Importer(oxatis, connection, store).run()
            elapsed = time.perf_counter() - started
            connection.close()
        assert summary.completed
        return elapsed, probe.peak, server.detail_calls()


def bench_concurrency(count: int = 1000, latency: float = 0.05, rate: float = 200.0) -> dict[str, Any]:
    common = {"page_size": 100, "requests_per_second": rate}
    serial, _, _ = _timed_import(count, latency, max_concurrency=1, **common)
    parallel, parallel_peak, _ = _timed_import(count, latency, max_concurrency=10, **common)
    return {
        "orders": count,
        "latency_ms": latency * 1000,
        "configured_rate_per_s": rate,
        "one_in_flight_s": round(serial, 2),
        "ten_in_flight_s": round(parallel, 2),
        "speedup": round(serial / parallel, 2),
        "target_speedup_min": 5,
        "peak_requests_in_any_1s": parallel_peak,
        "rate_respected": parallel_peak <= rate + 10,  # +burst allowance
    }


def bench_calls(count: int = 1000) -> dict[str, Any]:
    oxatis = Channels.discover()["oxatis"]
    with SandboxServer(SandboxConfig(count=count)) as server, tempfile.TemporaryDirectory() as tmp:
        settings = _settings(server, requests_per_second=1000, page_size=100)
        with SQLiteStore(Path(tmp) / "calls.sqlite3") as store:
            first = Importer(oxatis, oxatis.connect(settings), store).run()
            after_first = dict(server.calls)
            second = Importer(oxatis, oxatis.connect(settings), store).run()
            after_second = dict(server.calls)
    new_orders = first.imported + first.skipped
    resync_details = after_second.get("OrderGetMoreDetails", 0) - after_first.get("OrderGetMoreDetails", 0)
    resync_lists = after_second.get("OrderGetSummaryList", 0) - after_first.get("OrderGetSummaryList", 0)
    return {
        "orders": count,
        "detail_calls_first_sync": after_first.get("OrderGetMoreDetails", 0),
        "detail_calls_per_new_order": round(after_first.get("OrderGetMoreDetails", 0) / new_orders, 3),
        "target_per_order_max": 1,
        "resync_detail_calls": resync_details,
        "resync_list_calls": resync_lists,
        "resync_written": second.imported + second.updated,
        "target_resync_detail_calls": 0,
    }


def memory_child(count: int) -> None:
    oxatis = Channels.discover()["oxatis"]
    with SandboxServer(SandboxConfig(count=count)) as server, tempfile.TemporaryDirectory() as tmp:
        settings = _settings(server, requests_per_second=5000, page_size=100, max_concurrency=8)
        with SQLiteStore(Path(tmp) / "mem.sqlite3") as store:
            summary = Importer(oxatis, oxatis.connect(settings), store).run()
            stored = store.count_orders()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"orders": count, "stored": stored, "completed": summary.completed, "peak_rss_mb": peak_kb / 1024})
    )


def bench_memory(small: int = 1000, large: int = 20000) -> dict[str, Any]:
    results = {}
    for count in (small, large):
        command = [sys.executable, __file__, "memory-child", str(count)]  # our own script and interpreter
        child = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
        results[count] = json.loads(child.stdout.strip().splitlines()[-1])
    delta = results[large]["peak_rss_mb"] - results[small]["peak_rss_mb"]
    return {
        f"peak_rss_mb_{small}": round(results[small]["peak_rss_mb"], 1),
        f"peak_rss_mb_{large}": round(results[large]["peak_rss_mb"], 1),
        "delta_mb": round(delta, 1),
        "target_delta_max_mb": 30,
        "stored": {str(k): v["stored"] for k, v in results.items()},
    }


def bench_latency(count: int = 1000, latency: float = 0.05, in_flight: int = 8) -> dict[str, Any]:
    """A first import at 50 ms latency with 8 calls in flight: list pages fetched ahead while details run."""
    elapsed, _, details = _timed_import(
        count, latency, max_concurrency=in_flight, page_size=50, requests_per_second=100_000.0
    )
    ideal = in_flight / latency
    achieved = count / elapsed
    return {
        "orders": count,
        "latency_ms": latency * 1000,
        "in_flight": in_flight,
        "orders_per_s": round(achieved, 1),
        "ideal_orders_per_s": round(ideal, 1),
        "fraction_of_ideal": round(achieved / ideal, 3),
        "target_fraction_min": 0.9,
        "detail_calls": details,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sandbox_process(count: int, latency: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "channel_oxatis.sandbox", "--port", str(port), "--orders", str(count)]
    command += ["--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    import http.client

    for _ in range(200):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the sandbox process did not start")


def _bare_load(url: str, count: int, seconds: float, threads: int) -> float:
    """Replies per second a bare keep-alive http.client load generator gets from the sandbox (detail calls)."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    done = [0] * threads
    deadline = time.perf_counter() + seconds

    def work(slot: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        n = slot
        while time.perf_counter() < deadline:
            oxid = 100001 + n % count
            data = f"<OrderId><OxID>{oxid}</OxID></OrderId>"
            body = urlencode({"Token": "sandbox-token", "Method": "OrderGetMoreDetails", "Data": data})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            connection.request("POST", "/webservices/httpservices/OrderServices.aspx", body, headers)
            connection.getresponse().read()
            done[slot] += 1
            n += threads
        connection.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def _client_import(url: str, in_flight: int) -> tuple[int, float, float]:
    """One first import from the sandbox at ``url``: (orders handled, the client's CPU seconds, wall seconds)."""
    oxatis = Channels.discover()["oxatis"]
    settings = {
        "token": "sandbox-token",
        "base_url": url,
        "store_timezone": "Europe/Paris",
        "max_concurrency": in_flight,
        "requests_per_second": 100_000.0,
    }
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "t.sqlite3") as store:
        connection = oxatis.connect(settings)
        cpu, wall = time.process_time(), time.perf_counter()
        summary = Importer(oxatis, connection, store).run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        connection.close()
    return summary.imported + summary.skipped, cpu, wall


def bench_throughput(count: int = 2000, in_flight: int = 8, paced: float = 0.02) -> dict[str, Any]:
    """A first import at 0 ms latency against a sandbox in its own process, beside that sandbox's own rate;
    then the client's CPU per order against a sandbox answering in ``paced`` seconds, a real store's pace."""
    process, url = _sandbox_process(count)
    try:
        # the load generator in its own process, so it shares no interpreter (and no GIL) with the client
        command = [sys.executable, __file__, "load-child", url, str(count), "5.0", str(in_flight)]
        serving = float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)  # noqa: S603
        handled, cpu, wall = _client_import(url, in_flight)
    finally:
        process.terminate()
        process.wait(timeout=10)
    process, url = _sandbox_process(count, latency=paced)
    try:
        paced_handled, paced_cpu, _ = _client_import(url, in_flight)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return {
        "orders": handled,
        "sandbox_replies_per_s": round(serving, 1),
        "import_orders_per_s": round(handled / wall, 1),
        "fraction_of_sandbox_rate": round(handled / wall / serving, 3),
        "target_fraction_min": 0.5,
        "client_cpu_ms_per_order": round(cpu * 1000 / handled, 3),
        "target_client_cpu_ms_per_order_max": 0.3,
        f"client_cpu_ms_per_order_sandbox_at_{paced * 1000:.0f}ms": round(paced_cpu * 1000 / paced_handled, 3),
    }


def bench_busy(count: int = 1000, edits_per_page: int = 3, seed: int = 1) -> dict[str, Any]:
    """A first import while the store edits orders after every list page: list-call cost and loss by content."""
    import random

    from channel_core import SkippedOrder, to_dict
    from channel_oxatis.sandbox import data

    oxatis = Channels.discover()["oxatis"]
    rng = random.Random(seed)
    with SandboxServer(SandboxConfig(count=count)) as server, tempfile.TemporaryDirectory() as tmp:

        def busy(page_number: int, served: Any) -> None:
            for _ in range(edits_per_page):
                oxid = data.order_id_for(rng.randint(1, count))
                server.store.modify(oxid, {"InternalNote": f"edit {rng.random()}", "ShippingCity": "Brest"})

        server.operations._maybe_modify_after_page = busy  # type: ignore[method-assign]
        settings = _settings(server, page_size=50, requests_per_second=100_000.0)
        with SQLiteStore(Path(tmp) / "busy.sqlite3") as store:
            first = Importer(oxatis, oxatis.connect(settings), store).run()
            lists_first, details_first = server.calls["OrderGetSummaryList"], server.detail_calls()
            server.operations._maybe_modify_after_page = lambda *a: None  # type: ignore[method-assign]
            connection = oxatis.connect(settings)
            Importer(oxatis, connection, store).run()
            stored = {s.order.order_id: json.dumps(to_dict(s.order), sort_keys=True) for s in store.iter_orders()}
            lost = 0
            for n in range(1, count + 1):
                oxid = str(data.order_id_for(n))
                raw = connection.client.order_details(oxid)  # type: ignore[attr-defined]
                truth = to_order(raw, connection.mapping_context())  # type: ignore[attr-defined]
                if isinstance(truth, SkippedOrder):
                    continue
                lost += stored.get(oxid) != json.dumps(to_dict(truth), sort_keys=True)
    return {
        "orders": count,
        "edits_per_list_page": edits_per_page,
        "first_run_completed": first.completed,
        "list_calls_first_import": lists_first,
        "list_calls_per_1000_orders": round(lists_first * 1000 / count, 1),
        "detail_calls_first_import": details_first,
        "list_calls_next_run": server.calls["OrderGetSummaryList"] - lists_first,
        "lost_by_content_after_a_quiet_run": lost,
        "target_lost": 0,
    }


def _new_database(dsn: str) -> str:
    import uuid

    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return dsn.rsplit("/", 1)[0] + f"/{name}"


def _fleet_round(dsn: str, processes: int, stores: int, orders: int, latency: float, concurrency: int) -> float:
    """Seconds for ``processes`` ``channel worker --once`` processes to sync ``stores`` registered stores."""

    from channel_core.fleet.engine import enqueue_due, make_app
    from channel_core.sync.postgres import PostgresStore

    database = _new_database(dsn)
    tokens = {f"shop-{n}": f"bench-token-{n}" for n in range(stores)}
    config = SandboxConfig(count=orders, token=tokens["shop-0"], latency=latency, timezone="UTC")
    with SandboxServer(config) as server:
        for n, key in enumerate(list(tokens)[1:], start=1):
            server.add_store(tokens[key], count=orders, seed=n)
        _register_env_stores(database, server.url, tokens)
        app = make_app(database, schedule=None)
        with app.open():
            enqueue_due(app, database)
        env = {**os.environ, **{key.upper().replace("-", "_") + "_TOKEN": token for key, token in tokens.items()}}
        command = [sys.executable, "-m", "channel_core", "--db", database, "worker", "--once"]
        command += ["--concurrency", str(concurrency)]
        began = time.perf_counter()
        workers = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
            for _ in range(processes)
        ]
        codes = [worker.wait() for worker in workers]
        elapsed = time.perf_counter() - began
        with PostgresStore(database) as db:
            synced = db.execute("SELECT count(DISTINCT store_key) FROM sync_runs WHERE stopped IS NULL")[0][0]
    if codes != [0] * processes or synced != stores:
        raise RuntimeError(f"fleet round failed: exit codes {codes}, {synced} of {stores} stores synced")
    return elapsed


def _register_env_stores(database: str, url: str, tokens: dict[str, str]) -> None:
    """The channel tables, and one Oxatis store per key of ``tokens`` on the sandbox at ``url``, its token read
    from ``<KEY>_TOKEN`` (``env:`` credentials), due in an hour."""
    from datetime import timedelta

    from channel_core.fleet.engine import prepare_database
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore

    prepare_database(database)
    oxatis = Channels.discover()["oxatis"]
    with PostgresStore(database) as db:
        for key in tokens:
            StoreRegistry(db).add(
                key,
                oxatis.info(),
                settings={"base_url": url, "store_timezone": "UTC", "requests_per_second": 1e5},
                credentials="env:" + key.upper().replace("-", "_"),
                every=timedelta(hours=1),
            )


def _import_rate(store_factory: Callable[[], Any], orders: int) -> float:
    """Orders per second for one first import of ``orders`` orders (sandbox at 0 ms) into the given store."""
    oxatis = Channels.discover()["oxatis"]
    with SandboxServer(SandboxConfig(count=orders, timezone="UTC")) as server, store_factory() as store:
        settings = _settings(server, page_size=100, requests_per_second=1e6)
        began = time.perf_counter()
        summary = Importer(oxatis, oxatis.connect(settings), store).run()
        elapsed = time.perf_counter() - began
    if not summary.completed:
        raise RuntimeError(f"import stopped: {summary.stopped}")
    return orders / elapsed


def bench_engine(stores: int = 20, orders: int = 200, latency: float = 0.05) -> dict[str, Any]:
    """procrastinate on a throwaway PostgreSQL: stores synced per minute by 1 and 2 ``channel worker``
    processes, engine overhead per job, and PostgreSQL against SQLite for one store's import."""
    import procrastinate

    from channel_core.sync.postgres import PostgresStore

    script = Path(__file__).resolve().parents[1] / "scripts" / "throwaway-postgres"
    started = subprocess.run([str(script), "start"], check=True, capture_output=True, text=True)  # noqa: S603
    dsn, cluster = started.stdout.split()
    try:
        results: dict[str, Any] = {
            "stores": stores,
            "orders_per_store": orders,
            "latency_ms": latency * 1000,
            "jobs_per_worker_process": 2,
        }
        for processes in (1, 2):
            elapsed = _fleet_round(dsn, processes, stores, orders, latency, concurrency=2)
            label = f"stores_per_minute_{processes}_worker_process{'es' if processes > 1 else ''}"
            results[label] = round(stores / elapsed * 60, 1)
        results["ratio_2_to_1_worker_processes"] = round(
            results["stores_per_minute_2_worker_processes"] / results["stores_per_minute_1_worker_process"], 2
        )
        noop_app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_new_database(dsn)))

        @noop_app.task(name="bench.noop", queue="noop")
        def noop() -> None:
            return None

        jobs = 200
        with noop_app.open():
            noop_app.schema_manager.apply_schema()
            for _ in range(jobs):
                noop.defer()
        began = time.perf_counter()
        noop_app.run_worker(queues=["noop"], wait=False, concurrency=1, install_signal_handlers=False)
        results["engine_overhead_ms_per_job"] = round((time.perf_counter() - began) / jobs * 1000, 2)
        import_orders = 2000
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_rate = _import_rate(lambda: SQLiteStore(Path(tmp) / "one.sqlite3"), import_orders)
        postgres_db = _new_database(dsn)
        postgres_rate = _import_rate(lambda: PostgresStore(postgres_db), import_orders)
        results["one_store_import_orders_per_s_sqlite"] = round(sqlite_rate)
        results["one_store_import_orders_per_s_postgresql"] = round(postgres_rate)
        results["ratio_postgresql_to_sqlite"] = round(postgres_rate / sqlite_rate, 2)
        return results
    finally:
        subprocess.run([str(script), "stop", cluster], check=False)  # noqa: S603


def _throwaway_cluster(*, statements: bool = False) -> tuple[str, str]:
    """A throwaway PostgreSQL (DSN, directory); with ``statements`` it counts statements (pg_stat_statements)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "throwaway-postgres"
    started = subprocess.run([str(script), "start"], check=True, capture_output=True, text=True)  # noqa: S603
    dsn, cluster = started.stdout.split()
    if statements:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        subprocess.run([str(script), "restart", cluster, "fast"], check=True)  # noqa: S603
    return dsn, cluster


def _stop_cluster(cluster: str) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "throwaway-postgres"
    subprocess.run([str(script), "stop", cluster], check=False)  # noqa: S603


def _statements(dsn: str) -> tuple[int, int]:
    """(statements, transactions) the whole cluster ran since the last reset, less this probe's own."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query NOT LIKE '%%pg_stat_statements%%' AND query NOT LIKE '%%pg_stat_database%%'), "
            "(SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _reset_statements(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        admin.execute("SELECT pg_stat_statements_reset()")
        admin.execute("SELECT pg_stat_reset()")


class _RoundTripProxy:
    """A TCP proxy in front of PostgreSQL that counts round trips: each time a client sends after the server
    last spoke on that connection (or first), one round trip begins. Statements sent together (a pipeline,
    BEGIN with its query) count once; statements counted by pg_stat_statements count each."""

    def __init__(self, host: str, port: int) -> None:
        import asyncio

        self.target = (host, port)
        self.round_trips = 0
        self.bursts: list[bytes] | None = [] if os.environ.get("BENCH_ROUND_TRIPS") else None
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    def _serve(self) -> None:
        import asyncio

        async def pipe(reader: Any, writer: Any, state: dict[str, bool], client: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if client and state["server_spoke"]:
                        self.round_trips += 1
                        state["server_spoke"] = False
                        if self.bursts is not None:
                            self.bursts.append(data[:120])
                    elif not client:
                        state["server_spoke"] = True
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def handle(reader: Any, writer: Any) -> None:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            state = {"server_spoke": True}
            await asyncio.gather(
                pipe(reader, upstream_writer, state, True), pipe(upstream_reader, writer, state, False)
            )

        async def main() -> None:
            await asyncio.start_server(handle, "127.0.0.1", self.port)
            self._ready.set()
            await asyncio.Event().wait()

        self._loop.run_until_complete(main())

    def dsn(self, dsn: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.port}"))


def _worker_pass(database: str, env: dict[str, str], concurrency: int) -> tuple[float, float]:
    """One ``channel worker --once`` process until its queue is dry: (its CPU seconds, wall seconds)."""
    command = [sys.executable, "-m", "channel_core", "--db", database, "worker", "--once"]
    command += ["--concurrency", str(concurrency)]
    if profile := os.environ.get("BENCH_PROFILE"):  # py-spy samples every thread of the worker: where CPU goes
        command[:0] = ["py-spy", "record", "--format", "raw", "--rate", "500", "-o", profile, "--"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    worker = subprocess.run(  # noqa: S603
        command, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if worker.returncode != 0:
        raise RuntimeError(f"worker failed ({worker.returncode}): {worker.stderr.decode()[-2000:]}")
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), wall


def bench_jobs(stores: int = 300, orders: int = 5) -> dict[str, Any]:
    """Syncs of unchanged stores, the sandbox in its own process. (1) One ``channel worker --once`` process,
    started cold: its CPU per sync (a pass with no job subtracted), statements, round trips and jobs per second.
    (2) A long-running worker's steady state: the same app run twice in this process, the second pass measured
    (connections pooled, each store's connect-time lookups kept). (3) The same worker with its lookup cache
    emptied, as a fleet beyond the cache's size meets each store: the lookups come from the store's row."""
    from urllib.parse import urlsplit

    from channel_core.fleet.engine import enqueue_sync, make_app
    from channel_core.sync.postgres import PostgresStore

    dsn, cluster = _throwaway_cluster(statements=True)
    port = _free_port()
    command = [sys.executable, "-m", "channel_oxatis.sandbox", "--port", str(port), "--orders", str(orders)]
    command += ["--stores", str(stores), "--timezone", "UTC"]
    sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    results: dict[str, Any] = {"stores": stores, "orders_per_store": orders}
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
        database = _new_database(dsn)
        tokens = {f"shop-{n}": "sandbox-token" + (f"-{n}" if n > 1 else "") for n in range(1, stores + 1)}
        _register_env_stores(database, url, tokens)
        env = {**os.environ, **{key.upper().replace("-", "_") + "_TOKEN": tok for key, tok in tokens.items()}}

        def queue_all(app: Any) -> None:
            with app.open():
                for key in tokens:
                    enqueue_sync(app, key)

        queue_all(make_app(database, schedule=None))
        _worker_pass(database, env, 1)  # the first imports
        _reset_statements(database)
        idle_cpu, _ = _worker_pass(database, env, 1)  # start-up and shutdown, no job
        idle_statements, idle_transactions = _statements(database)
        target = urlsplit(database)
        proxy = _RoundTripProxy(target.hostname or "127.0.0.1", target.port or 5432)
        through_proxy = proxy.dsn(database)
        _worker_pass(through_proxy, env, 1)  # an idle pass again, through the proxy: its round trips
        idle_round_trips = proxy.round_trips
        queue_all(make_app(database, schedule=None))
        _reset_statements(database)
        proxy.round_trips = 0
        cpu, wall = _worker_pass(through_proxy, env, 1)
        round_trips = proxy.round_trips
        statements, transactions = _statements(database)
        with PostgresStore(database) as db:
            changed = db.execute("SELECT count(*) FROM sync_runs WHERE (summary->>'imported')::int > 0")[0][0]
        results.update(
            {
                "orders_imported_after_the_first_pass": changed - stores,
                "cold_worker_cpu_ms_per_sync": round((cpu - idle_cpu) * 1000 / stores, 2),
                "cold_statements_per_sync": round((statements - idle_statements) / stores, 1),
                "cold_transactions_per_sync": round((transactions - idle_transactions) / stores, 1),
                "cold_round_trips_per_sync": round((round_trips - idle_round_trips) / stores, 1),
                "cold_jobs_per_s_one_worker_process": round(stores / wall, 1),
            }
        )
        os.environ.update({k: v for k, v in env.items() if k.endswith("_TOKEN")})
        counted = make_app(through_proxy, schedule=None)  # the proxy shares this process: round trips only
        for _ in range(2):
            queue_all(counted)
            proxy.round_trips = 0
            counted.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
        warm_round_trips = proxy.round_trips
        app = make_app(database, schedule=None)
        queue_all(app)
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)  # warms pool and lookups
        queue_all(app)
        _reset_statements(database)
        cpu, began = time.process_time(), time.perf_counter()
        if os.environ.get("BENCH_YAPPI"):  # where the warm pass's CPU goes, every thread (pip install yappi)
            import importlib

            yappi = importlib.import_module("yappi")
            yappi.set_clock_type("cpu")
            yappi.start()
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - began
        if os.environ.get("BENCH_YAPPI"):
            yappi.stop()
            for stat in list(yappi.get_func_stats().sort("ttot"))[:70]:
                print(f"{stat.ttot * 1000 / stores:8.3f} {stat.ncall:7d} {stat.module[-45:]}:{stat.name}")
        statements, _ = _statements(database)
        # (3) A fleet larger than a process's lookup cache: the worker meets each store as if new to it; what
        # connect asks comes from the store's row (before it was kept there: two more calls per sync).
        from channel_oxatis.plugin import _LOOKUPS

        queue_all(app)
        _LOOKUPS.clear()
        unkept_cpu = time.process_time()
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
        unkept_cpu = time.process_time() - unkept_cpu
        results.update(
            {
                "warm_worker_cpu_ms_per_sync_process_cache_empty": round(unkept_cpu * 1000 / stores, 2),
                "warm_worker_cpu_ms_per_sync": round(cpu * 1000 / stores, 2),
                "target_worker_cpu_ms_per_sync_max": 3.0,
                "warm_statements_per_sync": round(statements / stores, 1),
                "warm_round_trips_per_sync": round(warm_round_trips / stores, 1),
                "target_round_trips_per_sync_max": 8,
                "warm_jobs_per_s_one_worker": round(stores / wall, 1),
            }
        )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        _stop_cluster(cluster)
    return results


def bench_tls(jobs: int = 300) -> dict[str, Any]:
    """Client CPU of a job's first call to an HTTPS host (a loopback server with a throwaway CA's certificate,
    serving in its own thread): a TLS handshake per job, as before connections outlived their client, against a
    connection another job left in the pool (``keepalive.IDLE_LINKS``). Needs trustme (the test extra)."""
    import socket
    import ssl

    import httpx
    import trustme

    from channel_core.http1 import Link
    from channel_core.keepalive import IdleLinks, KeepAliveTransport

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def serve_one(raw: socket.socket) -> None:
        try:
            with server_context.wrap_socket(raw, server_side=True) as conn:
                pending = b""
                while chunk := conn.recv(65536):
                    pending += chunk
                    while b"\r\n\r\n" in pending:
                        pending = pending.partition(b"\r\n\r\n")[2]
                        conn.sendall(ok)
        except OSError:
            return

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(raw,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    def tls() -> ssl.SSLContext:
        return trusting

    class _NoReuse(IdleLinks):
        def give(self, key: Any, link: Link) -> None:
            link.close()

    url = httpx.URL(f"https://localhost:{port}/x")
    timeout: dict[str, float | None] = {"connect": 5.0, "read": 5.0}

    def per_job(idle: IdleLinks) -> float:
        began = time.thread_time()
        for _ in range(jobs):
            transport = KeepAliveTransport(tls=tls, idle=idle)
            transport.send("GET", url, "/x", b"", {}, timeout)
            transport.close()
        return (time.thread_time() - began) * 1000 / jobs

    per_job(IdleLinks())  # warm-up
    fresh, pooled = per_job(_NoReuse()), per_job(IdleLinks())
    listener.close()
    return {
        "jobs": jobs,
        "client_cpu_ms_first_call_new_tls_connection": round(fresh, 3),
        "client_cpu_ms_first_call_pooled_connection": round(pooled, 3),
        "saved_ms_per_job": round(fresh - pooled, 3),
    }


def _bulk_registry(database: str, stores: int, runs_per_store: int) -> None:
    """``stores`` Oxatis stores whose next runs spread over a 10-minute interval (1/60 due per 10 s tick), with
    ``runs_per_store`` runs of history each, inserted in bulk (a few statements, whatever the size)."""
    import psycopg

    from channel_core.fleet.engine import prepare_database

    prepare_database(database)
    with psycopg.connect(database, autocommit=True) as db:
        db.execute(
            "INSERT INTO stores (store_key, channel, settings, credentials, every_seconds, next_run, quota_reset, "
            "quota_timezone, account_id, last_run_at, created_at, last_stopped, last_error) "
            "SELECT 'store-' || n, 'oxatis', '{}'::jsonb, 'env:S' || n, 600, "
            "now() + make_interval(secs => 600.0 * n / %(stores)s - 10), '00:00', 'UTC', 'acct-' || n, "
            "now() - make_interval(secs => 600 - 600.0 * n / %(stores)s), now() - interval '3 days', "
            "CASE WHEN n %% 97 = 0 THEN 'error' END, CASE WHEN n %% 97 = 0 THEN 'HTTP 503' END "
            "FROM generate_series(1, %(stores)s) AS n",
            {"stores": stores},
        )
        db.execute(
            "INSERT INTO sync_runs (channel, account_id, store_key, finished_at, stopped, summary) "
            "SELECT 'oxatis', 'acct-' || n, 'store-' || n, now() - make_interval(secs => 600 * r + n %% 600), "
            'NULL, \'{"imported": 0, "unchanged": 5}\'::jsonb '
            "FROM generate_series(1, %(stores)s) AS n, generate_series(1, %(runs)s) AS r",
            {"stores": stores, "runs": runs_per_store},
        )
        db.execute("ANALYZE")


def _plan(database: str, sql: str, params: Any = None) -> str:
    import psycopg

    with psycopg.connect(database, autocommit=True) as db:
        rows = db.execute("EXPLAIN " + sql, params).fetchall()
    return " / ".join(" ".join(str(r[0]).split()) for r in rows[:4])


def bench_fleet(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), runs_per_store: int = 10) -> dict[str, Any]:
    """Registries of 1,000, 10,000 and 100,000 stores: claim time per batch, one scheduling tick (the 1/60 due
    at a 10-minute interval, claimed and queued in procrastinate), ``channel status --json``, and query plans."""
    from channel_core.fleet.engine import CLAIM_BATCH, enqueue_due, make_app
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore

    dsn, cluster = _throwaway_cluster()
    results: dict[str, Any] = {"runs_of_history_per_store": runs_per_store, "claim_batch": CLAIM_BATCH}
    try:
        for size in sizes:
            database = _new_database(dsn)
            began = time.perf_counter()
            _bulk_registry(database, size, runs_per_store)
            results[f"{size}_insert_s"] = round(time.perf_counter() - began, 1)
            app = make_app(database, schedule=None)
            with app.open():
                began = time.perf_counter()
                queued = enqueue_due(app, database)
                tick = time.perf_counter() - began
            results[f"{size}_tick_stores_queued"] = len(queued)
            results[f"{size}_tick_s"] = round(tick, 3)
            with PostgresStore(database) as db:
                db.execute("UPDATE stores SET next_run = now() - interval '1 second'")  # everything due at once
                registry = StoreRegistry(db)
                batches, began = 0, time.perf_counter()
                while len(registry.claim_due(CLAIM_BATCH)) == CLAIM_BATCH:
                    batches += 1
                claim = time.perf_counter() - began
                results[f"{size}_claim_ms_per_batch_of_{CLAIM_BATCH}"] = round(claim * 1000 / (batches + 1), 1)
                began = time.perf_counter()
                registry.summary()
                registry.states(limit=50, worst_first=True)
                results[f"{size}_status_queries_s"] = round(time.perf_counter() - began, 3)
            command = [sys.executable, "-m", "channel_core", "--db", database, "status", "--json"]
            began = time.perf_counter()
            shown = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
            results[f"{size}_status_json_command_s"] = round(time.perf_counter() - began, 3)
            results[f"{size}_status_json_bytes"] = len(shown.stdout)
            if size == sizes[-1]:
                results["target_status_json_s_max_at_100000"] = 1.0
                results["plan_claim"] = _plan(
                    database,
                    "SELECT store_key FROM stores WHERE next_run <= now() AND (parked_until IS NULL OR "
                    "parked_until <= now()) ORDER BY next_run LIMIT 500 FOR UPDATE SKIP LOCKED",
                )
                results["plan_last_run"] = _plan(
                    database,
                    "SELECT finished_at FROM sync_runs WHERE store_key = 'store-5' ORDER BY finished_at DESC, "
                    "id DESC LIMIT 1",
                )
    finally:
        _stop_cluster(cluster)
    return results


def bench_pg(orders: int = 2000) -> dict[str, Any]:
    """One store's first import (sandbox at 0 ms, pages of 100) into PostgreSQL and into SQLite, and the
    PostgreSQL round trips per order, counted by a proxy in front of the server."""
    from urllib.parse import urlsplit

    from channel_core.sync.postgres import PostgresStore

    dsn, cluster = _throwaway_cluster()
    try:
        sqlite_rates, postgres_rates = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(3):  # alternated: a machine's drift over the runs weighs on both alike
                path = Path(tmp) / f"{n}.sqlite3"
                sqlite_rates.append(_import_rate(functools.partial(SQLiteStore, path), orders))
                postgres_rates.append(_import_rate(functools.partial(PostgresStore, _new_database(dsn)), orders))
        database = _new_database(dsn)
        with PostgresStore(database):
            pass  # migrated before the count
        target = urlsplit(database)
        proxy = _RoundTripProxy(target.hostname or "127.0.0.1", target.port or 5432)
        _import_rate(lambda: PostgresStore(proxy.dsn(database)), orders)
        round_trips = proxy.round_trips
    finally:
        _stop_cluster(cluster)
    sqlite_rate, postgres_rate = sorted(sqlite_rates)[1], sorted(postgres_rates)[1]
    return {
        "orders": orders,
        "import_orders_per_s_sqlite_median_of_3": round(sqlite_rate),
        "import_orders_per_s_postgresql_median_of_3": round(postgres_rate),
        "ratio_postgresql_to_sqlite": round(postgres_rate / sqlite_rate, 2),
        "target_ratio_min": 1.0,
        "postgresql_round_trips_per_order": round(round_trips / orders, 3),
        "target_round_trips_per_order_max": 0.1,
    }


def _shopify_import(count: int, latency: float, bucket: float, restore: float) -> dict[str, float]:
    from channel_shopify.connection import ShopifyConnection
    from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer

    shopify = Channels.discover()["shopify"]
    config = ShopifySandboxConfig(orders=count, latency=latency, bucket_size=bucket, restore_rate=restore)
    server = ShopifySandboxServer(config).start()
    try:
        tenant = server.add_shop("bench-shop.myshopify.com")
        settings = {
            "shop": "bench-shop.myshopify.com",
            "base_url": server.base_url("bench-shop.myshopify.com"),
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        }
        with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "o.sqlite3") as db:
            with shopify.connect(settings) as connection:
                assert isinstance(connection, ShopifyConnection)
                cpu, started = time.process_time(), time.perf_counter()
                summary = Importer(shopify, connection, db).run()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        listed = summary.imported + summary.skipped
        listing = [(r, a) for r, a in tenant.costs if a is not None and r > 100]  # the listing queries
        return {
            "orders": listed,
            "seconds": elapsed,
            "orders_per_second": listed / elapsed,
            "pages": summary.pages,
            "requested_points_per_order": sum(r for r, _ in listing) / listed,
            "actual_points_per_order": sum(a or 0 for _, a in listing) / listed,
            "throttled": tenant.bucket.throttled,
            "cpu_ms_per_order": 1000 * cpu / listed,  # client and sandbox: they share this process
        }
    finally:
        server.stop()


def bench_shopify(count: int = 5000) -> dict[str, Any]:
    """5,000 orders against the Shopify sandbox at 0 and 50 ms, with a bucket that never binds (so the figures
    are the channel's), and the points each order costs (which decide the time on a real plan: seconds =
    actual points per order x orders / restore rate)."""
    results: dict[str, Any] = {}
    for latency in (0.0, 0.05):
        figures = _shopify_import(count, latency, bucket=1e9, restore=1e9)
        tag = f"{int(latency * 1000)}ms"
        results[f"{tag} orders/s"] = (
            f"{figures['orders_per_second']:.0f} ({figures['orders']} in {figures['seconds']:.1f} s, "
            f"{figures['pages']} pages)"
        )
        results[f"{tag} points/order"] = (
            f"requested {figures['requested_points_per_order']:.1f}, actual {figures['actual_points_per_order']:.1f}"
        )
        results[f"{tag} cpu/order"] = f"{figures['cpu_ms_per_order']:.2f} ms (client and sandbox in one process)"
    standard = _shopify_import(200, 0.0, bucket=1000.0, restore=100.0)
    results["standard plan (1000/100) 200 orders"] = (
        f"{standard['orders_per_second']:.1f} orders/s, throttled {standard['throttled']:.0f}, "
        f"bound: 100 / {standard['actual_points_per_order']:.1f} points = "
        f"{100 / standard['actual_points_per_order']:.1f} orders/s"
    )
    return results


def _receiver_process(db: Path, settings: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHOPIFY_SHOP": settings["shop"],
        "SHOPIFY_BASE_URL": settings["base_url"],
        "SHOPIFY_CLIENT_ID": settings["client_id"],
        "SHOPIFY_CLIENT_SECRET": settings["client_secret"],
    }
    command = [sys.executable, "-m", "channel_core", "--db", str(db), "webhooks", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/webhooks/shopify", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the receiver did not start")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_webhooks(changes: int = 40, rate: float = 200.0, seconds: float = 30.0) -> dict[str, Any]:
    """Store change -> database with webhooks (a receiver process applying events on SQLite) against polling
    every 5 minutes (a change waits for the next run: uniform over the interval, plus the run); then
    ``rate`` signed deliveries per second for ``seconds`` against the receiver."""
    import random as random_module

    import httpx

    from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer
    from channel_shopify.webhooks import signature

    shopify = Channels.discover()["shopify"]
    domain = "bench-shop.myshopify.com"
    config = ShopifySandboxConfig(orders=200, webhook_backoff=0.05, bucket_size=20000.0, restore_rate=1000.0)
    server = ShopifySandboxServer(config).start()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "orders.sqlite3"
        tenant = server.add_shop(domain)
        settings = {
            "shop": domain,
            "base_url": server.base_url(domain),
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        }
        with SQLiteStore(db_path) as db, shopify.connect(settings) as connection:
            started = time.perf_counter()
            Importer(shopify, connection, db).run()
            full_run = time.perf_counter() - started
        port = _free_port()
        process = _receiver_process(db_path, settings, port)
        try:
            server.subscribe(domain, f"http://127.0.0.1:{port}/webhooks/shopify", ("orders/updated",))
            shop = server.shop(domain)
            rng = random_module.Random(4)
            delays = []
            with SQLiteStore(db_path) as db:
                for n in range(changes):
                    order = shop.orders[rng.choice(sorted(shop.orders))]
                    note = f"bench change {n}"
                    changed = time.perf_counter()
                    shop.edit(order.id, note=note)
                    while True:
                        stored = db.get_order("shopify", str(order.id))
                        if stored is not None and any(x.text == note for x in stored.order.notes):
                            break
                        if time.perf_counter() - changed > 60:
                            raise RuntimeError("a change never arrived")
                        time.sleep(0.005)
                    delays.append(time.perf_counter() - changed)
            results["webhook change -> database"] = (
                f"p50 {_percentile(delays, 0.5) * 1000:.0f} ms, p95 {_percentile(delays, 0.95) * 1000:.0f} ms "
                f"({changes} changes)"
            )
            results["polling every 5 min"] = (
                f"p50 {150 + full_run:.0f} s, p95 {285 + full_run:.0f} s (the wait for the next run, uniform over "
                f"the interval, plus a run: {full_run:.1f} s for 200 orders)"
            )
            # load: signed deliveries for 50 orders, paced per thread
            url = f"http://127.0.0.1:{port}/webhooks/shopify"
            order_ids = sorted(shop.orders)[:50]
            answers: list[tuple[float, int]] = []
            lock = threading.Lock()
            threads = 8
            per_thread = rate / threads

            def load(worker: int) -> None:
                with httpx.Client(timeout=10) as client:
                    begin = time.perf_counter()
                    n = 0
                    while time.perf_counter() - begin < seconds:
                        due = begin + n / per_thread
                        pause = due - time.perf_counter()
                        if pause > 0:
                            time.sleep(pause)
                        body = json.dumps({"id": order_ids[(worker * 7919 + n) % len(order_ids)]}).encode()
                        headers = {
                            "X-Shopify-Topic": "orders/updated",
                            "X-Shopify-Hmac-Sha256": signature(tenant.client_secret, body),
                            "X-Shopify-Shop-Domain": domain,
                            "X-Shopify-Event-Id": f"load-{worker}-{n}",
                        }
                        sent = time.perf_counter()
                        try:
                            status = client.post(url, content=body, headers=headers).status_code
                        except httpx.HTTPError:
                            status = 0
                        with lock:
                            answers.append((time.perf_counter() - sent, status))
                        n += 1

            workers = [threading.Thread(target=load, args=(w,)) for w in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            deadline = time.monotonic() + 120
            with SQLiteStore(db_path) as db:
                while db.pending_webhook_events("shopify", "shopify") and time.monotonic() < deadline:
                    time.sleep(0.2)
                recorded = [e for e in db.webhook_events("shopify") if str(e["event_id"]).startswith("load-")]
                pending = len(db.pending_webhook_events("shopify", "shopify"))
            took = [t for t, _ in answers]
            results["load: deliveries sent"] = f"{len(answers)} in {seconds:.0f} s ({len(answers) / seconds:.0f}/s)"
            results["load: answers"] = (
                f"200: {sum(1 for _, c in answers if c == 200)}, other: {sum(1 for _, c in answers if c != 200)}; "
                f"p50 {_percentile(took, 0.5) * 1000:.0f} ms, p99 {_percentile(took, 0.99) * 1000:.0f} ms, "
                f"max {max(took) * 1000:.0f} ms (limit 5,000)"
            )
            results["load: events recorded"] = (
                f"{len(recorded)} (lost: {len(answers) - len(recorded)}), pending {pending}"
            )
            order_fetches = sum(1 for d in tenant.documents if d["query"].startswith("query ChannelOrder(")) - 0
            results["load: coalescing"] = f"{order_fetches} order reads for {len(recorded)} events on 50 orders"
        finally:
            process.terminate()
            process.wait(timeout=20)
            server.stop()
    return results


BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "shopify": bench_shopify,
    "webhooks": bench_webhooks,
    "busy": bench_busy,
    "throughput": bench_throughput,
    "latency": bench_latency,
    "decode": bench_decode,
    "calls": bench_calls,
    "concurrency": bench_concurrency,
    "memory": bench_memory,
    "engine": bench_engine,
    "jobs": bench_jobs,
    "tls": bench_tls,
    "fleet": bench_fleet,
    "pg": bench_pg,
}


def main() -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # an app, not the library
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", default=list(BENCHES))
    args = parser.parse_args()
    if args.which[:1] == ["memory-child"]:
        memory_child(int(args.which[1]))
        return 0
    if args.which[:1] == ["load-child"]:
        url, count, seconds, threads = args.which[1:5]
        print(_bare_load(url, int(count), float(seconds), int(threads)))
        return 0
    started = datetime.now(UTC)
    print(f"benchmarks, {started:%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}")
    for name in args.which:
        result = BENCHES[name]()
        print(f"\n[{name}]")
        for key, value in result.items():
            print(f"  {key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
