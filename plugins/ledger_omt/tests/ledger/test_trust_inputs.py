"""Each honest trust input moves trust the expected way, and ``--explain`` shows its part.

Verification outcomes and trust assertions weigh by their author's credibility; a Sybil
cluster trading among itself is weighted down; an identity's age starts when someone else
first recorded it, whatever its own identity block claims.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omerta_ledger_omt.ledger.attestations import misuse_verdict_payload
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import AssertionFact, ChainState, Interaction, Parameters, VerificationFact
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.trust import MS_PER_DAY, TrustGraph, TrustModel, TrustParameters, explanation_text

from omerta_core import identity as identity_mod

from .conftest import identity

NOW = 2000 * MS_PER_DAY
OLD = NOW - 400 * MS_PER_DAY
SESSION = bytes(32)


def value_for(weight: float) -> float:
    """The verified value (undecayed, at NOW) that gives a direct edge ``weight``."""
    return -1000.0 * math.log(1 - weight)


class World:
    """Replayed chains built fact by fact; every identity named was first recorded long ago."""

    def __init__(self) -> None:
        self.states: dict[str, ChainState] = {}

    def chain(self, owner: str) -> ChainState:
        if owner not in self.states:
            self.states[owner] = ChainState(owner, Parameters(), genesis_ms=OLD)
        return self.states[owner]

    def trade(self, truster: str, trusted: str, weight: float) -> None:
        self.chain(truster).interactions.append(Interaction(trusted, round(value_for(weight)), NOW, "session"))
        self.chain(truster).mentions.setdefault(trusted, OLD)
        self.chain(trusted)

    def verify(self, witness: str, subject: str, passed: bool, session: bytes = SESSION) -> None:
        self.chain(witness).verifications.append(VerificationFact(subject, session, passed, NOW))

    def assert_(self, author: str, subject: str, score_milli: int) -> None:
        self.chain(author).assertions.append(AssertionFact(subject, score_milli, "test", NOW))

    def model(self, params: TrustParameters | None = None) -> TrustModel:
        params = params or TrustParameters()
        return TrustModel(TrustGraph.from_states(self.states.values(), {}, NOW, params), params)

    def trust(self, observer: str, subject: str, params: TrustParameters | None = None) -> float:
        return self.model(params).trust_all(observer, NOW).get(subject, 0.0)


def honest_world() -> World:
    """An observer with a trusted witness ``w`` and a provider ``p`` it has traded with, among many others."""
    world = World()
    world.trade("o", "w", 0.9)
    world.trade("o", "p", 0.5)
    for i in range(12):  # o, w and p trade widely, so they form no isolated cluster
        for who in ("o", "w", "p"):
            world.trade(who, f"x{i}", 0.6)
    return world


def test_verification_pass_raises_trust_and_fail_lowers_it() -> None:
    base = honest_world().trust("o", "p")
    passed, failed = honest_world(), honest_world()
    passed.verify("w", "p", True)
    failed.verify("w", "p", False)
    assert passed.trust("o", "p") > base + 0.1
    assert failed.trust("o", "p") < base - 0.15  # a failure weighs double
    info = failed.model().explain("o", "p", NOW)
    assert info["evidence"][0]["kind"] == "verification" and info["evidence"][0]["contribution"] < 0
    text = "\n".join(explanation_text(info))
    assert "verification by " in text and "credibility 0.900" in text


def test_a_verification_counts_once_per_witness_and_session() -> None:
    once, repeated = honest_world(), honest_world()
    once.verify("w", "p", True)
    for _ in range(5):
        repeated.verify("w", "p", True)
    assert repeated.trust("o", "p") == pytest.approx(once.trust("o", "p"))


def test_assertion_from_a_credible_identity_counts_and_from_a_fresh_one_hardly() -> None:
    base = honest_world().trust("o", "p")
    credible, fresh, young = honest_world(), honest_world(), honest_world()
    credible.assert_("w", "p", -1000)
    fresh.assert_("sock", "p", -1000)  # nobody traded with "sock": no credibility
    young.trade("o", "kid", 0.9)
    young.chain("o").mentions["kid"] = NOW - MS_PER_DAY  # first recorded yesterday
    young.assert_("kid", "p", -1000)
    assert credible.trust("o", "p") < base - 0.2
    assert fresh.trust("o", "p") == pytest.approx(base)
    assert base - 0.01 < young.trust("o", "p") < base
    praised = honest_world()
    praised.assert_("w", "p", 1000)
    assert praised.trust("o", "p") > base + 0.1
    text = "\n".join(explanation_text(fresh.model().explain("o", "p", NOW)))
    assert "assertion" in text and "credibility 0.000" in text


def test_a_sybil_cluster_of_five_trading_among_themselves_counts_for_little() -> None:
    world = honest_world()
    sybils = [f"s{i}" for i in range(5)]
    world.trade("o", "s0", 0.5)  # one honest-looking session with the first of them
    for a in sybils:
        for b in sybils:
            if a != b:
                world.trade(a, b, 0.95)
                world.assert_(a, b, 1000)  # and they praise each other
    off = TrustParameters(isolation_threshold=1.0)
    model = world.model()
    assert model.cluster_weight("s2", "o") == pytest.approx(0.2)
    assert world.trust("o", "s2") < world.trust("o", "s2", off) * 0.25
    assert world.trust("o", "s0") < world.trust("o", "s0", off) * 0.25
    assert model.cluster_weight("p", "o") == 1.0  # the honest provider, who trades widely, is not weighted
    info = model.explain("o", "s2", NOW)
    assert info["cluster"]["size"] == 5 and info["cluster"]["isolation"] > 0.9
    assert "cluster: 5 identities" in "\n".join(explanation_text(info))
    # seen from inside the cluster nothing is weighted: trust stays local to the observer
    assert model.cluster_weight("s2", "s0") == 1.0


def test_age_starts_when_others_recorded_the_identity_not_at_its_claimed_genesis(tmp_path: Path) -> None:
    params = Parameters()
    observer = LocalLedger(identity("observer"), ChainStore(tmp_path / "o", params))
    claimant = LocalLedger(identity("claimant"), ChainStore(tmp_path / "c", params))
    try:
        observer.ensure_identity(OLD)
        genesis = claimant.ensure_identity(NOW - 5 * 365 * MS_PER_DAY)  # claims five years
        assert genesis is not None
        observer.store.add(genesis)
        model = observer.trust_model(NOW)
        assert model.age_derate(claimant.me, NOW) == 0.0  # nobody else has recorded it yet
        observer.checkpoint(NOW - 10 * MS_PER_DAY, [claimant.me])
        model = observer.trust_model(NOW)
        assert model.age_derate(claimant.me, NOW) == pytest.approx(10 / 90)
        info = model.explain(observer.me, claimant.me, NOW)
        assert info["age_days"] == pytest.approx(10) and info["claimed_age_days"] == pytest.approx(5 * 365)
        assert "claims 1825.0 d; not used" in "\n".join(explanation_text(info))
    finally:
        observer.store.close()
        claimant.store.close()


def test_trust_explain_on_the_command_line(tmp_path: Path) -> None:
    """``omerta ledger trust PEER --explain`` (and ``--json``) on a store with a witness's verification."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    me = identity_mod.load_or_create(state)
    params = Parameters()
    store = ChainStore(state / "plugins" / "omt", params)
    mine = LocalLedger(me, store)
    witness = LocalLedger(identity("witness"), ChainStore(tmp_path / "w", params))
    subject = LocalLedger(identity("subject"), ChainStore(tmp_path / "s", params))
    try:
        mine.ensure_identity(OLD)
        witness.ensure_identity(OLD)
        first = subject.ensure_identity(OLD)
        assert first is not None
        witness.store.add(first)
        verdict = {"subject": subject.me, "session_id": SESSION, "passed": False, "detail": "VM_UNREACHABLE"}
        witness.append(BlockKind.VERIFICATION, verdict, OLD + 1)
        store.add_many([*witness.store.blocks(witness.me), first])
    finally:
        for ledger in (mine, witness, subject):
            ledger.store.close()
    cli = [sys.executable, "-c", "from omerta_core.cli import run; run()", "ledger", "trust", subject.me]
    plain = subprocess.run([*cli, "--state-dir", str(state)], capture_output=True, text=True, check=True)
    assert plain.stdout.startswith("trust 0.0000 = ") and len(plain.stdout.splitlines()) == 1
    explained = subprocess.run([*cli, "--explain", "--state-dir", str(state)], capture_output=True, text=True,
                               check=True)  # fmt: skip
    assert "verification by " in explained.stdout and "age: first recorded by another identity" in explained.stdout
    as_json = json.loads(subprocess.run([*cli, "--json", "--state-dir", str(state)], capture_output=True, text=True,
                                        check=True).stdout)  # fmt: skip
    assert as_json["evidence"][0]["kind"] == "verification" and as_json["evidence"][0]["score"] < 0


def test_a_misuse_verdict_costs_the_guilty_consumer_or_the_false_accuser() -> None:
    store = {"accuser": "p", "accused": "c", "evidence_hash": "ee" * 32}
    guilty = misuse_verdict_payload({**store, "guilty": True}, SESSION.hex())
    acquitted = misuse_verdict_payload({**store, "guilty": False}, SESSION.hex())
    assert (guilty["subject"], guilty["passed"]) == ("c", False)
    assert (acquitted["subject"], acquitted["passed"]) == ("p", False)
    for payload, loser in ((guilty, "c"), (acquitted, "p")):
        world = honest_world()
        world.trade("o", "c", 0.5)
        before = world.trust("o", loser)
        world.chain("w").verifications.append(VerificationFact(payload["subject"], SESSION, False, NOW))
        assert world.trust("o", loser) < before


def test_a_false_accusation_still_costs_the_accuser_after_the_session_ends_well() -> None:
    """The trial's failed verification and the session's passed one are separate findings: the pass, written
    later for the same session, does not erase the false accusation."""
    world = honest_world()
    world.chain("w").verifications.append(VerificationFact("p", SESSION, True, NOW))
    honest = world.trust("o", "p")
    world = honest_world()
    world.chain("w").verifications.append(VerificationFact("p", SESSION, False, NOW, "trial"))
    world.chain("w").verifications.append(VerificationFact("p", SESSION, True, NOW))
    assert world.trust("o", "p") < honest


def test_a_trial_verdict_and_a_session_attestation_are_told_apart_on_the_chain() -> None:
    """An attestation of a session aborted for misuse begins like a guilty verdict but is the session's check."""
    witness, consumer, provider = identity("w"), str(identity("c").peer_id), str(identity("p").peer_id)
    state = ChainState(str(witness.peer_id), Parameters())
    store = {"accuser": provider, "accused": consumer, "evidence_hash": "ee" * 32, "guilty": True}
    payloads = [
        {},
        misuse_verdict_payload(store, SESSION.hex()),
        {"subject": provider, "session_id": SESSION, "passed": True, "detail": "CONSUMER_MISUSE duration_ms=5",
         "duration_ms": 5},
    ]  # fmt: skip
    prev = GENESIS_PREV
    for seq, payload in enumerate(payloads):
        block = Block.create(witness, seq, prev, BlockKind.VERIFICATION if seq else BlockKind.IDENTITY, NOW, payload)
        state.apply(block)
        prev = block.hash
    assert [(v.subject, v.check) for v in state.verifications] == [(consumer, "trial"), (provider, "session")]
