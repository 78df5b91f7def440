"""Generated and mutated Oxatis replies fed to the decoder and mapping.

The only acceptable outcomes are a canonical order, a SkippedOrder, or a
PayloadError / ChannelAPIError that names what was wrong; never another exception, never a hang.
"""

from __future__ import annotations

import random
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from channel_core import ChannelAPIError, Order, PayloadError, SkippedOrder, StatusMapping, UnmappedCodes
from channel_oxatis.client import decode_order
from channel_oxatis.mapping import DEFAULT_STATUS_MAPPING, MappingContext, to_order
from channel_oxatis.sandbox import SandboxStore, replies
from channel_oxatis.wire import parse_envelope
from tests.reliability.conftest import REPORT

STORE = SandboxStore(count=60)
CTX = MappingContext(
    tz=zoneinfo.ZoneInfo("Europe/Paris"),
    account_country="FR",
    states_by_id={72802: "SST-SHIPPED", 72803: "PRECOMMANDE"},
    status_mapping=StatusMapping.merged(DEFAULT_STATUS_MAPPING),
    shipped_code="SST-SHIPPED",
    unmapped=UnmappedCodes(),
)
NASTY = [
    "",
    " ",
    "-1",
    "1e400",
    "NaN",
    "abc",
    "0x10",
    "2026-02-30T00:00:00",
    "9999-12-31T23:59:59",
    "true",
    "&amp;",
    "\u00e9\u0301",
    "9" * 40,
    "-0",
    "1.5",
    "<",
    "]]>",
]


def decode(body: bytes) -> Order | SkippedOrder:
    return to_order(decode_order(parse_envelope(body, operation="OrderGetMoreDetails")), CTX)


def check(body: bytes) -> None:
    try:
        result = decode(body)
    except PayloadError as exc:
        assert str(exc)  # names what was wrong
        REPORT.bad_input(crashed=False)
        return
    except ChannelAPIError:
        REPORT.bad_input(crashed=False)
        return
    except Exception:
        REPORT.bad_input(crashed=True)
        raise
    REPORT.bad_input(crashed=False)
    assert isinstance(result, (Order, SkippedOrder))


def mutate(body: bytes, rng: random.Random, operation: str, text: str) -> bytes:
    root = etree.fromstring(body)
    elements = [e for e in root.iter() if e is not root]
    if not elements:
        return body
    target = rng.choice(elements)
    parent = target.getparent()
    if operation == "delete" and parent is not None:
        parent.remove(target)
    elif operation == "retext":
        target.text = text
    elif operation == "duplicate" and parent is not None:
        parent.append(etree.fromstring(etree.tostring(target)))
    elif operation == "rename":
        target.tag = rng.choice(["OxID", "Item", "OrderItems", "Quantity", "Date", "Unknown", "Order"])
    elif operation == "nest":
        etree.SubElement(target, "Quantity").text = text
    return etree.tostring(root)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    operations=st.lists(st.sampled_from(["delete", "retext", "duplicate", "rename", "nest"]), min_size=1, max_size=6),
    text=st.one_of(st.sampled_from(NASTY), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)),
)
def test_mutated_order_replies_never_crash(n: int, seed: int, operations: list[str], text: str) -> None:
    body = replies.envelope(replies.render_order(STORE.order(100000 + n) or {}))
    rng = random.Random(seed)
    for operation in operations:
        body = mutate(body, rng, operation, text)
    check(body)


@settings(max_examples=200, deadline=2000)
@given(n=st.integers(1, 60), cut=st.integers(0, 4000), junk=st.binary(max_size=40))
def test_truncated_and_garbled_bytes_never_crash(n: int, cut: int, junk: bytes) -> None:
    body = replies.envelope(replies.render_order(STORE.order(100000 + n) or {}))
    check(body[:cut] + junk)


@settings(max_examples=100, deadline=2000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    check(body)


def test_hostile_payloads_are_refused_quickly() -> None:
    for body in (replies.ENTITY_BOMB, replies.EXTERNAL_ENTITY, replies.HTML_ERROR_PAGE, replies.MALFORMED, b""):
        check(body)
    billion = (
        b'<?xml version="1.0"?><!DOCTYPE x ['
        + b"".join(
            b'<!ENTITY e%d "&e%d;&e%d;&e%d;&e%d;&e%d;&e%d;&e%d;&e%d;&e%d;&e%d;">' % ((i,) + (i - 1,) * 10)
            for i in range(1, 12)
        )
        + b'<!ENTITY e0 "x">]><DataResultService><StatusCode>200</StatusCode><Data>&e11;</Data></DataResultService>'
    )
    check(billion)


def test_absurd_amounts_are_payload_errors_not_crashes() -> None:
    for field in ("NetPrice", "GrossPrice", "NetAmountDue", "TotalWeight", "Weight", "GlobalDiscountAmount"):
        for value in ("1e400", "-1e400", "1E+13"):
            root = etree.fromstring(replies.envelope(replies.render_order(STORE.order(100037) or {})))
            for element in root.iter(field):
                element.text = value
            check(etree.tostring(root))
