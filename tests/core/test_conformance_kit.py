"""The conformance kit fails deliberately broken plugins with messages that say what to fix."""

from __future__ import annotations

import pytest

BROKEN_PLUGIN = '''
from datetime import datetime, UTC
from decimal import Decimal
import structlog
from channel_core import (Address, Capabilities, ChannelInfo, Connection, LineItem, NotificationResult,
    NotificationStatus, Order, OrderPage, OrderStatus, Secret, SettingSpec, StatusMapping, hookimpl)

MODE = "{mode}"
MAPPING = {{OrderStatus.AWAITING_SHIPMENT: ("open",)}}
log = structlog.get_logger()


class Naive(datetime):
    """A datetime subclass that pretends to be aware but is not UTC."""


@hookimpl
def channel_info():
    return ChannelInfo("broken", "Broken", "0", (SettingSpec("token", required=True, secret=True),),
                       Capabilities((), ("tracking_number",), ()), MAPPING)


@hookimpl
def connect(settings):
    token = settings["token"]
    if MODE == "leak":
        log.info("connecting", credentials=str(token))
    if token != "good-Tok3n":
        from channel_core import AuthenticationError
        raise AuthenticationError("bad token")
    return Connection(channel="broken", account_id="b", status_mapping=StatusMapping.merged(MAPPING))


@hookimpl
def fetch_orders(connection, query):
    from datetime import timezone, timedelta
    tz = timezone(timedelta(hours=2)) if MODE == "naive" else UTC
    when = datetime(2026, 1, 1, tzinfo=UTC)
    order = Order(channel="broken", order_id="1", order_number="1", status=OrderStatus.AWAITING_SHIPMENT,
                  channel_status="open", created_at=when, modified_at=when,
                  ship_to=Address(line1="1 rue", city="Paris", postal_code="75001"),
                  items=(LineItem("1", "S", "Thing", 1, Decimal("1.00")),))
    if MODE == "naive":
        object.__setattr__(order, "created_at", datetime(2026, 1, 1, 12, 0))
    orders = (order,) if query.modified_since <= when else ()
    return iter([OrderPage(orders=orders)])


@hookimpl
def map_status(connection, channel_status):
    return connection.status_mapping.status_for(channel_status)


SENT = set()


@hookimpl
def notify_shipment(connection, shipment):
    if MODE != "twice" and shipment.order_id in SENT:
        return NotificationResult(NotificationStatus.ALREADY_SENT)
    SENT.add(shipment.order_id)
    return NotificationResult(NotificationStatus.SENT, ("tracking_number",))
'''

TEST_FILE = """
import pytest
import broken_plugin
from channel_core import Channels, Shipment
from channel_core.testing import ChannelContract


class TestBroken(ChannelContract):
    channel_name = "broken"

    @pytest.fixture
    def channel(self):
        return Channels.from_plugins({"broken": broken_plugin})["broken"]

    @pytest.fixture
    def channel_settings(self):
        return {"token": "good-Tok3n"}

    @pytest.fixture
    def bad_settings(self):
        return {"token": "bad-Tok3n"}

    @pytest.fixture
    def secret_values(self):
        return ["good-Tok3n", "bad-Tok3n"]

    @pytest.fixture
    def shipment(self):
        return Shipment(order_id="1", tracking_number="T", carrier="DPD")
"""

CHECKS = (
    "test_hooks_match_the_specs or test_channel_info_is_consistent or test_connect_rejects_bad_credentials "
    "or test_fetch_orders_streams_valid_canonical_orders or test_future_window_yields_nothing "
    "or test_map_status_maps_every_default_code_and_reports_unknown_ones "
    "or test_notify_shipment_is_idempotent_and_declares_what_it_sends or test_no_secret_in_logs_reprs_or_errors"
)


def run_kit(pytester: pytest.Pytester, mode: str) -> pytest.RunResult:
    pytester.makepyfile(broken_plugin=BROKEN_PLUGIN.format(mode=mode), test_broken=TEST_FILE)
    return pytester.runpytest_subprocess("-k", CHECKS, "-p", "no:cacheprovider")


def test_a_correct_plugin_passes_every_check(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "correct")
    result.assert_outcomes(passed=8)


def test_naive_datetimes_fail_with_a_fix_message(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "naive")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["*created_at must be an aware UTC datetime*"])


def test_non_idempotent_notify_fails_with_a_fix_message(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "twice")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["*must return already_sent (read the store's state before writing)*"])


def test_leaked_token_fails_with_a_fix_message(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "leak")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["*wrap it in channel_core.Secret*"])
