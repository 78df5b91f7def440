"""The README's "Many stores" lines and docs/scaling.md's host example, run as a reader runs them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from tests.sync.postgres import fresh_database, postgres_dsn

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNEL_DB", "SHOP", "OXATIS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this environment's `channel`
    env["COLUMNS"] = "200"
    return env


def test_readme_many_stores_lines_run_from_scratch(tmp_path: Path) -> None:
    postgres_dsn()  # the lines start their own cluster; where the suites cannot run, this says why
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Many stores") : text.index("## Documentation")]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    lines = [line for line in blocks[1].splitlines() if line.strip()]
    assert lines[0].startswith("python3 -m pip install"), lines
    port = str(_free_port())  # the README's 8766 may be taken here
    script: list[str] = []
    status = tmp_path / "status"
    helper = str(ROOT / "scripts" / "throwaway-postgres")
    for number, line in enumerate(lines[1:], start=2):  # the install line: this environment has the extra
        script.append(line.replace("8766", port).replace("scripts/throwaway-postgres", helper))
        script.append(f'echo "{number} $?" >> {status}')
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    report = f"{status.read_text() if status.exists() else ''}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert all(line.endswith(" 0") for line in status.read_text().splitlines()), report
    assert "export SHOP2_TOKEN=sandbox-token-2" in done.stdout, report
    assert re.search(r"sync shop1: completed, 4\d orders", done.stdout), report
    assert re.search(r"sync shop2: completed, 4\d orders", done.stdout), report
    assert re.search(r"shop1 .*completed", done.stdout) and re.search(r"shop2 .*completed", done.stdout), report
    assert "sandbox-token" not in done.stderr, report


def test_scaling_host_example_runs_against_the_sandbox() -> None:
    with fresh_database("host_example") as dsn, SandboxServer(SandboxConfig(count=20)) as sandbox:
        env = {**_env(), "CHANNEL_DB": dsn, "MERCHANT_42_TOKEN": sandbox.config.token,
               "OXATIS_BASE_URL": sandbox.url, "ORDER_ID": "100002"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "fleet-host" / "host.py")],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert sandbox.store.shipped_entries(100002) == 1
        order = sandbox.store.order(100002)
        assert order is not None and order["TrackingNumber"] == "6A123"
