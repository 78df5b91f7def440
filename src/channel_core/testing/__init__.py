"""Test helpers for channel authors: cassette configuration and the pytest plugin's fixtures."""

from channel_core.testing.cassettes import build_vcr, cassette_config, datetimes_normalized, form_body_matcher

__all__ = ["build_vcr", "cassette_config", "datetimes_normalized", "form_body_matcher"]
