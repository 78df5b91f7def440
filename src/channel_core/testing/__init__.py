"""Test helpers for channel authors: the conformance kit and cassette configuration.

Needs pytest (``pip install channel-integrations[test]``). The pytest plugin
registered under ``pytest11`` adds fixtures only; nothing runs unless you
subclass :class:`ChannelContract`.
"""

import pytest

pytest.register_assert_rewrite("channel_core.testing.contract")

from channel_core.testing.cassettes import (  # noqa: E402
    build_vcr,
    cassette_config,
    datetimes_normalized,
    form_body_matcher,
)
from channel_core.testing.contract import ChannelContract  # noqa: E402

__all__ = ["ChannelContract", "build_vcr", "cassette_config", "datetimes_normalized", "form_body_matcher"]
