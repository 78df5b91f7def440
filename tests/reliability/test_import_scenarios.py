"""Named import scenarios from the adversarial store, each a row of the reliability report.

Every row is measured by content: after the scenario's runs, the store goes
quiet and one more run must leave the database equal to the store.
"""

from __future__ import annotations

from typing import Any

import pytest

from channel_core import Channel
from tests.reliability.conftest import Report
from tests.sync.simulation import simulate

BUSY = {"activity": 0.6, "runs": 4, "stop_rate": 0.0, "fault_rate": 0.0}
SCENARIOS: dict[str, tuple[int, dict[str, Any]]] = {
    "host clock 10 min ahead": (3, {"skew_s": 600.0, **BUSY}),
    "host clock 10 min behind": (6, {"skew_s": -600.0, **BUSY}),
    "busy store, list by modification": (9, {"list_order": "modified", **BUSY}),
    "busy store, list by creation": (12, {"list_order": "created", **BUSY}),
    "autumn clock change (Paris)": (1, {"night": "fall_back", **BUSY}),
    "spring clock change (Paris)": (2, {"night": "spring_forward", **BUSY}),
    "interrupted every other page": (15, {"stop_rate": 0.5, "runs": 6, "activity": 0.3}),
    "blank and malformed detail replies": (18, {"fault_rate": 0.15, "runs": 5, "activity": 0.3}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_import_scenario_loses_nothing_by_content(name: str, oxatis: Channel, report: Report) -> None:
    seed, overrides = SCENARIOS[name]
    outcome = simulate(oxatis, seed, count=40, visible=34, page_size=5, **overrides)
    report.scenario(name, outcome)
    report.fault(f"import scenario: {name}", outcome.ok)
    assert outcome.ok, outcome.describe()
