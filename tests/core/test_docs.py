"""The hook reference stays in step with the hook specs."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

from channel_core import hookspecs
from channel_core.registry import HOOK_NAMES, OPTIONAL_HOOK_NAMES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def spec_functions() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, "channel_core_spec")
    }


def test_every_hook_spec_is_registered_by_the_registry() -> None:
    assert set(spec_functions()) == {*HOOK_NAMES, *OPTIONAL_HOOK_NAMES}


def test_every_hook_has_a_reference_section_with_its_signature() -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    headings = dict(re.findall(r"^## (\w+)\(([^)]*)\)$", text, flags=re.MULTILINE))
    for name, signature in spec_functions().items():
        assert name in headings, f"docs/hooks.md has no section for hook {name}"
        documented = [a.strip() for a in headings[name].split(",") if a.strip()]
        assert documented == list(signature.parameters), f"docs/hooks.md documents {name}({', '.join(documented)})"
    assert set(headings) <= set(spec_functions()), "docs/hooks.md documents a hook that does not exist"


def test_hook_specs_are_documented_like_pytest() -> None:
    for name, fn in vars(hookspecs).items():
        if inspect.isfunction(fn) and hasattr(fn, "channel_core_spec"):
            doc = inspect.getdoc(fn) or ""
            assert ":returns:" in doc or "Returns" in doc, name


def test_tutorial_files_match_the_example_channel() -> None:
    text = (DOCS / "writing-a-channel.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", text, flags=re.DOTALL)
    example = DOCS.parent / "examples" / "channel-csvstore"
    assert {path for path, _ in blocks} >= {
        "pyproject.toml",
        "src/channel_csvstore/plugin.py",
        "tests/test_conformance.py",
    }
    for path, body in blocks:
        assert body == (example / path).read_text(encoding="utf-8"), f"docs/writing-a-channel.md: {path} is stale"


def test_tutorial_steps_run_in_order_as_a_reader_pastes_them() -> None:
    text = (DOCS / "writing-a-channel.md").read_text(encoding="utf-8")
    steps = text[text.index("## 2.") : text.index("## 6.")]
    code = "\n".join(re.findall(r"```python\n(.*?)```", steps, flags=re.DOTALL))
    namespace: dict[str, object] = {"__name__": "tutorial_steps"}
    exec(compile(code, "writing-a-channel.md (steps 2-5)", "exec"), namespace)
    for hook in ("channel_info", "connect", "fetch_orders", "map_status", "notify_shipment"):
        assert callable(namespace[hook]), hook
    info = namespace["channel_info"]()  # type: ignore[operator]
    assert type(info).__name__ == "ChannelInfo" and info.name == "csvstore"


def test_readme_python_runs_as_written_against_the_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "orders imported" in printed and "sent" in printed


MARKER = re.compile(r"<!-- (file|excerpt|tested): (\S+) -->\n```python\n(.*?)```\n", flags=re.DOTALL)
PAGES = [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_block_runs_in_a_test_or_is_an_excerpt_of_a_named_file(page: Path) -> None:
    """Each block is preceded by ``<!-- file: P -->`` (the whole file of the tutorial's appendix),
    ``<!-- excerpt: P -->`` (lines copied from P, checked here) or ``<!-- tested: FILE::TEST -->``
    (a test that runs it)."""
    text = page.read_text(encoding="utf-8")
    blocks = text.count("```python\n")
    marked = MARKER.findall(text)
    assert len(marked) == blocks, f"{page.name}: a python block has no file/excerpt/tested marker"
    root = DOCS.parent
    for kind, where, body in marked:
        if kind == "excerpt":
            assert body.strip() in (root / where).read_text(encoding="utf-8"), f"{page.name}: excerpt of {where}"
        elif kind == "tested":
            path, _, test = where.partition("::")
            assert f"def {test}(" in (root / path).read_text(encoding="utf-8"), f"{page.name}: no test {where}"
        else:
            assert (root / "examples" / "channel-csvstore" / where).is_file(), where


def test_cassettes_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / "cassettes.md").read_text(encoding="utf-8")
    block = next(body for kind, where, body in MARKER.findall(text) if where.endswith("test_cassettes_example_runs"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "cassettes_doc"}
    exec(compile(block, "cassettes.md", "exec"), namespace)
    assert namespace["recorder"] is not None


def test_readme_configuration_runs_clean_against_the_sandbox(tmp_path: Path) -> None:
    """The README's example channel.toml connects to the sandbox without a warning."""
    import subprocess
    import sys

    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    config = re.search(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    assert config is not None
    (tmp_path / "channel.toml").write_text(config.group(1), encoding="utf-8")
    with SandboxServer(SandboxConfig(count=10, timezone="Europe/Paris")) as sandbox:
        env = {"PATH": os.environ.get("PATH", ""), "OXATIS_TOKEN": sandbox.config.token,
               "OXATIS_BASE_URL": sandbox.url, "COLUMNS": "200"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "channel_core", "connect", "oxatis"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line and "load_failed" not in line]
    assert not warnings, done.stderr  # (the test suite's deliberately broken plugins warn at discovery)
    assert re.search(r"shipped_code\s+SST-SHIPPED\s+file", done.stdout), done.stdout
