"""The public API is exactly what ``channel_core.__all__`` lists."""

from __future__ import annotations

import channel_core


def test_all_lists_every_public_name() -> None:
    public = {name for name in vars(channel_core) if not name.startswith("_")}
    modules = {name for name, value in vars(channel_core).items() if type(value).__name__ == "module"}
    assert set(channel_core.__all__) == (public - modules) | {"__version__"}
