"""Fixtures for the Oxatis tests: a live sandbox, and cassettes recorded from it.

Cassette tests replay ``cassettes/oxatis/<test>.yaml`` with record mode ``none``.
``tox -e record`` (pytest ``--record-cassettes``) re-records them from a fresh
sandbox, or from a real store when ``OXATIS_TOKEN`` (and ``OXATIS_BASE_URL``) are set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from channel_core.testing.cassettes import build_vcr, cassette_config
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from channel_oxatis.settings import DEFAULT_BASE_URL

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "oxatis"
REPLAY_TOKEN = "replay-token-not-a-secret"
SANDBOX_TOKEN = "sandbox-token"


def sandbox_settings(server: SandboxServer, **extra: Any) -> dict[str, Any]:
    return {
        "token": server.config.token,
        "base_url": server.url,
        "store_timezone": "Europe/Paris",
        "retry_backoff": 0.0,
        **extra,
    }


@dataclass
class Recording:
    """What a cassette test connects with, and the sandbox behind it when recording."""

    settings: dict[str, Any]
    recording: bool
    sandbox: SandboxServer | None = None
    secrets: list[str] = field(default_factory=list)


@contextmanager
def open_recording(
    config: pytest.Config, name: str, sandbox_kwargs: dict[str, Any], *, sandbox_only: bool = False
) -> Iterator[Recording]:
    """Replay ``cassettes/oxatis/<name>.yaml``, or record it when ``--record-cassettes`` is given."""
    record = config.getoption("--record-cassettes")
    base = {"store_timezone": "Europe/Paris", "max_concurrency": 1, "retry_backoff": 0.0}
    real_token = os.environ.get("OXATIS_TOKEN")
    server: SandboxServer | None = None
    if not record:
        recording = Recording({"token": REPLAY_TOKEN, **base}, recording=False)
    elif real_token:
        if sandbox_only:
            pytest.skip("needs sandbox switches; not recorded from a real store")
        settings = {
            "token": real_token,
            "base_url": os.environ.get("OXATIS_BASE_URL", DEFAULT_BASE_URL),
            **base,
        }
        if os.environ.get("OXATIS_APP_ID"):
            settings["app_id"] = os.environ["OXATIS_APP_ID"]
        recording = Recording(settings, recording=True, secrets=[real_token, os.environ.get("OXATIS_APP_ID", "")])
    else:
        server = SandboxServer(SandboxConfig(**sandbox_kwargs)).start()
        recording = Recording(
            {"token": server.config.token, "base_url": server.url, **base},
            recording=True,
            sandbox=server,
            secrets=[server.config.token],
        )
    options = cassette_config(
        production_base_url=DEFAULT_BASE_URL,
        secret_form_fields=("Token", "AppId", "TOKEN", "APPID"),
        secret_values=recording.secrets,
        record_mode="all" if record else "none",
    )
    recorder = build_vcr(str(CASSETTES), **options)
    try:
        with recorder.use_cassette(f"{name}.yaml"):
            yield recording
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Recording]:
    """A cassette named after the test; ``@pytest.mark.sandbox_config(...)`` configures its recording."""
    marker = request.node.get_closest_marker("sandbox_config")
    only = request.node.get_closest_marker("sandbox_only") is not None
    with open_recording(
        request.config, request.node.name, dict(marker.kwargs) if marker else {}, sandbox_only=only
    ) as rec:
        yield rec
