"""LookupCache: answers kept per store and credentials for a while, never keyed by a secret."""

from __future__ import annotations

from channel_core.lookups import LookupCache, lookup_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_kept_for_its_ttl_then_asked_again() -> None:
    clock, asked = Clock(), []
    cache = LookupCache(clock=clock)

    def ask() -> int:
        asked.append(clock.now)
        return len(asked)

    assert cache.get("k", "states", 60, ask) == 1
    clock.now = 59.0
    assert cache.get("k", "states", 60, ask) == 1
    assert cache.get("k", "account", 60, ask) == 2  # another question about the same store
    clock.now = 61.0
    assert cache.get("k", "states", 60, ask) == 3
    assert cache.get("other", "states", 60, ask) == 4
    assert cache.get("k", "states", 0, ask) == 5  # ttl 0: always asked
    cache.forget("k")
    assert cache.get("k", "states", 60, ask) == 6 and cache.get("k", "account", 60, ask) == 7


def test_the_oldest_entries_go_first_past_the_size() -> None:
    cache = LookupCache(size=2)
    for key in "abc":
        cache.get(key, "x", 60, str(key).upper)
    assert cache.get("a", "x", 60, lambda: "asked again") == "asked again"
    assert cache.get("c", "x", 60, lambda: "asked again") == "C"


def test_keys_hold_no_secret_and_differ_with_the_credentials() -> None:
    key = lookup_key("https://shop.example", "s3cret-token", None)
    assert "s3cret" not in key and len(key) == 64
    assert key != lookup_key("https://shop.example", "other-token", None)
    assert key == lookup_key("https://shop.example", "s3cret-token", None)
