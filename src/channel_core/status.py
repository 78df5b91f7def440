"""Status mapping: channel status codes to canonical :class:`~channel_core.models.OrderStatus`.

A channel ships default mappings; a merchant adds their own (custom statuses
included). Merchant mappings merge with the defaults and never silently replace
them: a merchant code joins the status's list, and a default code is moved only
when the merchant explicitly assigns it to another status. A code that would
belong to two statuses, or an unknown canonical name, is a
:class:`~channel_core.errors.StatusMappingError`.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping

from channel_core.errors import StatusMappingError
from channel_core.models import OrderStatus

__all__ = ["StatusMapping", "UnmappedCodes", "parse_status"]

MappingInput = Mapping[str, "str | Iterable[str]"] | Mapping[OrderStatus, "str | Iterable[str]"]


def parse_status(name: str | OrderStatus) -> OrderStatus:
    """Return the canonical status called ``name``; the error lists the valid names."""
    if isinstance(name, OrderStatus):
        return name
    try:
        return OrderStatus(str(name).strip().lower())
    except ValueError:
        valid = ", ".join(s.value for s in OrderStatus)
        raise StatusMappingError(f"unknown canonical status {name!r} (valid: {valid})") from None


def _codes(value: str | Iterable[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    codes = tuple(str(c).strip() for c in items if str(c).strip())
    return codes


class StatusMapping:
    """An immutable, validated mapping from channel codes to canonical statuses."""

    __slots__ = ("_by_code", "_by_status")

    def __init__(self, by_status: Mapping[OrderStatus, tuple[str, ...]]) -> None:
        by_code: dict[str, OrderStatus] = {}
        for status, codes in by_status.items():
            for code in codes:
                other = by_code.get(code)
                if other is not None and other is not status:
                    raise StatusMappingError(
                        f"channel status {code!r} is mapped to both {other.value!r} and {status.value!r}"
                    )
                by_code[code] = status
        self._by_status = {s: tuple(dict.fromkeys(by_status.get(s, ()))) for s in OrderStatus}
        self._by_code = by_code

    @classmethod
    def from_config(cls, mapping: MappingInput) -> StatusMapping:
        """Build from ``{"shipped": ["SST-SHIPPED"], ...}`` (or a single code per status)."""
        by_status: dict[OrderStatus, tuple[str, ...]] = {}
        for name, value in mapping.items():
            status = parse_status(name)
            by_status[status] = by_status.get(status, ()) + _codes(value)
        return cls(by_status)

    @classmethod
    def merged(cls, defaults: MappingInput, overrides: MappingInput | None = None) -> StatusMapping:
        """Merge merchant ``overrides`` into a channel's ``defaults``.

        Merchant codes come first in each status's list. A default code the
        merchant assigned elsewhere leaves its default status; a code the
        merchant assigned to two statuses is an error. The result is immutable,
        so the same inputs share one (a fleet worker connects a store per job).
        """
        return _merged(_normalized(defaults), _normalized(overrides or {}))

    def status_for(self, code: str | None) -> OrderStatus | None:
        """The canonical status for a channel code, or ``None`` when it is not mapped."""
        if code is None:
            return None
        return self._by_code.get(code)

    def codes_for(self, status: OrderStatus) -> tuple[str, ...]:
        return self._by_status[status]

    def codes(self) -> frozenset[str]:
        return frozenset(self._by_code)

    def as_dict(self) -> dict[str, list[str]]:
        return {s.value: list(codes) for s, codes in self._by_status.items() if codes}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatusMapping) and other._by_code == self._by_code

    def __hash__(self) -> int:
        return hash(frozenset(self._by_code.items()))

    def __repr__(self) -> str:
        return f"StatusMapping({self.as_dict()!r})"


class UnmappedCodes:
    """Counts channel codes that no mapping covers, so they are reported, not guessed."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, code: str) -> None:
        with self._lock:
            self._counts[code] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __bool__(self) -> bool:
        return bool(self._counts)


Normalized = tuple[tuple["str | OrderStatus", tuple[str, ...]], ...]


def _normalized(mapping: MappingInput) -> Normalized:
    return tuple((name, _codes(value)) for name, value in mapping.items())


@functools.lru_cache(maxsize=1024)
def _merged(defaults: Normalized, overrides: Normalized) -> StatusMapping:
    base = StatusMapping.from_config(dict(defaults))
    extra = StatusMapping.from_config(dict(overrides))
    merged: dict[OrderStatus, tuple[str, ...]] = {}
    for status in OrderStatus:
        kept = tuple(c for c in base.codes_for(status) if extra.status_for(c) in (None, status))
        merged[status] = tuple(dict.fromkeys(extra.codes_for(status) + kept))
    return StatusMapping(merged)
