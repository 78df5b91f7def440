"""The public API is exactly what ``channel_core.__all__`` lists, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import channel_core

HELPERS = {"importlib", "TYPE_CHECKING", "Any"}  # used by the lazy loader, not part of the API


def test_all_lists_every_public_name() -> None:
    public = {name for name in dir(channel_core) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(channel_core, name)).__name__ == "module"}
    assert set(channel_core.__all__) == (public - modules - HELPERS) | {"__version__"}
    for name in channel_core.__all__:
        assert getattr(channel_core, name) is not None, name


def test_importing_the_library_loads_no_http_stack_no_console_and_no_sandbox() -> None:
    probe = (
        "import sys, channel_core, channel_core.sync\n"
        "heavy = [m for m in ('httpx', 'rich', 'channel_oxatis', 'channel_oxatis.sandbox') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
        "channel_core.HttpClient\n"
        "print('httpx' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert done.stdout.splitlines() == ["", "True"]


def test_the_help_lists_every_command_with_the_first_line_of_its_own_help() -> None:
    import click

    from channel_core.cli.app import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, name
        assert short.rstrip(".").split(" ")[0].lower() in (command.help or "").lower(), (name, short)
