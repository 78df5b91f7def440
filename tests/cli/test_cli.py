"""The ``channel`` command through click's runner, against a live sandbox."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from channel_core.cli import cli
from channel_core.cli.context import EXIT_CONFIG, EXIT_OK, EXIT_STOPPED
from channel_oxatis.sandbox import SandboxServer

TOKEN = "Tok3n-distinctive-7c1f"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def oxatis_args(sandbox: SandboxServer) -> list[str]:
    return [
        "--set",
        f"base_url={sandbox.url}",
        "--set",
        "store_timezone='Europe/Paris'",
        "--set",
        "retry_backoff=0",
    ]


def test_list_shows_oxatis_capabilities_table() -> None:
    code, stdout, _ = run("list")
    assert code == EXIT_OK
    assert "Data sent with the shipment notification" in stdout
    assert "tracking_number" in stdout and "notes_to_buyer" in stdout
    code, stdout, _ = run("list", "--json")
    data = json.loads(stdout)
    oxatis = next(c for c in data["channels"] if c["name"] == "oxatis")
    assert "status" in oxatis["notification_fields"]
    assert "service" in oxatis["notification_fields_not_sent"]
    assert {b["name"] for b in data["not_loaded"]} >= {"missing-hook", "unimportable"}


@pytest.mark.sandbox_config(count=30, token=TOKEN)
def test_connect_prints_statuses_and_never_the_token(sandbox: SandboxServer) -> None:
    code, stdout, stderr = run(
        "-vv", "connect", "oxatis", *oxatis_args(sandbox), env={"OXATIS_TOKEN": TOKEN, "COLUMNS": "200"}
    )
    assert code == EXIT_OK
    assert "SST-SHIPPED" in stdout and "PRECOMMANDE" in stdout
    assert TOKEN not in stdout + stderr
    rows = {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if len(line.split()) >= 2}
    assert rows["token"] == ["***", "environment", "(OXATIS_TOKEN)"]
    assert rows["base_url"] == [sandbox.url, "--set"]
    assert rows["requests_per_second"] == ["50.0", "default"]  # every setting, with where its value came from
    assert rows["max_concurrency"] == ["8", "default"]


@pytest.mark.sandbox_config(count=10, token=TOKEN)
def test_connect_names_a_setting_from_the_config_file(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = tmp_path / "channel.toml"
    config.write_text("[channels.oxatis]\npage_size = 20\n", encoding="utf-8")
    code, stdout, _ = run(
        "--config",
        str(config),
        "connect",
        "oxatis",
        *oxatis_args(sandbox),
        env={"OXATIS_TOKEN": TOKEN, "COLUMNS": "200"},
    )
    assert code == EXIT_OK
    assert re.search(r"page_size\s+20\s+file", stdout), stdout


def test_a_misspelt_channel_table_names_the_installed_channels(tmp_path: Path) -> None:
    config = tmp_path / "channel.toml"
    config.write_text('[channels.oxatiss]\ntoken = "x"\n', encoding="utf-8")
    code, _, stderr = run("--config", str(config), "connect", "oxatis", env={"OXATIS_TOKEN": TOKEN})
    assert code == EXIT_CONFIG
    assert "[channels.oxatiss]" in stderr and "installed:" in stderr and "oxatis" in stderr.split("installed:")[1]


def test_help_and_errors_name_every_way_to_reach_postgres() -> None:
    _, stdout, _ = run("--help", env={"COLUMNS": "200"})
    assert "postgresql://" in stdout
    code, _, stderr = run("--db", "x.sqlite3", "status")
    assert code == EXIT_CONFIG and "CHANNEL_DB" in stderr and "--db" in stderr


def test_missing_token_is_a_clear_configuration_error(tmp_path: Path) -> None:
    code, _, stderr = run("--config", str(tmp_path / "none.toml"), "connect", "oxatis")
    assert code == EXIT_CONFIG
    assert "does not exist" in stderr
    code, _, stderr = run("connect", "oxatis", env={"OXATIS_TOKEN": ""})
    assert code == EXIT_CONFIG
    assert "missing oxatis setting(s): token" in stderr and "OXATIS_TOKEN" in stderr


@pytest.mark.sandbox_config(count=10, token=TOKEN)
def test_bad_token_exits_with_configuration_code(sandbox: SandboxServer) -> None:
    code, stdout, stderr = run("connect", "oxatis", *oxatis_args(sandbox), env={"OXATIS_TOKEN": "wrong-Tok3n"})
    assert code == EXIT_CONFIG
    assert "Either the token is wrong" in stderr and "app_id" in stderr
    assert "wrong-Tok3n" not in stdout + stderr


def test_unknown_setting_and_unknown_channel_say_what_to_fix() -> None:
    code, _, stderr = run("connect", "oxatis", "--set", "tokn=x", env={"OXATIS_TOKEN": "t"})
    assert code == EXIT_CONFIG and "unknown oxatis setting(s): tokn" in stderr
    code, _, stderr = run("connect", "woocommerce")
    assert code == EXIT_CONFIG and "installed:" in stderr and "oxatis" in stderr


@pytest.mark.sandbox_config(count=30, token=TOKEN)
def test_import_then_export_then_ship_twice(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    code, stdout, _ = run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    assert code == EXIT_OK
    summary = json.loads(stdout)
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (29, 1, 0)
    assert summary["skip_reasons"] == {"no ship-to address": 1}
    details = sandbox.detail_calls()
    code, stdout, _ = run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    assert json.loads(stdout)["imported"] == 0 and sandbox.detail_calls() == details

    code, stdout, _ = run("--db", db, "orders", "--format", "jsonl")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 29 and {"ship_to", "items", "payment", "shipping", "notes"} <= set(lines[0])
    code, stdout, _ = run("--db", db, "orders", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert len(rows) == 29 and rows[0]["ship_to_postal_code"]

    ship = ("--db", db, "ship", "oxatis", "100002", "--tracking", "6A77", "--carrier", "Colissimo")
    code, stdout, _ = run(*ship, *oxatis_args(sandbox), env=env)
    assert code == EXIT_OK and "sent" in stdout and "tracking_number, carrier" in stdout
    code, stdout, _ = run(*ship, *oxatis_args(sandbox), env=env)
    assert code == EXIT_OK and "already_sent" in stdout
    assert sandbox.store.shipped_entries(100002) == 1

    with open(tmp_path / "orders.sqlite3", "rb") as handle:
        assert TOKEN.encode() not in handle.read()


@pytest.mark.sandbox_config(count=30, token=TOKEN)
def test_quota_stop_exits_3_then_resumes(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    fault = sandbox.add_fault("quota", times=-1, after=15)
    code, stdout, _ = run(
        "--db",
        db,
        "import",
        "oxatis",
        *oxatis_args(sandbox),
        "--set",
        "page_size=10",
        "--set",
        "max_concurrency=1",
        env=env,
    )
    assert code == EXIT_STOPPED and "quota" in stdout
    assert stdout.count("next run resumes") == 1, stdout
    sandbox.config.faults.remove(fault)
    code, stdout, _ = run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    assert code == EXIT_OK
    code, stdout, _ = run("--db", db, "orders", "--format", "jsonl")
    assert len(stdout.splitlines()) == 29


@pytest.mark.sandbox_config(count=20, token=TOKEN)
def test_sync_runs_repeatedly(sandbox: SandboxServer, tmp_path: Path) -> None:
    code, stdout, _ = run(
        "--db",
        str(tmp_path / "o.sqlite3"),
        "sync",
        "oxatis",
        "--every",
        "1s",
        "--runs",
        "2",
        *oxatis_args(sandbox),
        env={"OXATIS_TOKEN": TOKEN},
    )
    assert code == EXIT_OK
    assert stdout.count("imported") == 2


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    code, stdout, _ = run("--db", str(db), "demo", "--orders", "40")
    assert code == EXIT_OK
    assert "Import summary" in stdout and "already_sent" in stdout and str(db) in stdout.replace("\n", "")
    assert db.exists()


@pytest.mark.sandbox_config(count=12, token=TOKEN)
def test_settings_come_from_a_toml_config_file(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = tmp_path / "channel.toml"
    config.write_text(
        f'database = "{tmp_path / "from-config.sqlite3"}"\n\n'
        "[channels.oxatis]\n"
        f'token = "{TOKEN}"\n'
        f'base_url = "{sandbox.url}"\n'
        'store_timezone = "Europe/Paris"\n\n'
        "[channels.oxatis.status_mapping]\n"
        'awaiting_shipment = ["PRECOMMANDE", "EN-PREPA"]\n',
        encoding="utf-8",
    )
    code, stdout, stderr = run("--config", str(config), "connect", "oxatis")
    assert code == EXIT_OK, stderr
    assert "PRECOMMANDE, EN-PREPA, paid" in stdout
    assert TOKEN not in stdout + stderr
    code, stdout, _ = run("--config", str(config), "import", "oxatis", "--json")
    assert code == EXIT_OK and json.loads(stdout)["imported"] == 11
    assert (tmp_path / "from-config.sqlite3").exists()


def test_invalid_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "channel.toml"
    config.write_text("[channels.oxatis\n", encoding="utf-8")
    code, _, stderr = run("--config", str(config), "connect", "oxatis")
    assert code == EXIT_CONFIG and "not valid TOML" in stderr


def test_first_ctrl_c_asks_to_stop_after_the_current_page_second_aborts() -> None:
    import os
    import signal
    import threading

    from channel_core.cli.importing import stop_on_interrupt

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN under a shell's `command &`
    stop = threading.Event()
    with stop_on_interrupt(stop):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between bytecodes of the main thread
            if stop.is_set():
                break
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
    assert signal.getsignal(signal.SIGINT) is before  # what was there before, put back


@pytest.mark.sandbox_config(count=10, token=TOKEN)
def test_failures_lists_failed_orders_and_retry_unparks_them(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    sandbox.store.modify(100004, {"SpecialInstructions": "Porte\x0bB"})  # a control character: malformed XML
    code, stdout, _ = run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    assert code == 1 and json.loads(stdout)["failed"] == 1
    code, stdout, _ = run("--db", db, "failures", "--json")
    (row,) = [json.loads(line) for line in stdout.splitlines()]
    assert (row["order_id"], row["attempts"], row["parked"]) == ("100004", 1, False)
    assert "malformed XML" in row["error"]
    code, stdout, _ = run("--db", db, "failures")
    assert code == EXIT_OK and "100004" in stdout and "retrying" in stdout
    code, _, stderr = run("--db", db, "failures", "retry", "oxatis", "999999")
    assert code == EXIT_CONFIG and "no failed order 999999" in stderr
    code, stdout, _ = run("--db", db, "failures", "retry", "oxatis", "100004")
    assert code == EXIT_OK and "1 failed orders" in stdout
    sandbox.store.modify(100004, {"SpecialInstructions": "Porte B"})
    code, stdout, _ = run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    assert code == EXIT_OK
    code, stdout, _ = run("--db", db, "failures")
    assert "No failed orders." in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tracking", "   ", "--carrier", "DPD"), "--tracking must not be blank"),
        (("--tracking", "6A1", "--carrier", ""), "--carrier must not be blank"),
        (("--tracking", "6A1", "--carrier", "DPD", "--cost", "abc"), "--cost must be an amount such as 6.90"),
        (("--tracking", "6A1", "--carrier", "DPD", "--cost", "-2"), "--cost must be a non-negative amount"),
        (
            ("--tracking", "6" * 33, "--carrier", "DPD"),
            "tracking_number is 33 characters, the channel accepts at most 32",
        ),
    ],
)
@pytest.mark.sandbox_config(count=5, token=TOKEN)
def test_ship_refuses_bad_fields_with_a_message(
    args: tuple[str, ...], message: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = str(tmp_path / "orders.sqlite3")
    code, _, stderr = run(
        "--db", db, "ship", "oxatis", "100002", *args, *oxatis_args(sandbox), env={"OXATIS_TOKEN": TOKEN}
    )
    assert code == EXIT_CONFIG and message in stderr and "Traceback" not in stderr
    assert sandbox.calls["OrderUpdateTransportInfo"] == 0 and sandbox.calls["OrderUpdateTracking"] == 0


@pytest.mark.sandbox_config(count=10, token=TOKEN)
def test_notifications_list_cancel_and_retry(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    code, stdout, _ = run("--db", db, "ship", "oxatis", "999999", "--tracking", "6A9", "--carrier", "DPD",
                          *oxatis_args(sandbox), env=env)  # fmt: skip
    assert code == 1 and "not found" in stdout
    code, stdout, _ = run("--db", db, "notifications", "--json")
    (row,) = [json.loads(line) for line in stdout.splitlines()]
    assert (row["order_id"], row["status"], row["attempts"]) == ("999999", "failed", 1)
    code, stdout, _ = run("--db", db, "notifications", "cancel", row["id"][:8])
    assert code == EXIT_OK and "cancelled" in stdout
    code, stdout, _ = run("--db", db, "sync", "oxatis", "--runs", "1", *oxatis_args(sandbox), env=env)
    assert code == EXIT_OK and "notifications retried 0" in stdout
    code, stdout, _ = run("--db", db, "notifications")
    assert "No pending or failed notifications." in stdout
    code, stdout, _ = run("--db", db, "notifications", "--all", "--json")
    assert json.loads(stdout)["status"] == "cancelled"
    code, stdout, _ = run("--db", db, "notifications", "retry", row["id"][:8])
    assert code == EXIT_OK and "due again" in stdout
    code, stdout, _ = run("--db", db, "sync", "oxatis", "--runs", "1", *oxatis_args(sandbox), env=env)
    assert code == 1 and "not sent 1" in stdout  # still unknown to the store: a partial failure, not exit 0
    code, _, stderr = run("--db", db, "notifications", "cancel", "ffffffffff")
    assert code == EXIT_CONFIG and "no notification with id" in stderr


@pytest.mark.sandbox_config(count=10, token=TOKEN)
def test_ship_shows_at_once_in_orders(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    code, _, _ = run("--db", db, "ship", "oxatis", "100003", "--tracking", "6A33", "--carrier", "Colissimo",
                     *oxatis_args(sandbox), env=env)  # fmt: skip
    assert code == EXIT_OK
    code, stdout, _ = run("--db", db, "orders", "--format", "csv")
    row = next(r for r in csv.DictReader(io.StringIO(stdout)) if r["order_id"] == "100003")
    assert (row["status"], row["tracking_number"], row["carrier"]) == ("shipped", "6A33", "Colissimo")
    code, stdout, _ = run("--db", db, "orders", env={"COLUMNS": "200"})
    assert "Colissimo 6A33" in stdout


def test_demo_never_writes_into_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "real.sqlite3"
    code, _, _ = run("--db", str(db), "demo", "--orders", "20")
    assert code == EXIT_OK
    before = db.read_bytes()
    code, _, stderr = run("--db", str(db), "demo", "--orders", "20")
    assert code == EXIT_CONFIG and "never writes into an existing database" in stderr
    assert db.read_bytes() == before
    code, _, stderr = run("--db", str(db), "demo", "--orders", "20", env={"CHANNEL_DB": str(db)})
    assert code == EXIT_CONFIG and db.read_bytes() == before


def test_demo_and_sandbox_work_for_any_channel_that_ships_a_sandbox(tmp_path: Path) -> None:
    code, stdout, _ = run("--db", str(tmp_path / "csv.sqlite3"), "demo", "csvstore", "--orders", "12")
    assert code == EXIT_OK and "csvstore store with 12 orders" in stdout and "already_sent" in stdout
    code, _, stderr = run("sandbox", "memory")
    assert code == EXIT_CONFIG and "ships no sandbox" in stderr and "oxatis" in stderr and "csvstore" in stderr
    code, _, stderr = run("sandbox", "oxatis", "--set", "colour=blue")
    assert code == EXIT_CONFIG and "unknown Oxatis sandbox option colour" in stderr


def test_sandbox_on_a_busy_port_is_a_message_not_a_traceback() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, stderr = run("sandbox", "--port", str(busy.getsockname()[1]))
    assert code == EXIT_CONFIG and "could not start" in stderr and "Traceback" not in stderr


def test_the_core_never_imports_a_channel() -> None:
    core = Path(__file__).resolve().parents[2] / "src" / "channel_core"
    offenders = [
        str(p) for p in core.rglob("*.py") if re.search(r"^\s*(from|import) channel_oxatis", p.read_text(), re.M)
    ]
    assert offenders == []


def _db_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    readonly = tmp_path / "readonly.sqlite3"
    run("--db", str(readonly), "demo", "--orders", "5")
    readonly.chmod(0o444)
    return {
        "missing folder": (tmp_path / "nope" / "o.sqlite3", "does not exist"),
        "corrupted file": (corrupt, "not a channel database"),
        "read-only file": (readonly, "read-only"),
    }


@pytest.mark.sandbox_config(count=5, token=TOKEN)
@pytest.mark.parametrize("command", ["import", "orders", "failures", "notifications", "ship", "sync"])
def test_database_mistakes_are_one_line_with_exit_2_and_leave_the_file_alone(
    command: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    import os

    args = {
        "import": ("import", "oxatis", *oxatis_args(sandbox)),
        "orders": ("orders",),
        "failures": ("failures",),
        "notifications": ("notifications",),
        "ship": ("ship", "oxatis", "100002", "--tracking", "6A1", "--carrier", "DPD", *oxatis_args(sandbox)),
        "sync": ("sync", "oxatis", "--runs", "1", *oxatis_args(sandbox)),
    }[command]
    for name, (path, message) in _db_cases(tmp_path).items():
        if name == "read-only file" and (os.geteuid() == 0 or command in ("orders", "failures", "notifications")):
            continue  # root ignores file modes; reading a read-only database is fine
        before = path.read_bytes() if path.exists() else None
        code, stdout, stderr = run("--db", str(path), *args, env={"OXATIS_TOKEN": TOKEN})
        assert code == EXIT_CONFIG, (name, stdout, stderr)
        assert message in stderr and "Traceback" not in stderr + stdout, (name, stderr)
        assert (path.read_bytes() if path.exists() else None) == before, name


def test_read_commands_refuse_a_database_that_does_not_exist(tmp_path: Path) -> None:
    for command in (("orders",), ("failures",), ("notifications",)):
        code, _, stderr = run("--db", str(tmp_path / "typo.sqlite3"), *command)
        assert code == EXIT_CONFIG and "no database at" in stderr, command
    assert not (tmp_path / "typo.sqlite3").exists()


def test_orders_for_an_unknown_channel_is_an_error(tmp_path: Path) -> None:
    run("--db", str(tmp_path / "d.sqlite3"), "demo", "--orders", "5")
    code, _, stderr = run("--db", str(tmp_path / "d.sqlite3"), "orders", "--channel", "nope")
    assert code == EXIT_CONFIG and "no channel named 'nope'" in stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('channels = "oops"\n', "'channels' must be a table"),
        ("database = 5\n", "'database' must be a string"),
        ("[channel.oxatis]\ntoken = 'x'\n", "unknown key 'channel'"),
        ("[channels]\noxatis = 3\n", "[channels.oxatis] must be a table"),
    ],
)
def test_config_mistakes_are_named_and_never_ignored(toml: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "channel [prod].toml"  # brackets in the path must print as they are
    config.write_text(toml, encoding="utf-8")
    for command in (("orders",), ("connect", "oxatis")):
        code, _, stderr = run("--config", str(config), "--db", str(tmp_path / "x.sqlite3"), *command)
        assert code == EXIT_CONFIG and message in stderr and "Traceback" not in stderr, (command, stderr)
        assert "channel [prod].toml" in stderr


@pytest.mark.parametrize("every", ["0", "-5s", "0s", "nan"])
def test_sync_refuses_an_interval_that_would_loop_flat_out(every: str) -> None:
    code, _, stderr = run("sync", "oxatis", "--every", every)
    assert code == EXIT_CONFIG and "--every must" in stderr


def test_an_unreachable_store_is_named_at_once_with_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, _, stderr = run(
        "--db", str(tmp_path / "o.sqlite3"), "import", "oxatis", "--set", f"base_url=http://127.0.0.1:{port}",
        env={"OXATIS_TOKEN": TOKEN},
    )  # fmt: skip
    assert code == EXIT_CONFIG and f"could not connect to http://127.0.0.1:{port}" in stderr
    assert "check base_url" in stderr and "Traceback" not in stderr
    assert "http_retry" not in stderr  # no retries (each would log a warning) against a store that never answered


@pytest.mark.sandbox_config(count=5, token=TOKEN)
def test_a_second_ctrl_c_exits_130_with_a_message(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channel_core.sync import Importer

    def interrupted(self: Importer, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Importer, "run", interrupted)
    code, _, stderr = run(
        "--db", str(tmp_path / "o.sqlite3"), "import", "oxatis", *oxatis_args(sandbox), env={"OXATIS_TOKEN": TOKEN}
    )
    assert code == 130 and "interrupted" in stderr and "Aborted" not in stderr


@pytest.mark.sandbox_config(count=30, token=TOKEN)
def test_tables_fit_80_columns(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    env = {"OXATIS_TOKEN": TOKEN}
    sandbox.add_fault("quota", times=1, methods={"OrderGet"})  # a pending notification with a long message
    run("--db", db, "import", "oxatis", *oxatis_args(sandbox), "--json", env=env)
    run("--db", db, "ship", "oxatis", "100003", "--tracking", "6A3333333333333", "--carrier", "Colissimo",
        *oxatis_args(sandbox), env=env)  # fmt: skip
    for command in (["orders"], ["notifications", "--all"], ["failures"]):
        code, stdout, _ = run("--db", db, *command, env={"COLUMNS": "80"})
        assert code == EXIT_OK, command
        assert stdout.strip(), command
        assert max(len(line) for line in stdout.splitlines()) <= 80, (command, stdout)
    code, stdout, _ = run("--db", db, "orders", env={"COLUMNS": "80"})
    assert "not shown at this width" in stdout and "100003" in stdout and "shipped" in stdout


def test_sandbox_stores_prints_each_stores_credentials_and_registry_line() -> None:
    from channel_core.cli.sandbox import _print_stores
    from channel_core.hooktypes import SandboxOptions
    from channel_core.registry import Channels

    oxatis = Channels.discover()["oxatis"]
    sandbox = oxatis.sandbox()
    assert sandbox is not None
    running = sandbox.make(SandboxOptions(port=0, orders=10, stores=3))
    try:
        from channel_core.cli.context import out

        with out.capture() as captured:
            _print_stores(oxatis, running, 3, 10)
        text = captured.get()
    finally:
        running.stop()
    assert "export SHOP1_TOKEN=sandbox-token\n" in text
    assert "export SHOP3_TOKEN=sandbox-token-3\n" in text
    assert f"channel stores add shop2 oxatis --credentials env:SHOP2 --every 1m --set base_url={running.url}" in text
