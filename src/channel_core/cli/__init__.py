"""The ``channel`` console script."""

from channel_core.cli.app import cli, main

__all__ = ["cli", "main"]
