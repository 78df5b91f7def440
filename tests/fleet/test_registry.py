"""The store registry, credential references, quota parking and the shared rate budget, on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from channel_core import Channel, Shipment
from channel_core.cli.app import cli
from channel_core.errors import ConfigurationError
from channel_core.fleet.credentials import environment_credentials, store_settings
from channel_core.fleet.registry import RegisteredStore, next_quota_reset
from channel_core.secret import Secret
from channel_core.sync.postgres import PostgresStore
from tests.fleet.harness import busiest_second
from tests.sync.postgres import fresh_database


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("registry") as dsn:
        yield dsn


def _registry(dsn: str):  # type: ignore[no-untyped-def]
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore

    return StoreRegistry(PostgresStore(dsn), schemes=("env", "vault"))


def test_the_registry_refuses_secrets_and_bad_values_naming_what_is_wrong(oxatis: Channel, database: str) -> None:
    registry = _registry(database)
    info = oxatis.info()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"settings": {"token": "tok-very-secret"}}, "token is secret"),
        ({"settings": {"app_id": Secret("app-very-secret")}}, "app_id is secret"),
        ({"settings": {"colour": "blue"}}, "unknown oxatis setting(s): colour"),
        ({"credentials": " "}, "must be a reference (env:NAME, vault:NAME)"),
        ({"credentials": "tok-very-secret"}, "must be a reference"),  # a token pasted by mistake
        ({"credentials": "sftp:tok-very-secret"}, "must be a reference"),  # no resolver knows sftp:
        ({"credentials": "env:tok-very secret"}, "must be a reference"),
        ({"every": timedelta(seconds=0.5)}, "at least 1 second"),
        ({"requests_per_second": 0.0}, "must be positive"),
        ({"quota_reset": "25:99"}, "is not a time of day"),
        ({"quota_timezone": "Mars/Olympus"}, "unknown time zone"),
    ]
    for change, message in cases:
        arguments = {"settings": {}, "credentials": "env:SHOP", "every": timedelta(minutes=5), **change}
        with pytest.raises(ConfigurationError) as caught:
            registry.add("shop", info, **arguments)
        assert message in str(caught.value) and "very-secret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="store key 'bad key!'"):
        registry.add("bad key!", info, settings={}, credentials="env:SHOP", every=timedelta(minutes=5))
    assert registry.stores() == []

    registry.add("shop", info, settings={"page_size": 20}, credentials="env:SHOP", every=timedelta(minutes=5))
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add("shop", info, settings={}, credentials="env:SHOP", every=timedelta(minutes=5))
    replaced = registry.add("shop", info, settings={}, credentials="env:OTHER", every=timedelta(hours=1), replace=True)
    assert (replaced.credentials, replaced.every, dict(replaced.settings)) == ("env:OTHER", timedelta(hours=1), {})
    assert registry.remove("shop") and not registry.remove("shop")


def test_each_due_store_is_handed_out_once_however_many_schedulers_ask(oxatis: Channel, database: str) -> None:
    registry = _registry(database)
    keys = [f"shop-{n}" for n in range(30)]
    for key in keys:
        registry.add(key, oxatis.info(), settings={}, credentials="env:S", every=timedelta(minutes=5))
    claimed: list[str] = []
    barrier = threading.Barrier(4, timeout=30)
    lock = threading.Lock()

    def schedule() -> None:
        mine = _registry(database)
        barrier.wait()
        for _ in range(5):
            got = mine.claim_due(limit=4)
            with lock:
                claimed.extend(got)

    threads = [threading.Thread(target=schedule) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(keys)  # every store once, none twice
    assert registry.claim_due() == []  # next runs moved 5 minutes on
    assert all(store.next_run > datetime.now(UTC) + timedelta(minutes=4) for store in registry.stores())


def test_a_quota_stop_parks_the_store_until_its_reset_and_run_now_lifts_it(oxatis: Channel, database: str) -> None:
    from channel_core.fleet.engine import enqueue_due, make_app, prepare_database
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(count=30, token="tok-plenty", timezone="UTC")) as server:
        server.add_store("tok-limited", count=30, seed=9, quota=12)  # the day's calls run out mid-import
        prepare_database(database)
        registry = _registry(database)
        common = {"base_url": server.url, "store_timezone": "UTC", "page_size": 10, "retry_attempts": 1}
        for key in ("plenty", "limited"):
            registry.add(
                key,
                oxatis.info(),
                settings=common,
                credentials=f"vault:{key}",
                every=timedelta(seconds=1),
                quota_reset="03:30",
                quota_timezone="Europe/Paris",
            )
        vault = {"plenty": "tok-plenty", "limited": "tok-limited"}
        app = make_app(database, credentials=lambda store, info: {"token": vault[store.key]}, schedule=None)
        with app.open():
            assert sorted(enqueue_due(app, database)) == ["limited", "plenty"]
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)

        limited, plenty = registry.get("limited"), registry.get("plenty")
        assert limited is not None and plenty is not None
        assert plenty.parked_until is None and plenty.account_id
        assert limited.parked_until is not None and "quota" in (limited.parked_reason or "")
        assert limited.parked_until.astimezone(UTC) == next_quota_reset(
            limited.last_run_at or datetime.now(UTC), clock_time(3, 30), "Europe/Paris"
        )
        time.sleep(1.1)  # both are due again by their interval; the parked one waits for its reset
        assert registry.claim_due() == ["plenty"]
        states = {state.store.key: state for state in registry.states()}
        assert states["limited"].last_stopped == "quota" and states["plenty"].last_stopped is None
        assert "quota" in (states["limited"].last_error or "") and states["plenty"].last_error is None
        assert states["plenty"].orders > 0

        server.reset_quota("tok-limited")
        assert registry.run_now("limited")
        assert registry.claim_due() == ["limited"]


def test_the_next_quota_reset_follows_the_stores_wall_clock() -> None:
    paris = "Europe/Paris"
    before_spring = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 00:00 Paris on the 29th, the short night
    assert next_quota_reset(before_spring, clock_time(0, 0), paris) == datetime(2026, 3, 29, 23, 0, tzinfo=UTC) - (
        timedelta(hours=1)
    )
    autumn = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 Paris on the 25th, before the clocks go back
    assert next_quota_reset(autumn, clock_time(0, 0), paris) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert next_quota_reset(datetime(2026, 6, 1, 12, tzinfo=UTC), clock_time(12, 0), "UTC") == datetime(
        2026, 6, 2, 12, tzinfo=UTC
    )


def _store(credentials: str) -> RegisteredStore:
    return RegisteredStore(
        key="acme",
        channel="oxatis",
        settings={"base_url": "http://127.0.0.1:1"},
        credentials=credentials,
        every=timedelta(minutes=5),
        next_run=datetime.now(UTC),
    )


def test_environment_credentials_read_prefixed_variables_and_name_what_is_missing(oxatis: Channel) -> None:
    info = oxatis.info()
    resolved = environment_credentials(_store("env:ACME"), info, {"ACME_TOKEN": "tok-1", "ACME_APP_ID": "app-2"})
    assert isinstance(resolved["token"], Secret) and resolved["token"].reveal() == "tok-1"
    assert "tok-1" not in repr(resolved) and "app-2" not in repr(resolved)
    with pytest.raises(ConfigurationError, match="set ACME_TOKEN in the worker's environment"):
        environment_credentials(_store("env:ACME"), info, {})
    with pytest.raises(ConfigurationError, match="is not env:PREFIX"):
        environment_credentials(_store("vault:acme"), info, {})
    settings = store_settings(_store("env:ACME"), info, lambda store, info: {"token": "from-the-vault"})
    assert isinstance(settings["token"], Secret) and settings["base_url"] == "http://127.0.0.1:1"
    with pytest.raises(ConfigurationError, match="unknown oxatis setting"):
        store_settings(_store("env:ACME"), info, lambda store, info: {"password": "x"})


def test_one_budget_spaces_requests_from_every_holder(database: str) -> None:
    from channel_core.fleet.budget import PostgresRateBudget
    from channel_core.fleet.engine import prepare_database

    prepare_database(database)
    rate, per_holder = 20.0, 15
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        with PostgresRateBudget(database, "oxatis:shop", rate) as budget:
            for _ in range(per_holder):
                budget.acquire()
                with lock:
                    granted.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(3)]  # three workers' connections, one account
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 3 * per_holder and busiest_second(granted) <= rate
    with PostgresRateBudget(database, "oxatis:another-shop", rate) as other:
        assert other.acquire() == 0.0  # another account's budget is its own


def test_the_stores_commands_need_postgresql_and_manage_the_registry(
    oxatis: Channel, database: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    sqlite = runner.invoke(cli, ["--db", str(tmp_path / "one.sqlite3"), "stores", "list"])
    assert sqlite.exit_code == 2 and "needs PostgreSQL" in sqlite.output

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--db", database, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("stores", "add", "acme", "oxatis", "--credentials", "env:ACME", "--set", "page_size=20", "--rate", "5")
    refused = runner.invoke(
        cli, ["--db", database, "stores", "add", "evil", "oxatis", "--credentials", "env:E", "--set", "token=abc123"]
    )
    assert refused.exit_code == 2 and "token is secret" in refused.output and "abc123" not in refused.output
    listed = json.loads(run("stores", "list", "--json"))
    assert [(s["key"], s["settings"], s["credentials"], s["requests_per_second"]) for s in listed] == [
        ("acme", {"page_size": 20}, "env:ACME", 5.0)
    ]
    status = json.loads(run("status", "--json"))
    assert status["totals"]["stores"] == 1 and status["totals"]["never_synced"] == 1
    first = status["stores"][0]
    assert first["key"] == "acme" and first["last_run"] is None and first["orders"] == 0
    assert [json.loads(line)["key"] for line in run("status", "--all", "--format", "jsonl").splitlines()] == ["acme"]
    assert "acme" in run("status") and "acme" in run("stores", "list")
    run("stores", "run", "acme")
    run("stores", "remove", "acme")
    gone = runner.invoke(cli, ["--db", database, "stores", "remove", "acme"])
    assert gone.exit_code == 2 and "no store acme" in gone.output
    bad_tick = runner.invoke(cli, ["--db", database, "worker", "--tick", "7s"])
    assert bad_tick.exit_code == 2 and "--tick must divide" in bad_tick.output


def test_an_overslept_slot_is_traded_for_a_fresh_one(database: str) -> None:
    from channel_core.fleet.budget import PostgresRateBudget
    from channel_core.fleet.engine import prepare_database

    prepare_database(database)
    now = [0.0]
    sleeps: list[float] = []
    oversleep = [0.5, 0.0]  # the first wait overshoots by half a second (a descheduled thread), the next does not

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds + (oversleep.pop(0) if oversleep else 0.0)

    with PostgresRateBudget(database, "oxatis:late", 2.0, sleep=sleep, clock=lambda: now[0]) as budget:
        assert budget.acquire() == 0.0 and sleeps == []  # the first slot is now
        budget.acquire()
    assert len(sleeps) == 2  # the overslept slot was given up, a later one taken
    assert sleeps[1] > sleeps[0] > 0.4  # 1.1 / 2 = 0.55 s apart on PostgreSQL's clock


def test_worker_once_syncs_the_due_stores_and_status_shows_the_runs(oxatis: Channel, database: str) -> None:
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    runner = CliRunner()
    with SandboxServer(SandboxConfig(count=15, token="tok-north", timezone="UTC")) as server:
        server.add_store("tok-south", count=15, seed=5)
        for key in ("north", "south", "west"):  # nobody set WEST_TOKEN
            added = runner.invoke(
                cli,
                [
                    *("--db", database, "stores", "add", key, "oxatis", "--credentials", f"env:{key.upper()}"),
                    *("--set", f'base_url="{server.url}"', "--set", 'store_timezone="UTC"'),
                ],
            )
            assert added.exit_code == 0, added.output
        env = {"NORTH_TOKEN": "tok-north", "SOUTH_TOKEN": "tok-south"}
        worked = runner.invoke(cli, ["--db", database, "worker", "--once"], env=env)
        assert worked.exit_code == 0, worked.output
        assert "3 store(s) queued" in worked.output
        status = {
            row["key"]: row
            for row in json.loads(runner.invoke(cli, ["--db", database, "status", "--json"]).output)["stores"]
        }
        for key in ("north", "south"):
            assert status[key]["last_run"] is not None and status[key]["last_stopped"] is None
            assert status[key]["orders"] >= 14 and status[key]["account_id"]
        assert status["west"]["last_stopped"] == "error" and "set WEST_TOKEN" in status["west"]["last_error"]
        assert "west: error: store west: set WEST_TOKEN" in runner.invoke(cli, ["--db", database, "status"]).output
        assert {r.token for r in server.requests} == {"tok-north", "tok-south"}
        again = runner.invoke(cli, ["--db", database, "worker", "--once"], env=env)
        assert again.exit_code == 0 and "0 store(s) queued" in again.output  # not due again for 15 minutes
        with PostgresStore(database) as db:  # a succeeded job's row went as it ended; the runs say what it did
            jobs = (
                "SELECT status, count(*) FROM procrastinate_jobs WHERE task_name = 'channel_core.sync_store' GROUP BY 1"
            )
            assert db.execute(jobs) == []
            assert runner.invoke(cli, ["--db", database, "stores", "run", "north"]).exit_code == 0
            kept = runner.invoke(cli, ["--db", database, "worker", "--once", "--keep-succeeded-jobs"], env=env)
            assert kept.exit_code == 0, kept.output
            assert db.execute(jobs) == [("succeeded", 1)]

        ship = ["--db", database, "stores", "ship", "north", "100003", "--tracking", "6A77", "--carrier", "DPD"]
        first, repeat = runner.invoke(cli, ship, env=env), runner.invoke(cli, ship, env=env)
        assert first.exit_code == 0 and "sent" in first.output, first.output
        assert repeat.exit_code == 0 and "already_sent" in repeat.output, repeat.output
        north = server.store  # the sandbox's first store is north's
        assert north.transport_writes[100003] == 1 and north.shipped_entries(100003) == 1
        missing = runner.invoke(cli, [*ship[:4], "east", *ship[5:]], env=env)
        assert missing.exit_code == 2 and "no store east" in missing.output
        assert any("north/manual" in r.user_agent for r in server.requests)  # labelled like a worker's run


def test_the_quota_resets_in_the_stores_own_time_zone_unless_told(oxatis: Channel, database: str) -> None:
    registry = _registry(database)
    paris = registry.add(
        "paris", oxatis.info(), settings={"store_timezone": "Europe/Paris"}, credentials="env:P", every=timedelta(1)
    )
    told = registry.add(
        "told",
        oxatis.info(),
        settings={"store_timezone": "Europe/Paris"},
        credentials="env:T",
        every=timedelta(1),
        quota_timezone="America/Montreal",
    )
    bare = registry.add("bare", oxatis.info(), settings={}, credentials="env:B", every=timedelta(1))
    assert (paris.quota_timezone, told.quota_timezone, bare.quota_timezone) == (
        "Europe/Paris",
        "America/Montreal",
        "UTC",
    )


def test_housekeeping_forgets_old_history_but_keeps_each_stores_latest_run(database: str) -> None:
    from channel_core.fleet.engine import HOUSEKEEPING_TASK, make_app, prepare_database
    from channel_core.sync.postgres import PostgresStore

    prepare_database(database)
    with PostgresStore(database) as db:
        for key, days_ago in (("a", 40), ("a", 35), ("a", 1), ("b", 50)):
            db.record_run("oxatis", f"acct-{key}", {"stopped": None, "note": f"{key}{days_ago}"}, key)
            db.execute(
                "UPDATE sync_runs SET finished_at = now() - make_interval(days => %s) "
                "WHERE id = (SELECT max(id) FROM sync_runs)",
                (days_ago,),
            )
    app = make_app(database, schedule=None, keep=timedelta(days=30))
    with app.open():
        app.tasks[HOUSEKEEPING_TASK].defer(timestamp=0)
    app.run_worker(queues=["channel-schedule"], wait=False, concurrency=1, install_signal_handlers=False)
    with PostgresStore(database) as db:
        kept = sorted(run["summary"]["note"] for run in db.runs("oxatis"))
        assert kept == ["a1", "b50"]  # b's only run is old but still its latest
        assert db.daily_runs(days=60) == []  # a's two old runs were folded into days older than `keep`: gone
        jobs = db.execute("SELECT status FROM procrastinate_jobs WHERE task_name = %s", (HOUSEKEEPING_TASK,))
        assert jobs == [("succeeded",)]


# --- third correctness pass (issue 20): a registered store keeps its merchant ----------------------------------


def _sync(database: str, vault: dict[str, str], *keys: str) -> None:
    from channel_core.fleet.engine import enqueue_sync, make_app

    app = make_app(database, credentials=lambda store, info: {"token": vault[store.key]}, schedule=None)
    with app.open():
        for key in keys:
            enqueue_sync(app, key)
    app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)


def test_a_registered_store_is_pinned_to_the_account_it_first_synced(oxatis: Channel, database: str) -> None:
    from channel_core.fleet.engine import connected_store, prepare_database
    from channel_core.sync.postgres import PostgresStore
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(count=20, token="tok-shop3", timezone="UTC")) as server:
        other = server.add_store("tok-other-merchant", count=20, seed=11)
        server.add_token("tok-shop3-rotated", for_token="tok-shop3")  # the merchant rotates its token
        prepare_database(database)
        registry = _registry(database)
        settings = {"base_url": server.url, "store_timezone": "UTC"}
        registry.add("shop3", oxatis.info(), settings=settings, credentials="vault:shop3", every=timedelta(minutes=5))
        vault = {"shop3": "tok-shop3"}
        _sync(database, vault, "shop3")
        pinned = registry.get("shop3")
        assert pinned is not None and pinned.account_id and pinned.account_id.endswith("/account-41001")

        vault["shop3"] = "tok-other-merchant"  # a worker started with another merchant's token
        calls = dict(server.calls_by_token)
        _sync(database, vault, "shop3")
        state = {s.store.key: s for s in registry.states()}["shop3"]
        assert state.last_stopped == "error" and state.store.account_id == pinned.account_id
        assert pinned.account_id in (state.last_error or "") and "account-41002" in (state.last_error or "")
        assert "tok-other" not in (state.last_error or "") and "--replace" in (state.last_error or "")
        writes = ("OrderUpdateTransportInfo", "OrderUpdateTracking", "OrderGetSummaryList")
        assert server.calls_by_token["tok-other-merchant"] - calls.get("tok-other-merchant", 0) == 2  # connect only
        assert all(server.calls[m] == 0 for m in writes[:2])
        with pytest.raises(ConfigurationError, match="pinned to account"):
            with connected_store(database, "shop3", credentials=lambda store, info: {"token": vault["shop3"]}):
                pass
        assert other.shipped_entries(100002) == 0

        vault["shop3"] = "tok-shop3-rotated"  # the same merchant, a new token: the same store
        _sync(database, vault, "shop3")
        state = {s.store.key: s for s in registry.states()}["shop3"]
        assert state.last_stopped is None and state.store.account_id == pinned.account_id

        vault["shop3"] = "tok-other-merchant"  # re-registered on purpose: the next sync pins the new account
        registry.add(
            "shop3", oxatis.info(), settings=settings, credentials="vault:shop3", every=timedelta(minutes=5),
            replace=True,
        )  # fmt: skip
        _sync(database, vault, "shop3")
        moved = registry.get("shop3")
        assert moved is not None and moved.account_id and moved.account_id.endswith("/account-41002")
        with PostgresStore(database) as db:
            accounts = {row[0] for row in db.execute("SELECT DISTINCT account_id FROM orders")}
        assert accounts == {pinned.account_id, moved.account_id}  # each merchant's orders under its own account


def test_a_store_recorded_under_the_old_token_digest_id_is_adopted(oxatis: Channel, tmp_path: Path) -> None:
    """Ids used to be a digest of the token; upgrading moves the rows instead of importing everything again."""
    from channel_core.sync import Importer, SQLiteStore
    from channel_oxatis.connection import legacy_account_id
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer
    from channel_oxatis.settings import parse_settings

    with SandboxServer(SandboxConfig(count=10)) as server, SQLiteStore(tmp_path / "old.sqlite3") as db:
        settings = {"token": server.config.token, "base_url": server.url, "store_timezone": "UTC"}
        with oxatis.connect(settings) as connection:
            Importer(oxatis, connection, db).run()
            new_id = connection.account_id
        old_id = legacy_account_id(parse_settings(settings))
        db._db.execute("UPDATE orders SET account_id=? WHERE account_id=?", (old_id, new_id))
        db._db.execute("UPDATE checkpoints SET account_id=? WHERE account_id=?", (old_id, new_id))
        db._db.execute("UPDATE versions SET account_id=? WHERE account_id=?", (old_id, new_id))
        details = server.detail_calls()
        with oxatis.connect(settings) as connection:
            again = Importer(oxatis, connection, db).run()
        assert again.imported == 0 and server.detail_calls() == details  # nothing fetched again
        assert {s.account_id for s in db.iter_orders()} == {new_id}


def test_a_job_that_fails_outside_the_channel_is_recorded_as_a_run(oxatis: Channel, database: str) -> None:
    from channel_core.fleet.engine import prepare_database
    from channel_oxatis.sandbox import SandboxServer

    with SandboxServer() as server:
        prepare_database(database)
        registry = _registry(database)
        registry.add(
            "lost",
            oxatis.info(),
            settings={"base_url": server.url},
            credentials="vault:lost",
            every=timedelta(minutes=5),
        )
        _sync(database, {}, "lost")  # the host's vault has no such key: KeyError inside the resolver
        state = {s.store.key: s for s in registry.states()}["lost"]
        assert state.last_stopped == "error" and (state.last_error or "").startswith("KeyError: 'lost'")
        assert state.store.last_run_at is not None


def test_the_cli_refuses_a_raw_token_a_unitless_interval_and_a_lease_shorter_than_a_write(database: str) -> None:
    runner = CliRunner()
    base = ["--db", database]
    result = runner.invoke(cli, [*base, "stores", "add", "acme", "oxatis", "--credentials", "tok-Very-Secret-123"])
    assert result.exit_code == 2 and "must be a reference" in result.stderr and "Very-Secret" not in result.stderr
    result = runner.invoke(cli, [*base, "stores", "add", "acme", "oxatis", "--credentials", "env:ACME", "--every", "5"])
    assert result.exit_code == 2 and "with a unit" in result.stderr
    result = runner.invoke(cli, [*base, "worker", "--once", "--claim-lease", "1m"])
    assert result.exit_code == 2 and "shorter than the longest" in result.stderr


def test_a_shipment_whose_job_cannot_reach_its_store_waits_for_the_next_sync(oxatis: Channel, database: str) -> None:
    """Found by the fleet model check: a notify job run with the wrong credentials lost its shipment."""
    from channel_core.fleet.engine import enqueue_shipment, make_app, prepare_database
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(count=10, token="tok-a", timezone="UTC")) as server:
        server.add_store("tok-b", count=10, seed=5)
        prepare_database(database)
        registry = _registry(database)
        registry.add(
            "a", oxatis.info(), settings={"base_url": server.url}, credentials="vault:a", every=timedelta(minutes=5)
        )
        vault = {"a": "tok-a"}
        _sync(database, vault, "a")  # pinned
        vault["a"] = "tok-b"
        app = make_app(database, credentials=lambda store, info: {"token": vault[store.key]}, schedule=None)
        with app.open():
            enqueue_shipment(app, "a", Shipment(order_id="100002", tracking_number="W-1", carrier="DPD"))
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
        assert server.store.shipped_entries(100002) == 0 and server.tenant("tok-b").transport_writes[100002] == 0
        with PostgresStore(database) as db:
            (record,) = db.notifications()
            assert record.status == "pending" and "pinned to account" in (record.message or "")
        vault["a"] = "tok-a"
        _sync(database, vault, "a")  # the store's next sync sends it
        assert server.store.shipped_entries(100002) == 1


def test_a_sync_that_gets_through_lifts_the_quota_parking_and_its_pushed_schedule(
    oxatis: Channel, database: str
) -> None:
    """Found by the fleet model check (seed 21): the parking was lifted but the next run stayed tomorrow."""
    registry = _registry(database)
    registry.add("q", oxatis.info(), settings={}, credentials="env:Q", every=timedelta(minutes=5))
    registry.finished("q", "acct", "quota", "daily quota spent")
    parked = registry.get("q")
    assert parked is not None and parked.parked_until is not None and parked.next_run == parked.parked_until
    registry.finished("q", "acct", None)  # a sync queued before the park ran and got through
    lifted = registry.get("q")
    assert lifted is not None and lifted.parked_until is None
    assert lifted.next_run <= datetime.now(UTC) + timedelta(minutes=5, seconds=5)


def test_one_tick_queues_every_due_store_however_many_there_are(database: str) -> None:
    """5,000 due stores: the scheduler claims batch after batch in one tick and queues each once; the lag it
    reports is how late the most overdue store is, and nothing is left due after the tick."""
    from channel_core.fleet.engine import make_app, prepare_database
    from channel_core.sync.postgres import PostgresStore

    prepare_database(database)
    registry = _registry(database)
    with PostgresStore(database) as db:
        db.execute(
            "INSERT INTO stores (store_key, channel, settings, credentials, every_seconds, next_run, quota_reset, "
            "quota_timezone, created_at) SELECT 'bulk-' || n, 'oxatis', '{}'::jsonb, 'env:BULK', 600, "
            "now() - make_interval(secs => n), '00:00', 'UTC', now() FROM generate_series(1, 5000) AS n"
        )
    assert 4999 <= registry.scheduling_lag() <= 5100  # the oldest is 5,000 s overdue
    app = make_app(database, schedule=None)

    async def one_tick() -> dict[str, Any]:  # as procrastinate's periodic deferrer runs it
        async with app.open_async():
            result: dict[str, Any] = await app.tasks["channel_core.schedule_stores"].func(timestamp=0)
            return result

    result = asyncio.run(one_tick())
    assert len(result["queued"]) == 5000 and len(set(result["queued"])) == 5000
    assert registry.claim_due() == [] and registry.scheduling_lag() == 0.0
    with PostgresStore(database) as db:
        queued = db.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'channel_core.sync_store'")
    assert queued == [(5000,)]


def test_a_tick_queues_due_stores_together_and_never_a_store_already_waiting_twice(database: str) -> None:
    """Due stores are queued in one statement per batch; a store still waiting from an earlier tick refuses that
    statement, and the tick then queues the others one by one: each store waits once."""
    from channel_core.fleet.engine import enqueue_due, enqueue_sync, make_app, prepare_database
    from channel_core.sync.postgres import PostgresStore

    prepare_database(database)
    with PostgresStore(database) as db:
        db.execute(
            "INSERT INTO stores (store_key, channel, settings, credentials, every_seconds, next_run, quota_reset, "
            "quota_timezone, created_at) SELECT 'due-' || n, 'oxatis', '{}'::jsonb, 'env:DUE', 600, "
            "now() - interval '1 minute', '00:00', 'UTC', now() FROM generate_series(1, 6) AS n"
        )
    app = make_app(database, schedule=None)
    with app.open():
        assert enqueue_sync(app, "due-3")  # still waiting when the tick comes
        assert sorted(enqueue_due(app, database, batch=4)) == ["due-1", "due-2", "due-4", "due-5", "due-6"]
    with PostgresStore(database) as db:
        waiting = db.execute(
            "SELECT args->>'store_key', count(*), min(lock), min(queueing_lock) FROM procrastinate_jobs "
            "GROUP BY 1 ORDER BY 1"
        )
    assert waiting == [(f"due-{n}", 1, f"sync:due-{n}", f"sync:due-{n}") for n in range(1, 7)]


def test_status_pages_worst_first_and_its_queries_use_indexes_at_size(database: str) -> None:
    """20,000 stores and 60,000 runs: the page query reads the last run through its index (no scan of
    sync_runs), the totals are one pass over stores, and the page lists failing stores first."""
    from channel_core.fleet.engine import prepare_database
    from channel_core.sync.postgres import PostgresStore

    prepare_database(database)
    registry = _registry(database)
    with PostgresStore(database) as db:
        db.execute(
            "INSERT INTO stores (store_key, channel, settings, credentials, every_seconds, next_run, quota_reset, "
            "quota_timezone, created_at, last_run_at, last_stopped) SELECT 'bulk-' || lpad(n::text, 5, '0'), "
            "'oxatis', '{}'::jsonb, 'env:BULK', 600, now() + make_interval(secs => n), '00:00', 'UTC', now(), now(), "
            "CASE WHEN n %% 1000 = 0 THEN 'error' END FROM generate_series(1, 20000) AS n"
        )
        db.execute(
            "INSERT INTO sync_runs (channel, account_id, store_key, finished_at, stopped, summary) "
            "SELECT 'oxatis', '', 'bulk-' || lpad((n %% 20000 + 1)::text, 5, '0'), now() - make_interval(secs => n), "
            "NULL, '{}'::jsonb FROM generate_series(1, 60000) AS n"
        )
        db.execute("ANALYZE")
    totals = registry.summary()
    assert totals["stores"] == 20000 and totals["failing"] == 20 and totals["due"] == 0
    page = registry.states(limit=25, worst_first=True)
    assert [s.store.key for s in page[:20]] == [f"bulk-{n:05d}" for n in range(1000, 20001, 1000)]
    assert len(page) == 25 and page[0].last_run is not None
    with PostgresStore(database) as db:
        plan = "\n".join(
            str(row[0])
            for row in db.execute(
                "EXPLAIN SELECT finished_at FROM stores s LEFT JOIN LATERAL (SELECT finished_at FROM sync_runs r "
                "WHERE r.store_key = s.store_key ORDER BY finished_at DESC, id DESC LIMIT 1) last ON true "
                "WHERE s.store_key = 'bulk-00042'"
            )
        )
    assert "Seq Scan on sync_runs" not in plan and "sync_runs_last" in plan, plan


def test_runs_older_than_the_detail_become_daily_totals_per_store(database: str) -> None:
    from channel_core.sync.postgres import PostgresStore

    with PostgresStore(database) as db:
        runs = [("a", 5, None, 3), ("a", 5, "error", 0), ("a", 4, None, 1), ("a", 0, None, 2), ("b", 5, None, 7)]
        for order, (key, days_ago, stopped, imported) in enumerate(runs):
            db.record_run("oxatis", f"acct-{key}", {"stopped": stopped, "imported": imported, "updated": 1}, key)
            db.execute(
                "UPDATE sync_runs SET finished_at = now() - make_interval(days => %s, secs => %s) "
                "WHERE id = (SELECT max(id) FROM sync_runs)",
                (days_ago, 600 - 10 * order),  # apart within a day, in the order recorded
            )
        assert db.roll_up_runs(timedelta(days=3)) == 3  # b's only run is its latest: kept in detail
        assert db.roll_up_runs(timedelta(days=3)) == 0  # nothing is counted twice
        daily = {(row["store_key"], row["runs"]): row for row in db.daily_runs(days=10)}
        five, four = daily[("a", 2)], daily[("a", 1)]
        assert (five["completed"], five["imported"], five["updated"], five["last_stopped"]) == (1, 3, 2, "error")
        assert (four["completed"], four["imported"]) == (1, 1) and five["day"] < four["day"]
        assert sorted(run["summary"].get("imported") for run in db.runs("oxatis")) == [2, 7]
        assert db.prune_daily_runs(timedelta(days=4)) == 1 and len(db.daily_runs(days=10)) == 1


def test_what_connect_asks_is_kept_on_the_store_row_for_any_worker_within_its_ttl(
    oxatis: Channel, database: str
) -> None:
    """A worker meets the store as if it had never seen it (its process's cache emptied, as a fleet beyond a
    process's cache size does): the account and progress states the last job kept on the row serve, so an
    unchanged store's sync asks only its list calls; past lookup_ttl (on the database's clock) they are asked
    again. The row holds digests and answers, never a secret."""
    from channel_core.fleet.engine import enqueue_sync, make_app, prepare_database
    from channel_oxatis.plugin import _LOOKUPS
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(count=5, token="tok-kept-secret", timezone="UTC")) as server:
        prepare_database(database)
        registry = _registry(database)
        settings = {"base_url": server.url, "store_timezone": "UTC", "lookup_ttl": 3600}
        registry.add("kept", oxatis.info(), settings=settings, credentials="vault:kept", every=timedelta(hours=1))
        app = make_app(database, credentials=lambda store, info: {"token": "tok-kept-secret"}, schedule=None)

        def sync_in_a_new_process() -> tuple[int, int]:
            _LOOKUPS.clear()
            before = (server.calls["ProgressStateGetList"], server.calls["AccountPropertiesGet"])
            with app.open():
                enqueue_sync(app, "kept")
            app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
            return (
                server.calls["ProgressStateGetList"] - before[0],
                server.calls["AccountPropertiesGet"] - before[1],
            )

        assert sync_in_a_new_process() == (1, 1)  # the first sync asks, and keeps the answers on the row
        assert sync_in_a_new_process() == (0, 0)
        # the merchant creates a state and moves an order to it: the sync fetching that order asks for the list
        # again (in a fetch thread), and the new list goes back on the row with the run
        server.store.create_state(72899, "ANNULEE-BOUTIQUE", "Annulée par la boutique", "Cancelled by the shop")
        server.store.add_progress_state(
            100002, code="ANNULEE-BOUTIQUE", state_id=None, when=datetime(2026, 11, 2, 9, 0), comment=None,
            publish=False, update_order=True,
        )  # fmt: skip
        assert sync_in_a_new_process() == (1, 0)
        assert sync_in_a_new_process() == (0, 0)
        with PostgresStore(database) as db:
            row = json.dumps(db.execute("SELECT lookups FROM stores WHERE store_key = 'kept'")[0][0])
            assert "tok-kept-secret" not in row and "SST-SHIPPED" in row and "ANNULEE-BOUTIQUE" in row
            db.execute(  # two hours pass on the database's clock
                "UPDATE stores SET lookups = (SELECT jsonb_object_agg(k, (SELECT jsonb_object_agg(w, "
                "jsonb_build_array((e->>0)::float8 - 7200, e->1)) FROM jsonb_each(v) AS x(w, e))) "
                "FROM jsonb_each(lookups) AS y(k, v)) WHERE store_key = 'kept'"
            )
        assert sync_in_a_new_process() == (1, 1)
        assert sync_in_a_new_process() == (0, 0)
        last = registry.get("kept")
        assert last is not None and last.last_run_at is not None and last.account_id
