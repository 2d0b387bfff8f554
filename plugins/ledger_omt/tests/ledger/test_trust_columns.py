"""The array evaluation of trust gives what the reference model gives, on random chains, and after chains grow."""

from __future__ import annotations

import random

import pytest
from omerta_ledger_omt.ledger.chainstate import AssertionFact, ChainState, Interaction, Parameters, VerificationFact
from omerta_ledger_omt.ledger.trust import MS_PER_DAY, TrustGraph, TrustModel, TrustParameters
from omerta_ledger_omt.ledger.trust_columns import TrustColumns, trust_all

NOW = 1000 * MS_PER_DAY


def random_chains(rng: random.Random, size: int) -> tuple[list[ChainState], dict[str, int]]:
    """A random network with every trust input: sessions (some future-dated), a Sybil ring, statements,
    accusations (some by the observer ``n0``), identities nobody else recorded, and proofs."""
    names = [f"n{i}" for i in range(size)]
    states = [ChainState(name, Parameters(), genesis_ms=NOW - rng.randint(0, 500) * MS_PER_DAY) for name in names]
    for state in states:
        for _ in range(rng.randint(0, 8)):
            other = rng.choice(names)
            when = NOW + rng.randint(-400, 5) * MS_PER_DAY
            state.interactions.append(Interaction(other, rng.choice([0, 5, 80, 400, 2500]), when, "session"))
            if rng.random() < 0.8:
                state.mentions.setdefault(other, when - rng.randint(0, 200) * MS_PER_DAY)
        for _ in range(rng.randint(0, 3)):
            session = bytes([rng.randrange(3)]) * 32
            when = NOW - rng.randint(0, 300) * MS_PER_DAY
            check = rng.choice(["session", "trial"])
            state.verifications.append(VerificationFact(rng.choice(names), session, rng.random() < 0.7, when, check))
        for _ in range(rng.randint(0, 2)):
            when = NOW - rng.randint(0, 300) * MS_PER_DAY
            state.assertions.append(AssertionFact(rng.choice(names), rng.randint(-1000, 1000), "", when))
        if rng.random() < 0.15:
            state.accusations.append((rng.choice(names), "test", None))
    ring = states[-5:]
    for state in ring:
        for other in ring:
            if other is not state:
                state.interactions.append(Interaction(other.owner, 3000, NOW, "session"))
                state.mentions.setdefault(other.owner, NOW - 200 * MS_PER_DAY)
    states[0].accusations.append((names[1], "observer's own", None))
    proofs = {rng.choice(names): rng.randint(1, 2) for _ in range(3)} | {"somebody-not-held": 1}
    return states, proofs


def reference(
    states: list[ChainState], proofs: dict[str, int], observer: str, params: TrustParameters
) -> dict[str, float]:
    return TrustModel(TrustGraph.from_states(states, proofs, NOW, params), params).trust_all(observer, NOW)


@pytest.mark.parametrize("seed", range(25))
def test_arrays_equal_the_reference_on_random_chains(seed: int) -> None:
    rng = random.Random(seed)
    states, proofs = random_chains(rng, rng.choice([8, 30, 120]))
    params = TrustParameters(strong_tie_share=rng.choice([0.1, 0.2]), max_path_length=rng.choice([2, 4]))
    columns = TrustColumns()
    columns.update(states)
    for observer in ("n0", states[-1].owner, "n3"):
        expected = reference(states, proofs, observer, params)
        got = trust_all(columns, observer, proofs, NOW, params)
        assert got.keys() == expected.keys()
        for subject, value in expected.items():
            assert got[subject] == pytest.approx(value, rel=1e-9, abs=1e-12), subject


def test_only_changed_chains_are_read_again_and_the_result_follows_them() -> None:
    rng = random.Random(7)
    states, proofs = random_chains(rng, 60)
    params = TrustParameters()
    columns = TrustColumns()
    assert columns.update(states) == len(states)
    assert columns.update(states) == 0
    states[0].interactions.append(Interaction("n9", 5000, NOW, "session"))
    states[4].assertions.append(AssertionFact("n9", -1000, "", NOW))
    states[0].head_hash, states[4].head_hash = b"\x01" * 32, b"\x02" * 32  # the blocks that recorded them
    assert columns.update(states) == 2
    assert trust_all(columns, "n0", proofs, NOW, params) == pytest.approx(reference(states, proofs, "n0", params))
    assert columns.update(states[1:], complete=True) == 0  # a chain no longer held drops out
    assert trust_all(columns, "n1", proofs, NOW, params) == pytest.approx(reference(states[1:], proofs, "n1", params))


def test_an_observer_without_a_chain_trusts_only_itself() -> None:
    columns = TrustColumns()
    columns.update(random_chains(random.Random(1), 10)[0])
    assert trust_all(columns, "stranger", {}, NOW) == {"stranger": 1.0}
