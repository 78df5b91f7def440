"""The reliability suite's report: every test records what it tried; the table prints at the end."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from channel_oxatis.sandbox import data


class Report:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []

    def fault(self, name: str, survived: bool) -> None:
        self.counts["faults tried"] += 1
        self.counts["faults survived"] += int(survived)
        if not survived:
            self.notes.append(f"fault not survived: {name}")

    def ledger(self, db_path: Path, count: int) -> tuple[int, int]:
        """Compare the SQLite ledger with the sandbox's full order set; return (lost, duplicated)."""
        expected = {str(data.order_id_for(n)) for n in range(1, count + 1)}
        with sqlite3.connect(db_path) as db:
            rows = [r[0] for r in db.execute("SELECT order_id FROM orders UNION ALL SELECT order_id FROM skipped")]
        seen = Counter(rows)
        lost = len(expected - set(seen))
        duplicated = sum(n - 1 for n in seen.values() if n > 1)
        self.counts["orders checked"] += len(expected)
        self.counts["orders lost"] += lost
        self.counts["orders duplicated"] += duplicated
        return lost, duplicated

    def bad_input(self, crashed: bool) -> None:
        self.counts["bad inputs tried"] += 1
        self.counts["bad input crashes"] += int(crashed)

    def leaks(self, places_checked: int, leaks: int) -> None:
        self.counts["secret places checked"] += places_checked
        self.counts["secret leaks found"] += leaks


REPORT = Report()
ROWS = (
    "faults tried",
    "faults survived",
    "orders checked",
    "orders lost",
    "orders duplicated",
    "bad inputs tried",
    "bad input crashes",
    "secret places checked",
    "secret leaks found",
)


@pytest.fixture
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT.counts:
        return
    terminalreporter.section("reliability report")
    for row in ROWS:
        terminalreporter.write_line(f"  {row:24} {REPORT.counts.get(row, 0):>8}")
    for note in REPORT.notes:
        terminalreporter.write_line(f"  ! {note}")
