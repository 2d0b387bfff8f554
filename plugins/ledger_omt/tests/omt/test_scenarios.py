"""The shipped specs played end to end: happy paths and failure paths with their outcomes."""

from __future__ import annotations

import functools

import pytest
from omerta_ledger_omt.omt.loader import shipped_spec
from omerta_ledger_omt.omt.player import PlayResult, play
from omerta_ledger_omt.omt.runtime import Program
from omerta_ledger_omt.omt.scenarios import BUILTIN, scenarios_for


@functools.cache
def _program(spec: str) -> Program:
    return Program.load(shipped_spec(spec))


@functools.cache
def _play(spec: str, scenario: str) -> PlayResult:
    sc = scenarios_for(spec)[scenario]
    return play(_program(spec), sc)


CASES = [(spec, name) for spec in BUILTIN for name in scenarios_for(spec)]


@pytest.mark.parametrize(("spec", "scenario"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_scenario_reaches_expected_states(spec: str, scenario: str) -> None:
    sc = scenarios_for(spec)[scenario]
    result = _play(spec, scenario)
    assert sc.expect, "every built-in scenario states its expected outcome"
    assert result.unmet_expectations(sc.expect) == []


def test_lock_happy_path_appends_blocks_and_tops_up() -> None:
    result = _play("00_escrow_lock", "happy")
    alice = result.stores["alice"]
    assert alice["total_escrowed"] == 150
    assert alice["lock_result"]["status"] == "ACCEPTED"
    assert len(alice["lock_result"]["witness_signatures"]) >= 3
    assert [b["type"] for b in result.ledgers["alice"].blocks] == ["GENESIS", "BALANCE_LOCK", "BALANCE_TOPUP"]
    for w in ("w1", "w2", "w3", "w4", "w5"):
        assert result.stores[w]["total_escrowed"] == 150
        assert [b["type"] for b in result.ledgers[w].blocks][-1] == "WITNESS_COMMITMENT"
    # The top-up result carries the agreed status (the original spec always marked it REJECTED).
    assert alice["topup_result"]["status"] == "ACCEPTED"


def test_lock_failure_reasons() -> None:
    assert _play("00_escrow_lock", "provider_timeout").stores["alice"]["failure_reason"] == "commitment_timeout"
    assert _play("00_escrow_lock", "too_few_witnesses").stores["alice"]["failure_reason"] == "witness_timeout"
    assert _play("00_escrow_lock", "too_few_witnesses").stores["w1"]["failure_reason"] == "too_few_votes"
    assert _play("00_escrow_lock", "insufficient_balance").stores["alice"]["failure_reason"] == "lock_rejected"
    assert _play("00_escrow_lock", "unknown_checkpoint").stores["alice"]["failure_reason"] == "unknown_checkpoint"
    no_checkpoint = _play("00_escrow_lock", "no_checkpoint")
    assert no_checkpoint.stores["alice"]["failure_reason"] == "no_prior_provider_checkpoint"
    assert no_checkpoint.events == 1  # nothing was sent


def test_forged_signatures_are_dropped_on_receipt() -> None:
    result = _play("00_escrow_lock", "invalid_signature")
    assert ("bob", "LOCK_INTENT", "invalid signature") in result.dropped
    assert result.stores["alice"]["failure_reason"] == "commitment_timeout"
    forged = _play("00_escrow_lock", "forged_witnesses")
    assert any(reason == "invalid signature" and who == "w1" for who, _, reason in forged.dropped)


@pytest.mark.parametrize("spec", ["00_escrow_lock", "01_cabal_attestation", "02_escrow_settle"])
def test_each_spec_has_required_failure_paths(spec: str) -> None:
    names = set(scenarios_for(spec))
    assert "happy" in names
    assert "invalid_signature" in names
    assert "too_few_witnesses" in names
    assert names & {"provider_timeout", "allocation_timeout", "timeout"}


def test_attestation_carries_real_signatures() -> None:
    result = _play("01_cabal_attestation", "happy")
    final = result.stores["alice"]["final_attestation"]
    assert final["attestation"]["termination_reason"] == "CONSUMER_REQUEST"
    assert final["attestation"]["duration"] == pytest.approx(3600.1)
    assert len({s["witness"] for s in final["signatures"]}) >= 3
    assert [b["type"] for b in result.ledgers["w1"].blocks][-1] == "ATTESTATION"


def test_unreachable_vm_is_attested_as_such() -> None:
    result = _play("01_cabal_attestation", "vm_unreachable")
    assert result.stores["alice"]["final_attestation"]["attestation"]["termination_reason"] == "VM_UNREACHABLE"
    assert result.stores["bob"]["termination_reason"] == "CONNECTIVITY_FAILED"


def test_attestation_failure_paths() -> None:
    assert _play("01_cabal_attestation", "too_few_witnesses").stores["w1"]["failure_reason"] == "too_few_signatures"
    forged = _play("01_cabal_attestation", "invalid_signature")
    assert ("w1", "VM_ALLOCATED", "invalid signature") in forged.dropped
    assert ("alice", "VM_READY", "invalid signature") in forged.dropped


def test_settlement_splits_the_escrow_in_integers() -> None:
    result = _play("02_escrow_settle", "happy")
    body = result.stores["alice"]["final_settlement"]["settlement"]
    # total 10; K·T = 9 * 0.8 = 7.2, share 7.2 / 8.2 of 10 = 8.78.., rounded down toward the burn
    assert (body["provider_payment"], body["burn"], body["refund"]) == (8, 2, 90)
    assert all(type(body[k]) is int for k in ("provider_payment", "burn", "refund", "provider_trust_milli"))
    assert len(result.stores["alice"]["final_settlement"]["signatures"]) >= 3
    assert result.stores["bob"]["provider_payment"] == 8
    assert result.stores["bob"]["final_settlement"]["settlement"] == body
    assert [b["type"] for b in result.ledgers["alice"].blocks][-1] == "BALANCE_UNLOCK"
    assert [b["type"] for b in result.ledgers["bob"].blocks][-1] == "PAYMENT_RECEIVED"


def test_settlement_failure_paths() -> None:
    outlier = _play("02_escrow_settle", "outlier").stores["alice"]["final_settlement"]["settlement"]
    assert outlier["provider_trust_milli"] == 800
    forged = _play("02_escrow_settle", "invalid_signature")
    assert any(who == "alice" and reason == "invalid signature" for who, _, reason in forged.dropped)
    assert forged.stores["alice"]["failure_reason"] == "too_few_trust_reports"
    short = _play("02_escrow_settle", "too_few_witnesses")
    assert short.stores["w1"]["failure_reason"] == "no_settlement_request"
    unproven = _play("02_escrow_settle", "unproven")
    assert all(unproven.stores[w]["failure_reason"] == "duration_unproven" for w in ("w1", "w2", "w3", "w4", "w5"))
    assert "final_settlement" not in unproven.stores["alice"] or not unproven.stores["alice"]["final_settlement"]


def test_a_true_misuse_accusation_aborts_the_session_and_costs_the_consumer() -> None:
    result = _play("01_cabal_attestation", "misuse_guilty")
    attestation = result.stores["alice"]["final_attestation"]["attestation"]
    assert attestation["termination_reason"] == "CONSUMER_MISUSE"
    assert attestation["duration"] == pytest.approx(1790.2, abs=1.0)  # charged up to the abort, then settled by 02
    for w in ("w1", "w2", "w3", "w4", "w5"):
        blocks = [b["type"] for b in result.ledgers[w].blocks]
        assert blocks[-2:] == ["MISUSE_VERDICT", "ATTESTATION"]
        assert (
            result.stores[w]["misuse_verdict"] == "guilty"
            and result.stores[w]["accused"] == result.stores[w]["consumer"]
        )


def test_a_false_misuse_accusation_is_acquitted_and_the_session_goes_on() -> None:
    result = _play("01_cabal_attestation", "misuse_false")
    attestation = result.stores["alice"]["final_attestation"]["attestation"]
    assert attestation["termination_reason"] == "CONSUMER_REQUEST"
    assert attestation["duration"] == pytest.approx(3600.1)
    for w in ("w1", "w2", "w3", "w4", "w5"):
        assert result.stores[w]["misuse_verdict"] == "acquitted" and result.stores[w]["guilty"] is False
        assert "MISUSE_VERDICT" in [b["type"] for b in result.ledgers[w].blocks]
    assert result.stores["bob"]["termination_reason"] == "CONSUMER_REQUEST"


def test_state_query_attests_the_honest_value_and_unknown_is_not_zero() -> None:
    liars = _play("03_state_query", "two_liars").stores["carol"]
    assert liars["value"] == 700 and liars["confidence"] == "HIGH" and len(liars["attestation"]) == 3
    assert {a["answer"]["value"] for a in liars["answers"]} == {700, 5000}  # the liars' signed answers are kept
    unknown = _play("03_state_query", "unknown_subject").stores["carol"]
    assert unknown["value"] == "unknown" and unknown["confidence"] == "LOW"
    assert _play("03_state_query", "disagreement").stores["carol"]["failure_reason"] == "disagreement"


def test_state_audit_records_a_result_or_a_non_answer() -> None:
    happy = _play("04_state_audit", "happy")
    assert [b["type"] for b in happy.ledgers["carol"].blocks][-1] == "AUDIT_RESULT"
    assert happy.stores["carol"]["confirmations"][0]["halves"] == {"held": []}
    silent = _play("04_state_audit", "timeout").stores["carol"]
    assert silent["failure_reason"] == "subject_did_not_answer" and silent["result"]["answered"] is False


def test_health_check_runs_only_when_due_and_records_the_new_suspicion() -> None:
    suspect = _play("05_health_check", "suspect")
    for w in ("w1", "w2", "w3", "w4", "w5"):
        assert suspect.stores[w]["clean"] is False and suspect.stores[w]["suspicion"] == 1.0
        assert [b["type"] for b in suspect.ledgers[w].blocks][-1] == "CHECK_RESULT"
    assert _play("05_health_check", "not_due").stores["carol"]["failure_reason"] == "not_due"
    refused = _play("05_health_check", "refused")
    assert refused.stores["carol"]["failure_reason"] == "not_due"
    assert all(refused.stores[w]["failure_reason"] == "not_due" for w in ("w1", "w2", "w3", "w4", "w5"))
