from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_ledger_omt.ledger.errors import ChainRuleError, LedgerError
from omerta_ledger_omt.ledger.settlement import agreed_trust_milli, check_invariants, split_settlement
from omerta_ledger_omt.ledger.witnesses import select_witnesses, selection_seed, verify_selection

from omerta_core.interfaces.common import PeerId

from .conftest import identity

PEERS = [str(identity(f"peer{i}").peer_id) for i in range(12)]
SEED = selection_seed(b"session", b"provider-nonce", b"consumer-nonce")


def test_selection_is_deterministic_and_independent_of_candidate_order() -> None:
    one = select_witnesses(PEERS, SEED, exclude=PEERS[:2])
    two = select_witnesses(list(reversed(PEERS)) + PEERS[3:5], SEED, exclude=PEERS[:2])
    assert one == two and len(one) == 5 and not set(one) & set(PEERS[:2])


def test_selection_pinned_vector() -> None:
    """Any implementation must rank by SHA-256(seed || public key); pin the first pick."""
    expected = min(PEERS[2:], key=lambda p: hashlib.sha256(SEED + identity_key(p)).digest())
    assert select_witnesses(PEERS, SEED, exclude=PEERS[:2])[0] == expected


def identity_key(peer: str) -> bytes:
    return PeerId(peer).public_key


def test_another_nonce_gives_another_set_and_swaps_are_caught() -> None:
    other = select_witnesses(PEERS, selection_seed(b"session", b"provider-nonce", b"other"), exclude=[])
    chosen = select_witnesses(PEERS, SEED, exclude=[])
    assert other != chosen
    verify_selection(chosen, PEERS, SEED, exclude=[])
    swapped = [*chosen[:4], next(p for p in PEERS if p not in chosen)]
    with pytest.raises(LedgerError, match="differs"):
        verify_selection(swapped, PEERS, SEED, exclude=[])
    with pytest.raises(LedgerError, match="only 3 witness candidates"):
        select_witnesses(PEERS[:5], SEED, exclude=PEERS[:2])


@given(
    escrow=st.integers(0, 10**12),
    duration_ms=st.integers(0, 10**9),
    rate=st.integers(0, 10**6),
    trust=st.integers(0, 1000),
)
def test_split_invariants_hold(escrow: int, duration_ms: int, rate: int, trust: int) -> None:
    split = split_settlement(escrow, duration_ms, rate, trust)
    assert split.provider_payment + split.burn + split.refund == escrow
    assert min(split.provider_payment, split.burn, split.refund) >= 0
    assert split.total <= escrow


def test_split_edge_cases() -> None:
    assert split_settlement(600, 0, 100, 900).refund == 600  # zero duration: full refund
    zero_trust = split_settlement(600, 3_600_000, 100, 0)
    assert (zero_trust.provider_payment, zero_trust.burn, zero_trust.refund) == (0, 100, 500)
    overrun = split_settlement(600, 100 * 3_600_000, 100, 1000)
    assert overrun.refund == 0 and overrun.provider_payment == 540  # capped at escrow, 9/10 at T = 1
    with pytest.raises(ChainRuleError, match="above 1"):
        split_settlement(600, 1, 1, 1001)
    with pytest.raises(ChainRuleError, match="do not add up"):
        check_invariants(600, 100, 100, 100)


def test_agreed_trust_resists_a_minority() -> None:
    assert agreed_trust_milli([500, 510, 1000, 990, 490]) == 510
    assert agreed_trust_milli([500, 510, 0, 0, 520]) == 500
