"""Shared test setup: the network is blocked except for loopback (local sandbox servers)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
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


def pytest_configure(config: pytest.Config) -> None:
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
