"""The reliability suite's report: every test records what it tried; the table prints at the end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel
from channel_core.sync import SQLiteStore
from channel_oxatis.sandbox import SandboxServer
from tests.sync.simulation import Outcome, check_content


class Report:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []
        self.scenarios: list[tuple[str, Outcome]] = []
        self.notify_rows: list[tuple[str, int, int, int, int]] = []

    def fault(self, name: str, survived: bool) -> None:
        self.counts["faults tried"] += 1
        self.counts["faults survived"] += int(survived)
        if not survived:
            self.notes.append(f"fault not survived: {name}")

    def ledger(self, db_path: Path, oxatis: Channel, sandbox: SandboxServer) -> tuple[int, int]:
        """Compare the SQLite ledger with the sandbox by content; return (lost, duplicated).

        Lost counts every order a host would get wrong: missing, stale (any field
        differs from the store's detail reply mapped now), skipped although
        importable, or importable in the database although the store's truth is a skip.
        """
        with SQLiteStore(db_path) as store:
            check = check_content(oxatis, sandbox, store)
        self.counts["orders checked"] += check.checked
        self.counts["orders lost"] += check.lost + len(check.not_skipped)
        self.counts["orders duplicated"] += check.duplicates
        if not check.ok:
            self.notes.append(f"ledger differs from the store: {check}")
        return check.lost + len(check.not_skipped), check.duplicates

    def scenario(self, name: str, outcome: Outcome) -> None:
        self.scenarios.append((name, outcome))

    def notifications(self, name: str, *, attempted: int, sent: int, duplicates: int, lost: int) -> None:
        self.notify_rows.append((name, attempted, sent, duplicates, lost))
        self.counts["notifications attempted"] += attempted
        self.counts["notifications sent"] += sent
        self.counts["duplicate state entries"] += duplicates
        self.counts["notifications lost"] += lost

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
    "notifications attempted",
    "notifications sent",
    "duplicate state entries",
    "notifications lost",
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
    if REPORT.scenarios:
        terminalreporter.write_line("")
        terminalreporter.write_line(
            f"  {'import scenario':34} {'orders':>6} {'lost':>5} {'dup':>4} {'list':>5} {'detail':>6}  final run"
        )
        for name, outcome in REPORT.scenarios:
            check = outcome.check
            final = "completed" if outcome.final_completed else "STOPPED"
            terminalreporter.write_line(
                f"  {name:34} {check.checked:>6} {check.lost + len(check.not_skipped):>5} {check.duplicates:>4} "
                f"{outcome.list_calls:>5} {outcome.detail_calls:>6}  {final}"
            )
    if REPORT.notify_rows:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"  {'notification scenario':42} {'tried':>5} {'sent':>5} {'dup':>4} {'lost':>5}")
        for name, attempted, sent, duplicates, lost in REPORT.notify_rows:
            terminalreporter.write_line(f"  {name:42} {attempted:>5} {sent:>5} {duplicates:>4} {lost:>5}")
    for note in REPORT.notes:
        terminalreporter.write_line(f"  ! {note}")
