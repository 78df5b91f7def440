"""A distinctive token and AppId go through every path; neither may appear anywhere we can look."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from channel_core import Channel, ChannelError, OrderQuery, Shipment
from channel_core.cli import cli
from channel_core.sync import Importer, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxServer
from tests.oxatis.conftest import CASSETTES, sandbox_settings
from tests.reliability.conftest import Report

TOKEN = "TOKEN-zq81-Distinctive-Value"
APP_ID = "APPID-k27-Distinctive-Value"
SECRETS = (TOKEN, APP_ID)


def leaks_in(text: str) -> int:
    return sum(text.count(secret) for secret in SECRETS)


@pytest.mark.sandbox_config(count=30, token=TOKEN, app_id=APP_ID)
def test_no_secret_anywhere(
    oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    settings = sandbox_settings(sandbox, app_id=APP_ID, timeout=0.3)
    db = tmp_path / "secrets.sqlite3"
    with structlog.testing.capture_logs() as logs:
        connection = oxatis.connect(settings)
        texts += [repr(connection), str(connection), repr(connection.__dict__), repr(oxatis.info())]
        with SQLiteStore(db) as store:
            summary = Importer(oxatis, connection, store).run()
            texts.append(repr(summary.as_dict()))
            outcome = Notifier(oxatis, connection, store).notify(
                Shipment(order_id="100002", tracking_number="6A2", carrier="Colissimo")
            )
            texts.append(repr(outcome))
        # every failure mode, with its exception text and repr
        for kind, kwargs in (
            ("quota", {"times": 1}),
            ("maintenance", {"times": 9}),
            ("html500", {"times": 9}),
            ("malformed", {"times": 1}),
            ("entity_bomb", {"times": 1}),
            ("unauthorized", {"times": 1}),
            ("slow", {"times": 1, "delay": 0.6}),
        ):
            sandbox.add_fault(kind, **kwargs)
            try:
                pages = oxatis.fetch_orders(
                    connection, OrderQuery(modified_since=datetime.now(UTC) - timedelta(days=1))
                )
                texts.append(repr(list(pages)))
            except ChannelError as exc:
                texts += [str(exc), repr(exc), repr(exc.__dict__)]
            sandbox.clear_faults()
        try:
            oxatis.connect({**settings, "token": TOKEN + "-wrong"})
        except ChannelError as exc:
            texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
        connection.close()
    texts.append(repr(logs))
    texts.append(caplog.text)

    runner = CliRunner()
    env = {"OXATIS_TOKEN": TOKEN, "OXATIS_APP_ID": APP_ID}
    args = ["--set", f"base_url={sandbox.url}", "--set", "store_timezone='Europe/Paris'"]
    for command in (
        ["-vv", "connect", "oxatis", *args],
        ["-vv", "--db", str(db), "import", "oxatis", *args],
        ["-vv", "--db", str(db), "ship", "oxatis", "100003", "--tracking", "T3", "--carrier", "DPD", *args],
        ["-vv", "--db", str(db), "orders", "--format", "jsonl"],
        ["-vv", "connect", "oxatis", *args, "--set", "token=wrong"],
    ):
        result = runner.invoke(cli, command, env=env)
        texts += [result.stdout, result.stderr, repr(result.exception)]
    structlog.reset_defaults()

    database = b"".join(p.read_bytes() for p in tmp_path.glob("secrets.sqlite3*"))
    cassettes = "".join(p.read_text(encoding="utf-8") for p in CASSETTES.glob("*.yaml"))
    places = [*texts, database.decode("utf-8", "replace"), cassettes]
    leaks = sum(leaks_in(text) for text in places)
    report.leaks(len(places), leaks)
    assert leaks == 0
    assert sum(r.token == TOKEN for r in sandbox.requests) >= 5  # the secrets really went over the wire
