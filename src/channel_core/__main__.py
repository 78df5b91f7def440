"""``python -m channel_core``: the ``channel`` command."""

from channel_core.cli.app import main

main()
