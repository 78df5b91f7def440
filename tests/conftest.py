"""Shared test setup: the network is blocked except for loopback (local sandbox servers)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

pytest_plugins = ["pytester"]

# Property tests explore the same examples on every run: a red CI run is reproducible, never luck.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.load_profile("deterministic")

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise OSError(f"network access blocked in tests: {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-cassettes",
        action="store_true",
        default=False,
        help="re-record cassettes from the Oxatis sandbox (or a real store when OXATIS_TOKEN is set)",
    )


ROOT = Path(__file__).resolve().parents[1]
_POSTGRES_HINT = (
    "PostgreSQL suites skipped: PostgreSQL's server binaries (initdb, pg_ctl) are not installed. "
    "Install them (apt-get install postgresql) and run tox again, or point CHANNEL_TEST_POSTGRES_DSN "
    "at a database the tests may create databases on."
)


def _postgres_binaries() -> bool:
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return True
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _start_throwaway_postgres(config: pytest.Config) -> None:
    """Without ``CHANNEL_TEST_POSTGRES_DSN``, start a throwaway cluster when the server binaries exist.

    The PostgreSQL suites then run under plain ``tox``; where the binaries are missing they are
    skipped and the summary says once how to get them.
    """
    if os.environ.get("CHANNEL_TEST_POSTGRES_DSN"):
        return
    if os.environ.get("CHANNEL_TEST_POSTGRES") == "off":
        config.stash[_postgres_note] = "PostgreSQL suites skipped: CHANNEL_TEST_POSTGRES=off"
        return
    if not _postgres_binaries():
        config.stash[_postgres_note] = _POSTGRES_HINT
        return
    script = ROOT / "scripts" / "throwaway-postgres"
    started = subprocess.run([str(script), "start"], capture_output=True, text=True, check=False)
    lines = started.stdout.split()
    if started.returncode != 0 or len(lines) != 2:
        config.stash[_postgres_note] = (
            f"PostgreSQL suites skipped: scripts/throwaway-postgres could not start a cluster "
            f"({started.stderr.strip()[-300:] or 'no output'})"
        )
        return
    dsn, directory = lines
    os.environ["CHANNEL_TEST_POSTGRES_DSN"] = dsn

    def stop() -> None:
        os.environ.pop("CHANNEL_TEST_POSTGRES_DSN", None)
        subprocess.run([str(script), "stop", directory], check=False)

    config.add_cleanup(stop)


_postgres_note = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Each skip reason once, with how many tests it skipped, then how to run the PostgreSQL suites."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = str(longrepr[2]).removeprefix("Skipped: ") if isinstance(longrepr, tuple) else "skipped"
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        terminalreporter.section("skipped, by reason")
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{count:4d}  {reason}")
    note = config.stash.get(_postgres_note, None)
    if note is not None:
        terminalreporter.write_line(note, yellow=True)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        _start_throwaway_postgres(config)
    config.addinivalue_line("markers", "sandbox_config(**kwargs): SandboxConfig used when recording this cassette")
    config.addinivalue_line("markers", "sandbox_only: needs sandbox switches; skipped when recording a real store")


@pytest.fixture
def oxatis() -> Any:
    """The Oxatis channel, discovered through its entry point."""
    from channel_core import Channels

    return Channels.discover()["oxatis"]


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A live Oxatis sandbox on loopback; ``@pytest.mark.sandbox_config(...)`` configures it."""
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    marker = request.node.get_closest_marker("sandbox_config")
    with SandboxServer(SandboxConfig(**(marker.kwargs if marker else {}))) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """The CLI configures structlog as an application would; undo that between tests."""
    import structlog

    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _forget_store_lookups() -> Iterator[None]:
    """Cassette replays reach different test stores at one address with one token: in a real fleet that is one
    store, whose account and states a channel may keep for a while (channel_core.lookups). Not across tests."""
    from channel_oxatis.plugin import _LOOKUPS
    from channel_shopify.plugin import _LOOKUPS as _SHOPIFY_LOOKUPS

    _LOOKUPS.clear()
    _SHOPIFY_LOOKUPS.clear()
    yield
