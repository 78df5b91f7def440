"""The import invariant under an adversarial store, over a few hundred seeded scenarios.

Each seed draws a scenario (clock skew, list order, busy-ness, interruptions,
transient faults, an ordinary night or a Europe/Paris clock change); the
failure message names the seed. ``CHANNEL_SIM_SEEDS=N`` explores more seeds.
"""

from __future__ import annotations

import os

import pytest

from channel_core import Channel
from tests.sync.simulation import simulate

SEEDS = range(int(os.environ.get("CHANNEL_SIM_SEEDS", "240")))


@pytest.mark.parametrize("seed", SEEDS)
def test_quiet_store_plus_one_run_equals_the_store_by_content(oxatis: Channel, seed: int) -> None:
    outcome = simulate(oxatis, seed)
    assert outcome.ok, f"import invariant broken; reproduce with simulate(oxatis, {seed}): {outcome.describe()}"
