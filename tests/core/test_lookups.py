"""LookupCache: answers kept per store and credentials for a while, never keyed by a secret."""

from __future__ import annotations

from channel_core.lookups import KeptLookups, LookupCache, keep_lookups, lookup_key


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


def test_answers_kept_by_the_host_serve_a_process_that_has_none_and_come_back_changed() -> None:
    """A fleet worker meets a store it never saw (or forgot): the answers its host kept with the store serve,
    aged on the host's clock (not this machine's); what it asked or forgot goes back, nothing older than a day."""
    clock, host = Clock(), {"k": {"states": [1000.0, ["A", "B"]], "account": [400.0, "acct-1"]}}
    kept = KeptLookups(host, now=1030.0, clock=clock)  # read when the host's clock said 1030
    cache = LookupCache(clock=clock)
    with keep_lookups(kept):
        assert cache.get("k", "states", 60, lambda: ["asked"]) == ["A", "B"]  # 30 s old on the host's clock
        assert cache.get("k", "account", 60, lambda: "asked") == "asked"  # 630 s old: asked again
        clock.now = 20.0
        assert cache.get("k", "states", 60, lambda: ["asked"]) == ["A", "B"]  # now 50 s old, from memory
    assert kept.changed
    assert kept.saved() == {"k": {"states": [1000.0, ["A", "B"]], "account": [1030.0, "asked"]}}
    with keep_lookups(kept):
        cache.put("k", "states", ["A", "B", "C"])  # a list asked again because it proved out of date
        cache.put("k", "object", object())  # not plain data: kept by the process only
    assert kept.saved()["k"]["states"] == [1050.0, ["A", "B", "C"]] and "object" not in kept.saved()["k"]
    with keep_lookups(kept):
        cache.forget("k")
    assert kept.saved() == {}
    old = KeptLookups({"k": {"states": [0.0, []]}, "broken": {"x": "not a pair"}}, now=90_000.0, clock=clock)
    assert old.saved() == {} and not old.changed  # past a day: dropped when written back
    for unreadable in (["a", "list"], {"k": ["not", "a", "table"]}, {"k": {"states": [True, 1]}}, "text"):
        assert KeptLookups(unreadable, now=1.0, clock=clock).age("k", "states") is None  # not kept: asked


def test_without_a_host_nothing_is_noted_and_ttl_zero_never_reads_the_host() -> None:
    clock = Clock()
    kept = KeptLookups({"k": {"states": [0.0, "kept"]}}, now=1.0, clock=clock)
    cache = LookupCache(clock=clock)
    assert cache.get("k", "states", 60, lambda: "asked") == "asked"  # no keep_lookups: the host is not read
    with keep_lookups(kept):
        assert cache.get("k", "states", 0, lambda: "asked again") == "asked again"
    assert not kept.changed
