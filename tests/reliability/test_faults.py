"""The fault matrix: each fault during an import (and a notification where it applies), then the fault
clears and a second run must leave the SQLite ledger equal to the sandbox's full order set."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channel_core import AuthenticationError, Channel, NotificationStatus, Shipment
from channel_core.sync import Importer, Notifier, SQLiteStore
from channel_oxatis.sandbox import SandboxServer
from tests.oxatis.conftest import sandbox_settings
from tests.reliability.conftest import Report

COUNT = 30
Setup = Callable[[SandboxServer], Any]


def run_import(oxatis: Channel, sandbox: SandboxServer, db: Path, later: bool = False, **settings: Any) -> Any:
    clock = (lambda: datetime.now(UTC) + timedelta(minutes=2)) if later else (lambda: datetime.now(UTC))
    with SQLiteStore(db) as store:
        connection = oxatis.connect(sandbox_settings(sandbox, page_size=10, max_concurrency=2, **settings))
        try:
            return Importer(oxatis, connection, store, clock=clock).run()
        finally:
            connection.close()


DETAIL = frozenset({"OrderGetMoreDetails"})
LIST = frozenset({"OrderGetSummaryList"})

# name -> (fault kwargs, expected first-run outcome: "completed" or "stopped", settings)
MATRIX: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "read timeout": ({"kind": "slow", "times": 2, "delay": 0.6, "methods": DETAIL}, "completed", {"timeout": 0.2}),
    "connection reset": ({"kind": "reset", "times": 2, "methods": DETAIL}, "completed", {}),
    "HTTP 500 HTML page": ({"kind": "html500", "times": 2}, "completed", {}),
    "429 with Retry-After": ({"kind": "http429", "times": 2, "retry_after": 0}, "completed", {}),
    "Oxatis 600 maintenance": ({"kind": "maintenance", "times": 3}, "completed", {}),
    "HTTP 503 before processing": ({"kind": "http503", "times": 2}, "completed", {}),
    "persistent 5xx on listing": ({"kind": "html500", "times": -1, "methods": LIST, "after": 1}, "stopped", {}),
    "504 daily quota": ({"kind": "quota", "times": -1, "after": 14}, "stopped", {}),
    "malformed XML": ({"kind": "malformed", "times": 2, "methods": DETAIL}, "completed", {}),
    "malformed XML on a listing page": ({"kind": "malformed", "times": 1, "methods": LIST, "after": 1}, "stopped", {}),
    "entity expansion": ({"kind": "entity_bomb", "times": 2, "methods": DETAIL}, "completed", {}),
    "external entity": ({"kind": "external_entity", "times": 2, "methods": DETAIL}, "completed", {}),
    "empty body": ({"kind": "empty", "times": 2}, "completed", {}),
}


@pytest.mark.sandbox_config(count=COUNT)
@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_then_recovery_loses_and_duplicates_nothing(
    name: str, oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report
) -> None:
    fault_kwargs, expected, settings = MATRIX[name]
    db = tmp_path / "ledger.sqlite3"
    kwargs = dict(fault_kwargs)
    fault = sandbox.add_fault(kwargs.pop("kind"), **kwargs)
    first = run_import(oxatis, sandbox, db, **settings)
    outcome = "completed" if first.completed else "stopped"
    sandbox.config.faults.remove(fault)
    run_import(oxatis, sandbox, db, later=True)  # the fault has cleared
    lost, duplicated = report.ledger(db, oxatis, sandbox)
    survived = outcome == expected and lost == 0 and duplicated == 0
    report.fault(name, survived)
    assert outcome == expected, f"{name}: first run {outcome}, expected {expected} ({first.failures})"
    assert (lost, duplicated) == (0, 0)


@pytest.mark.sandbox_config(count=COUNT, wrong_type_order=100005)
def test_wrongly_typed_field_is_reported_and_the_rest_imported(
    oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report
) -> None:
    summary = run_import(oxatis, sandbox, tmp_path / "l.sqlite3")
    reason = next(r for r in summary.skip_reasons if "invalid order data" in r)
    assert "100005" in reason and "Quantity" in reason
    lost, duplicated = report.ledger(tmp_path / "l.sqlite3", oxatis, sandbox)
    report.fault("wrongly typed field in one order", summary.completed and lost == duplicated == 0)
    assert (lost, duplicated) == (0, 0)


@pytest.mark.sandbox_config(count=COUNT, modify_between_pages=(1, 4))
def test_orders_modified_between_pages(oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report) -> None:
    db = tmp_path / "l.sqlite3"
    first = run_import(oxatis, sandbox, db)
    lost, duplicated = report.ledger(db, oxatis, sandbox)
    run_import(oxatis, sandbox, db, later=True)
    with SQLiteStore(db) as store:
        modified = store.get_order("oxatis", "100001")
    report.fault("orders modified between pages", first.completed and lost == duplicated == 0)
    assert first.completed and (lost, duplicated) == (0, 0)
    assert modified is not None


@pytest.mark.sandbox_config(count=COUNT)
def test_connect_failure_stops_cleanly_then_recovers(
    oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    from channel_core import TransportError

    settings = sandbox_settings(sandbox)
    with pytest.raises(TransportError, match="could not connect"):
        oxatis.connect({**settings, "base_url": f"http://127.0.0.1:{dead_port}", "retry_attempts": 2})
    run_import(oxatis, sandbox, tmp_path / "l.sqlite3")
    lost, duplicated = report.ledger(tmp_path / "l.sqlite3", oxatis, sandbox)
    report.fault("connect error (refused)", lost == duplicated == 0)
    assert (lost, duplicated) == (0, 0)


@pytest.mark.sandbox_config(count=10)
def test_bad_token_503_is_an_authentication_error(oxatis: Channel, sandbox: SandboxServer, report: Report) -> None:
    with pytest.raises(AuthenticationError):
        oxatis.connect({**sandbox_settings(sandbox), "token": "nope"})
    report.fault("503 bad token", True)


@pytest.mark.sandbox_config(count=10)
@pytest.mark.parametrize("kind", ["slow_after_apply", "reset"])
def test_write_with_unknown_outcome_never_creates_a_second_state_entry(
    kind: str, oxatis: Channel, sandbox: SandboxServer, tmp_path: Path, report: Report
) -> None:
    fault: dict[str, Any] = {"times": 1, "methods": frozenset({"OrderUpdateTracking"})}
    if kind == "slow_after_apply":
        fault["delay"] = 0.6
    sandbox.add_fault(kind, **fault)
    shipment = Shipment(order_id="100006", tracking_number="6A6", carrier="Colissimo")
    with SQLiteStore(tmp_path / "n.sqlite3") as store:
        connection = oxatis.connect(sandbox_settings(sandbox, timeout=0.2))
        first = Notifier(oxatis, connection, store).notify(shipment)
        same_run = Notifier(oxatis, connection, store).retry_pending()
        next_run = Notifier(oxatis, oxatis.connect(sandbox_settings(sandbox)), store).retry_pending()
    entries = sandbox.store.shipped_entries(100006)
    if kind == "slow_after_apply":
        assert first.pending  # applied, but the reply never came
    assert [o.result.status for o in same_run] in ([NotificationStatus.ALREADY_SENT], [NotificationStatus.SENT])
    assert next_run == []
    report.fault(f"write then {kind}", entries == 1)
    assert entries == 1
