"""The store registry: the merchants' stores a host syncs, when each is due, and which are parked.

One row per store in the ``stores`` table of :class:`~channel_core.sync.postgres.PostgresStore`'s
schema. A row holds the channel, its non-secret settings, a *reference* to the credentials
(resolved by :mod:`channel_core.fleet.credentials` when a sync runs), the sync interval, the
next run, and the time of day the store's daily quota resets. Every time is PostgreSQL's own
clock (``now()``), the one clock all workers share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import ChannelInfo
from channel_core.lookups import KeptLookups
from channel_core.secret import Secret
from channel_core.sync.postgres import PostgresStore

__all__ = ["RegisteredStore", "StoreRegistry", "StoreState", "check_reference", "next_quota_reset"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_COLUMNS = (
    "store_key, channel, settings, credentials, every_seconds, next_run, requests_per_second, "
    "quota_reset, quota_timezone, parked_until, parked_reason, account_id, last_run_at"
)
MIN_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RegisteredStore:
    """One connected store, as the registry keeps it: nothing secret.

    :ivar key: the host's name for the store, unique in the registry.
    :ivar credentials: a reference the host's resolver understands (``env:ACME`` by default).
    :ivar requests_per_second: the account's rate budget shared by every worker; ``None``: none.
    :ivar quota_reset: when the daily quota resets, as a time of day in ``quota_timezone``.
    :ivar account_id: the store's account, known after its first sync.
    :ivar lookups: what its channel asked at connect, kept on the row for the next job (read by :meth:`get`
        only; :meth:`StoreRegistry.finished` writes it back when the job changed it).
    """

    key: str
    channel: str
    settings: Mapping[str, Any]
    credentials: str
    every: timedelta
    next_run: datetime
    requests_per_second: float | None = None
    quota_reset: time = time(0, 0)
    quota_timezone: str = "UTC"
    parked_until: datetime | None = None
    parked_reason: str | None = None
    account_id: str | None = None
    last_run_at: datetime | None = None
    lookups: KeptLookups | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``channel stores list --json`` prints it (nothing secret to leave out)."""
        return {
            "key": self.key,
            "channel": self.channel,
            "settings": dict(self.settings),
            "credentials": self.credentials,
            "every_seconds": self.every.total_seconds(),
            "next_run": self.next_run.isoformat(),
            "requests_per_second": self.requests_per_second,
            "quota_reset": self.quota_reset.isoformat("minutes"),
            "quota_timezone": self.quota_timezone,
            "parked_until": self.parked_until.isoformat() if self.parked_until else None,
            "parked_reason": self.parked_reason,
            "account_id": self.account_id,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
        }

    @classmethod
    def _from_row(cls, row: Sequence[Any], lookups: KeptLookups | None = None) -> RegisteredStore:
        return cls(
            key=row[0],
            channel=row[1],
            settings=dict(row[2]),
            credentials=row[3],
            every=timedelta(seconds=row[4]),
            next_run=row[5],
            requests_per_second=row[6],
            quota_reset=time.fromisoformat(row[7]),
            quota_timezone=row[8],
            parked_until=row[9],
            parked_reason=row[10],
            account_id=row[11],
            last_run_at=row[12],
            lookups=lookups,
        )


@dataclass(frozen=True, slots=True)
class StoreState:
    """What ``channel status`` shows for one store."""

    store: RegisteredStore
    last_run: datetime | None
    last_stopped: str | None
    last_error: str | None
    orders: int
    failed_orders: int
    pending_notifications: int
    failed_notifications: int
    store_time_unknown: bool = False  # the last run's store reported no clock: its promise did not move

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``channel status --json`` prints it."""
        store = self.store.as_dict()
        return {
            **{k: store[k] for k in ("key", "channel", "account_id", "next_run", "parked_until", "parked_reason")},
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_stopped": self.last_stopped,
            "last_error": self.last_error,
            "orders": self.orders,
            "failed_orders": self.failed_orders,
            "pending_notifications": self.pending_notifications,
            "failed_notifications": self.failed_notifications,
            "store_time_unknown": self.store_time_unknown,
        }


def next_quota_reset(now: datetime, reset: time, timezone: str) -> datetime:
    """The first instant after ``now`` at which the wall clock of ``timezone`` reads ``reset`` (UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), reset, tzinfo=zone)
    while candidate.astimezone(UTC) <= now.astimezone(UTC):
        candidate = datetime.combine(candidate.date() + timedelta(days=1), reset, tzinfo=zone)
    return candidate.astimezone(UTC)


_ENV_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_REFERENCE = re.compile(r"^([a-z][a-z0-9+.-]{0,31}):(\S{1,200})$")


def check_reference(key: str, credentials: str, schemes: Sequence[str]) -> None:
    """Refuse a credentials value that is not ``SCHEME:NAME`` for a known scheme (``env:PREFIX``).

    The value itself is never echoed: it may be a token pasted by mistake.
    """
    known = ", ".join(f"{scheme}:NAME" for scheme in schemes)
    match = _REFERENCE.match(credentials.strip())
    if match is None or match.group(1) not in schemes:
        raise ConfigurationError(
            f"store {key}: --credentials must be a reference ({known}), not a secret; the value given is not "
            "shown. With env:ACME the worker reads ACME_TOKEN (and the channel's other secrets) when a sync runs"
        )
    if match.group(1) == "env" and not _ENV_PREFIX.match(match.group(2)):
        raise ConfigurationError(
            f"store {key}: env:PREFIX needs a variable name prefix (letters, digits, '_'); the value is not shown"
        )


def _check_settings(info: ChannelInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
    known = {spec.name: spec for spec in info.settings}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown {info.name} setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    secret = sorted(name for name in settings if known[name].secret or isinstance(settings[name], Secret))
    if secret:
        raise ConfigurationError(
            f"{', '.join(secret)} is secret and never goes into the registry: give the store a credentials "
            "reference instead (env:PREFIX reads PREFIX_" + secret[0].upper() + " when the sync runs)"
        )
    try:
        return dict(json.loads(json.dumps(dict(settings))))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"store settings must be plain values: {exc}") from None


class StoreRegistry:
    """The ``stores`` table: add, list and remove stores; hand due stores to the scheduler.

    :param db: the :class:`PostgresStore` whose schema holds the registry (its connection is shared).
    :param schemes: the credential reference schemes the host's resolver understands (``env`` for the
        default :func:`~channel_core.fleet.credentials.environment_credentials`); a reference in any other
        shape is refused, so a raw secret pasted in its place is never stored or echoed.
    """

    def __init__(self, db: PostgresStore, *, schemes: Sequence[str] = ("env", "file")) -> None:
        self.db = db
        self.schemes = tuple(schemes)

    def add(
        self,
        key: str,
        info: ChannelInfo,
        *,
        settings: Mapping[str, Any],
        credentials: str,
        every: timedelta,
        requests_per_second: float | None = None,
        quota_reset: str = "00:00",
        quota_timezone: str | None = None,
        replace: bool = False,
    ) -> RegisteredStore:
        """Register a store, due at once. Refuses secrets in ``settings`` and a key already taken
        (unless ``replace``, which keeps its schedule and unpins its account: the next sync pins the
        account its credentials open, the only way a registered store may change merchant).

        :param quota_timezone: the zone of ``quota_reset``; default the store's own ``store_timezone``
            setting when it has one, else UTC.
        """
        quota_timezone = quota_timezone or str(settings.get("store_timezone") or "UTC")
        if not _KEY.match(key):
            raise ConfigurationError(
                f"store key {key!r}: use 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
            )
        plain = _check_settings(info, settings)
        check_reference(key, credentials, self.schemes)
        if every < MIN_INTERVAL:
            raise ConfigurationError(f"store {key}: the sync interval must be at least 1 second, got {every}")
        if requests_per_second is not None and not requests_per_second > 0:
            raise ConfigurationError(f"store {key}: requests per second must be positive, got {requests_per_second}")
        try:
            reset = time.fromisoformat(quota_reset)
        except ValueError:
            raise ConfigurationError(f"store {key}: quota reset {quota_reset!r} is not a time of day (HH:MM)") from None
        try:
            ZoneInfo(quota_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"store {key}: unknown time zone {quota_timezone!r}") from None
        values = (
            key,
            info.name,
            json.dumps(plain),
            credentials.strip(),
            every.total_seconds(),
            requests_per_second,
            reset.isoformat("minutes"),
            quota_timezone,
        )
        conflict = (
            "DO UPDATE SET channel=EXCLUDED.channel, settings=EXCLUDED.settings, credentials=EXCLUDED.credentials, "
            "every_seconds=EXCLUDED.every_seconds, requests_per_second=EXCLUDED.requests_per_second, "
            "quota_reset=EXCLUDED.quota_reset, quota_timezone=EXCLUDED.quota_timezone, account_id=NULL"
            if replace
            else "DO NOTHING"
        )
        rows = self.db.execute(
            "INSERT INTO stores (store_key, channel, settings, credentials, every_seconds, next_run, "  # noqa: S608
            "requests_per_second, quota_reset, quota_timezone, created_at) "
            f"VALUES (%s,%s,%s::jsonb,%s,%s,now(),%s,%s,%s,now()) ON CONFLICT (store_key) {conflict} "
            f"RETURNING {_COLUMNS}",
            values,
        )
        if not rows:
            raise ConfigurationError(
                f"store {key} is already registered: pass --replace to replace it, "
                f"or `channel stores remove {key}` first"
            )
        return RegisteredStore._from_row(rows[0])

    def remove(self, key: str) -> bool:
        """Forget a store (its orders and history stay); ``False`` when it was not registered."""
        return bool(self.db.execute("DELETE FROM stores WHERE store_key=%s RETURNING store_key", (key,)))

    def get(self, key: str) -> RegisteredStore | None:
        """The store ``key``, with the lookups its jobs keep (``None`` when not registered)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS}, lookups, extract(epoch FROM now())::float8 FROM stores WHERE store_key=%s",  # noqa: S608
            (key,),
        )
        if not rows:
            return None
        *row, saved, now = rows[0]
        return RegisteredStore._from_row(row, KeptLookups(saved, now=now))

    def stores(self) -> list[RegisteredStore]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM stores ORDER BY 1")  # noqa: S608 - constant columns
        return [RegisteredStore._from_row(row) for row in rows]

    def claim_due(self, limit: int = 500) -> list[str]:
        """The stores due now, each moved to its next run in the same statement (so two schedulers
        never hand out one store twice); parked stores wait for their reset time."""
        rows = self.db.execute(
            "UPDATE stores SET next_run = now() + make_interval(secs => every_seconds) WHERE store_key IN ("
            "  SELECT store_key FROM stores WHERE next_run <= now() AND (parked_until IS NULL OR parked_until <= now())"
            "  ORDER BY next_run LIMIT %s FOR UPDATE SKIP LOCKED"
            ") RETURNING store_key",
            (limit,),
        )
        return sorted(row[0] for row in rows)

    def summary(self, channel: str | None = None) -> dict[str, Any]:
        """Totals over every store (or one channel's): one pass over ``stores``, whatever their number.

        ``overdue``: stores not parked whose last run (or registration) is older than three of their intervals.
        """
        rows = self.db.execute(
            "SELECT count(*), "
            "count(*) FILTER (WHERE next_run <= now() AND (parked_until IS NULL OR parked_until <= now())), "
            "count(*) FILTER (WHERE parked_until > now()), "
            "count(*) FILTER (WHERE last_stopped IS NOT NULL AND last_stopped <> 'interrupted'), "
            "count(*) FILTER (WHERE last_run_at IS NULL), "
            "coalesce(extract(epoch FROM now() - min(next_run) FILTER (WHERE next_run <= now() "
            "AND (parked_until IS NULL OR parked_until <= now()))), 0)::float8, "
            "count(*) FILTER (WHERE coalesce(last_run_at, created_at) "
            "< now() - make_interval(secs => 3 * every_seconds) AND (parked_until IS NULL OR parked_until <= now())) "
            "FROM stores WHERE %s::text IS NULL OR channel = %s",
            (channel, channel),
        )
        total, due, parked_count, failing_count, never, lag, overdue = rows[0]
        return {
            "stores": int(total),
            "due": int(due),
            "parked": int(parked_count),
            "failing": int(failing_count),
            "never_synced": int(never),
            "overdue": int(overdue),
            "scheduling_lag_seconds": round(max(0.0, float(lag)), 3),
        }

    def scheduling_lag(self) -> float:
        """How late the most overdue store is, in seconds (``now - next_run`` of the oldest due, unparked store;
        0 when none is due): with enough workers it stays within one scheduler tick."""
        rows = self.db.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(next_run)), 0)::float8 FROM stores "
            "WHERE next_run <= now() AND (parked_until IS NULL OR parked_until <= now())"
        )
        return max(0.0, float(rows[0][0])) if rows else 0.0

    def run_now(self, key: str) -> bool:
        """Make a store due at once and lift its parking (an operator's ``channel stores run``)."""
        rows = self.db.execute(
            "UPDATE stores SET next_run=now(), parked_until=NULL, parked_reason=NULL WHERE store_key=%s "
            "RETURNING store_key",
            (key,),
        )
        return bool(rows)

    def finished(
        self,
        store: RegisteredStore | str,
        account_id: str,
        stopped: str | None,
        error: str | None = None,
        *,
        run: Mapping[str, Any] | None = None,
    ) -> None:
        """Note a finished sync, and keep ``run`` (its summary) in the history in the same statement.

        A quota stop parks the store until its quota resets. ``store``: the registered store as the job read
        it, or its key (read again).
        """
        if isinstance(store, str):
            found = self.get(store)
            if found is None:  # removed while it ran
                return
            store = found
        history = (
            "WITH run AS (INSERT INTO sync_runs (channel, account_id, store_key, finished_at, stopped, summary) "
            "SELECT channel, %(account)s, store_key, clock_timestamp(), %(stopped)s, %(summary)s::jsonb "
            "FROM stores WHERE store_key = %(key)s) "
            if run is not None
            else ""
        )
        params: dict[str, Any] = {
            "account": account_id,
            "stopped": stopped,
            "error": error,
            "key": store.key,
            "summary": json.dumps(run, default=str) if run is not None else None,
        }
        kept = store.lookups
        lookups = ""
        if kept is not None and kept.changed:  # what the job asked or forgot at connect, for the next job
            lookups, params["lookups"] = "lookups=%(lookups)s::jsonb, ", json.dumps(kept.saved())
        if stopped == "quota":
            now = self.db.execute("SELECT now()")[0][0]
            params["until"] = next_quota_reset(now, store.quota_reset, store.quota_timezone)
            params["reason"] = error or "daily quota spent"
            self.db.execute(
                f"{history}UPDATE stores SET {lookups}account_id=coalesce(nullif(%(account)s, ''), account_id), "  # noqa: S608
                "last_run_at=now(), parked_until=%(until)s, parked_reason=%(reason)s, last_stopped=%(stopped)s, "
                "last_error=%(error)s, next_run=greatest(next_run, %(until)s) WHERE store_key=%(key)s",
                params,
            )
            return
        self.db.execute(  # a sync that got through lifts a quota parking, and the schedule it pushed back
            f"{history}UPDATE stores SET {lookups}account_id=coalesce(nullif(%(account)s, ''), account_id), "  # noqa: S608
            "last_run_at=now(), next_run=CASE WHEN parked_until IS NULL THEN next_run "
            "ELSE least(next_run, now() + every_seconds * interval '1 second') END, "
            "parked_until=NULL, parked_reason=NULL, last_stopped=%(stopped)s, last_error=%(error)s "
            "WHERE store_key=%(key)s",
            params,
        )

    def states(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        failing: bool = False,
        parked: bool = False,
        channel: str | None = None,
        worst_first: bool = False,
    ) -> list[StoreState]:
        """Stores with their last run, orders, failed orders and notifications still to send.

        :param limit: at most this many (a page, from ``offset``); ``None``: every store.
        :param failing: only stores whose last run stopped (not an interruption); ``parked``: only parked ones.
        :param worst_first: failing first, then parked, then the most overdue; else by key.
        """
        where = ["true"]
        params: list[Any] = []
        if failing:
            where.append("s.last_stopped IS NOT NULL AND s.last_stopped <> 'interrupted'")
        if parked:
            where.append("s.parked_until > now()")
        if channel is not None:
            where.append("s.channel = %s")
            params.append(channel)
        order = (
            "(s.last_stopped IS NOT NULL AND s.last_stopped <> 'interrupted') DESC, "
            "(s.parked_until IS NOT NULL AND s.parked_until > now()) DESC, s.next_run, s.store_key"
            if worst_first
            else "s.store_key"
        )
        page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        rows = self.db.execute(
            f"SELECT {', '.join('s.' + c.strip() for c in _COLUMNS.split(','))}, "  # noqa: S608 - constants
            "last.finished_at, last.stopped, last.summary->>'stop_error', "
            "coalesce((last.summary->>'store_time_unknown')::boolean, false), "
            "(SELECT count(*) FROM orders o WHERE o.channel = s.channel AND o.account_id = s.account_id), "
            "(SELECT count(*) FROM failed f WHERE f.channel = s.channel AND f.account_id = s.account_id), "
            "(SELECT count(*) FROM notifications n WHERE n.channel = s.channel AND n.account_id = s.account_id "
            " AND n.status = 'pending'), "
            "(SELECT count(*) FROM notifications n WHERE n.channel = s.channel AND n.account_id = s.account_id "
            " AND n.status IN ('failed', 'parked')) "
            f"FROM (SELECT * FROM stores s WHERE {' AND '.join(where)} ORDER BY {order} {page}) s "
            "LEFT JOIN LATERAL (SELECT finished_at, stopped, summary FROM sync_runs r "
            " WHERE r.store_key = s.store_key ORDER BY finished_at DESC, id DESC LIMIT 1) last ON true "
            f"ORDER BY {order}",
            params,
        )
        width = len(_COLUMNS.split(","))
        return [
            StoreState(
                RegisteredStore._from_row(row[:width]),
                row[width],
                row[width + 1],
                row[width + 2],
                int(row[width + 4]),
                int(row[width + 5]),
                int(row[width + 6]),
                int(row[width + 7]),
                store_time_unknown=bool(row[width + 3]),
            )
            for row in rows
        ]
