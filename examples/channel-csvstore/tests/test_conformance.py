"""The CSV store channel passes the channel_core conformance kit."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from channel_core import Shipment
from channel_core.testing import ChannelContract

STORE = Path(__file__).parent / "store"


class TestCsvStoreConformance(ChannelContract):
    channel_name = "csvstore"

    @pytest.fixture
    def channel_settings(self, tmp_path: Path) -> Mapping[str, Any]:
        folder = tmp_path / "store"
        shutil.copytree(STORE, folder)
        return {"folder": str(folder)}

    @pytest.fixture
    def shipment(self) -> Shipment:
        return Shipment(order_id="A-1001", tracking_number="6A123", carrier="Colissimo")
