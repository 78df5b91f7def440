"""The README's set-up lines, run exactly as written in a fresh clone, each line's exit status on its own.

A stray committed file once broke the very first line (``python3 -m venv .venv``) while every other
test passed. This test clones the repository's committed state into a temporary folder and runs
the first shell block of the README's "Set-up" section line by line in one shell (so the
activated virtual environment carries over), recording each line's status: a failing first
command in an ``a && b`` line cannot hide behind ``set -e``. It installs from the package
registries, as a new user does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def setup_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Set-up") :]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "the README's Set-up section has no shell block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_setup_block_creates_the_venv_then_installs_and_runs_the_demo() -> None:
    lines = setup_lines()
    assert lines[0].startswith("python3 -m venv .venv"), lines
    assert any("channel demo" in line for line in lines), lines


def test_readme_setup_lines_run_in_a_fresh_clone(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    status_file = tmp_path / "status"
    script = []
    for number, line in enumerate(setup_lines(), start=1):
        script += [line, f'echo "{number} $?" >> {status_file}', f'tail -1 {status_file} | grep -q " 0$" || exit 1']
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "CHANNEL_DB")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".tox" not in p)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    statuses = status_file.read_text().split("\n") if status_file.exists() else []
    report = f"line statuses {statuses}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, report
    assert [s.split()[1] for s in statuses if s] == ["0"] * len(setup_lines()), report
    assert "shipped" in done.stdout.lower() or "sent" in done.stdout.lower(), report
