"""Acceptance: real `omerta node --plugins udp,relay` processes for every ordered pair of NAT kinds.

Every pair connects and exchanges reliable messages; pairs that hole punching
can open end up direct (and the relays then forward nothing more for them);
symmetric-to-symmetric and symmetric-to-port-restricted stay on the relay.
"""

from __future__ import annotations

import itertools

import pytest
from omerta_netlab.matrix import KINDS, NatMatrix

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(KINDS, KINDS)))
def test_pair_connects_and_ends_on_the_expected_path(matrix: NatMatrix, source: str, target: str) -> None:
    result = matrix.run_pair(source, target)
    assert result.first_message_s is not None, "the first message never arrived"
    assert result.connected, "follow-up messages were lost"
    if result.expected_direct:
        assert result.path == "direct"
        assert result.relayed_after_settle == 0, "a direct pair still sent packets through a relay"
    else:
        assert result.path == "relay"
        assert result.relayed_after_settle > 0
