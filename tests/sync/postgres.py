"""PostgreSQL for the tests: the throwaway cluster's DSN (required in CI), and fresh databases on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def postgres_dsn() -> str:
    """``CHANNEL_TEST_POSTGRES_DSN``; a skip without it, a failure where ``CHANNEL_REQUIRE_POSTGRES=1`` (CI)."""
    dsn = os.environ.get("CHANNEL_TEST_POSTGRES_DSN")
    if not dsn:
        if os.environ.get("CHANNEL_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required here but CHANNEL_TEST_POSTGRES_DSN is not set")
        pytest.skip("no PostgreSQL: set CHANNEL_TEST_POSTGRES_DSN (scripts/throwaway-postgres start)")
    return dsn


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the test cluster; dropped afterwards. Yields its DSN."""
    import psycopg

    dsn = postgres_dsn()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
