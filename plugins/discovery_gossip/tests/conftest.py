"""Shared fixtures: a network, and a virtual-time simulated network of SWIM cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.simulation import SimNet


@pytest.fixture
def network() -> Network:
    return Network("lab", bytes(range(32)))


@pytest.fixture
def simnet() -> Iterator[SimNet]:
    yield SimNet(seed=7)
