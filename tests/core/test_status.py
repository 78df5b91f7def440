from __future__ import annotations

import pytest

from channel_core import OrderStatus, StatusMapping, StatusMappingError

DEFAULTS = {
    "awaiting_payment": ["unpaid"],
    "awaiting_shipment": ["paid"],
    "shipped": ["SST-SHIPPED"],
    "cancelled": ["cancelled"],
    "on_hold": ["on_hold"],
}


def test_merchant_codes_merge_with_defaults() -> None:
    mapping = StatusMapping.merged(DEFAULTS, {"awaiting_shipment": ["PRECOMMANDE", "EN-PREPA"]})
    assert mapping.codes_for(OrderStatus.AWAITING_SHIPMENT) == ("PRECOMMANDE", "EN-PREPA", "paid")
    assert mapping.status_for("paid") is OrderStatus.AWAITING_SHIPMENT
    assert mapping.status_for("SST-SHIPPED") is OrderStatus.SHIPPED


def test_merchant_can_move_a_default_code_explicitly() -> None:
    mapping = StatusMapping.merged(DEFAULTS, {"on_hold": "paid"})
    assert mapping.status_for("paid") is OrderStatus.ON_HOLD
    assert mapping.codes_for(OrderStatus.AWAITING_SHIPMENT) == ()
    assert mapping.codes_for(OrderStatus.ON_HOLD) == ("paid", "on_hold")


def test_unknown_canonical_status_is_rejected_with_valid_names() -> None:
    with pytest.raises(StatusMappingError, match=r"unknown canonical status 'delivered'.*awaiting_payment"):
        StatusMapping.merged(DEFAULTS, {"delivered": ["X"]})


def test_code_mapped_to_two_statuses_is_rejected() -> None:
    with pytest.raises(StatusMappingError, match="'X' is mapped to both"):
        StatusMapping.merged(DEFAULTS, {"shipped": ["X"], "on_hold": ["X"]})


def test_unmapped_code_returns_none() -> None:
    mapping = StatusMapping.merged(DEFAULTS)
    assert mapping.status_for("MYSTERY") is None
    assert mapping.status_for(None) is None
