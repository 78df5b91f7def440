"""A library stays silent until its host configures logging: nothing on stdout, only warnings on stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = """
import tempfile
from datetime import UTC, datetime
from channel_core import Channels, Shipment
from channel_core.sync import Importer, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxConfig, SandboxServer

oxatis = Channels.discover()["oxatis"]
with SandboxServer(SandboxConfig(count=40)) as server, tempfile.TemporaryDirectory() as tmp:
    settings = {"token": server.config.token, "base_url": server.url, "store_timezone": "Europe/Paris"}
    with oxatis.connect(settings) as connection, SQLiteStore(tmp + "/db.sqlite3") as store:
        summary = Importer(oxatis, connection, store).run()
        assert summary.imported > 30, summary
        Notifier(oxatis, connection, store).notify(Shipment(order_id="100002", tracking_number="6A2", carrier="DPD"))
"""


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", textwrap.dedent(script)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def test_an_unconfigured_host_sees_nothing_on_stdout() -> None:
    done = run_python(SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "http_request" not in done.stderr and "import_finished" not in done.stderr  # INFO stays hidden


def test_a_host_with_standard_logging_gets_the_events() -> None:
    script = "import logging, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stderr)\n" + SCRIPT
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "INFO:channel_core.http:http_request" in done.stderr
    assert "INFO:channel_core.sync.importer:import_finished" in done.stderr
    assert "sandbox-token" not in done.stderr
