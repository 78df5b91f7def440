"""Connect, import and notify against every documented reply variant the sandbox can serve (oxatis-api.md §7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, NotificationStatus, Shipment
from channel_core.sync import Importer, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from channel_oxatis.sandbox.variants import VARIANTS
from tests.oxatis.conftest import sandbox_settings
from tests.sync.simulation import check_content

SWITCHES: dict[str, dict[str, Any]] = {
    **{variant: {"variants": frozenset({variant})} for variant in sorted(VARIANTS)},
    "all variants but no_page_information": {"variants": VARIANTS - {"no_page_information"}},
    "progress-state logs in the XSD container, no Code": {"log_container": "xsd", "log_entry_codes": False},
    "summary list sorted by creation": {"list_order": "created"},
    "AppId required": {"app_id": "integrator-app-id"},
}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_connect_import_and_notify_survive_the_variant(name: str, oxatis: Channel, tmp_path: Path) -> None:
    switches = SWITCHES[name]
    config = SandboxConfig(count=25, **switches)
    extra = {"app_id": switches["app_id"]} if "app_id" in switches else {}
    settings_extra = {"stock_location_characteristic": "Emplacement", "page_size": 10, **extra}
    with SandboxServer(config) as server, SQLiteStore(tmp_path / "v.sqlite3") as db:
        connection = oxatis.connect(sandbox_settings(server, **settings_extra))
        summary = Importer(oxatis, connection, db).run()
        if name == "no_page_information":  # never read as one page: the run stops and promises nothing
            assert summary.stopped == "error" and "PageInformation" in (summary.stop_error or "")
            assert summary.complete_until is None and db.count_orders() == 0
        else:
            assert summary.completed and summary.failed == 0
            assert server.calls["OptionTypesGetDetail"] == 2  # once per option type per connection, not per item
            check = check_content(oxatis, server, db, stock_location_characteristic="Emplacement", **extra)
            assert check.ok, check
            located = [item.location for s in db.iter_orders() for item in s.order.items]
            assert located and all(located), "every sandbox item has a stock location, resolved through ids"
        shipment = Shipment(order_id="100003", tracking_number="6A300", carrier="Colissimo")
        first = Notifier(oxatis, connection, db).notify(shipment)
        assert first.result.status is NotificationStatus.SENT, first.result.message
        with SQLiteStore(tmp_path / "other-host.sqlite3") as other:  # no ledger: the store itself must say so
            again = Notifier(oxatis, oxatis.connect(sandbox_settings(server, **extra)), other).notify(shipment)
        assert again.result.status is NotificationStatus.ALREADY_SENT
        assert server.store.transport_writes[100003] == 1
