"""pytest plugin shipped with channel_core (entry point ``pytest11``). Fixtures only, none autouse."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest


@pytest.fixture
def channels() -> Any:
    """The installed channels, discovered through their entry points."""
    from channel_core.registry import Channels

    return Channels.discover()


@pytest.fixture
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event emitted during the test."""
    import structlog

    with structlog.testing.capture_logs() as logs:
        yield logs
