"""Fault switches: which failure the sandbox injects, for which operations, how many times."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "Fault"]

FAULT_KINDS = frozenset(
    {
        "maintenance",  # StatusCode 600
        "quota",  # StatusCode 504
        "unauthorized",  # StatusCode 503
        "html500",  # HTTP 500 with an IIS-like HTML page
        "empty",  # HTTP 200 with an empty body
        "no_data",  # StatusCode 200 with no Data element (a transient blank reply)
        "malformed",  # truncated XML
        "entity_bomb",  # a DTD with nested entities
        "external_entity",  # a DTD with a SYSTEM entity
        "http429",  # HTTP 429 with Retry-After
        "http503",  # HTTP 503 before processing
        "reset",  # close the connection without replying
        "slow",  # wait ``delay`` seconds before processing
        "slow_after_apply",  # process (writes applied), then wait ``delay`` seconds before replying
    }
)


@dataclass
class Fault:
    """Make ``times`` matching calls fail as ``kind`` (``times=-1``: every call), after skipping ``after``."""

    kind: str
    times: int = 1
    methods: frozenset[str] | None = None
    after: int = 0
    delay: float = 0.0
    retry_after: int = 1
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        if self.methods is not None:
            self.methods = frozenset(self.methods)

    def take(self, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times < 0 or self.seen - self.after <= self.times
