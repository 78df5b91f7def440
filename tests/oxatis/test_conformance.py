"""The Oxatis channel runs the conformance kit against a live sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from channel_core import Shipment
from channel_core.testing import ChannelContract
from channel_oxatis.sandbox import SandboxServer
from tests.oxatis.conftest import CASSETTES, sandbox_settings


@pytest.mark.sandbox_config(count=40, token="conformance-Tok3n-9f2a")
class TestOxatisConformance(ChannelContract):
    channel_name = "oxatis"

    @pytest.fixture
    def channel_settings(self, sandbox: SandboxServer) -> Mapping[str, Any]:
        return sandbox_settings(sandbox, stock_location_characteristic="Emplacement", app_id="app-Id-77c0")

    @pytest.fixture
    def bad_settings(self, channel_settings: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**channel_settings, "token": "not-the-Tok3n"}

    @pytest.fixture
    def shipment(self) -> Shipment:
        return Shipment(
            order_id="100004",
            tracking_number="6A0000000004",
            carrier="Colissimo",
            tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A0000000004",
        )

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return ["conformance-Tok3n-9f2a", "not-the-Tok3n", "app-Id-77c0"]

    @pytest.fixture
    def cassette_dir(self) -> Path:
        return CASSETTES
