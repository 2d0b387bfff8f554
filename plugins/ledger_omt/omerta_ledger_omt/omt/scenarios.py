"""Built-in scenarios for the shipped specs: the happy path and failure paths of each.

Plain data for :func:`omerta_ledger_omt.omt.player.play`; ``omerta omt run SPEC -s NAME``
picks one, and the tests assert their outcomes.
"""

from __future__ import annotations

from typing import Any

from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.player import Scenario, ScheduledTrigger
from omerta_ledger_omt.omt.runtime.values import digest

WITNESSES = ["w1", "w2", "w3", "w4", "w5"]
TRUST = {"w1": 1.5, "w2": 1.2, "w3": 0.4, "w4": 0.6, "w5": 0.3}
#: The consumer's chain head as it and the witnesses see it; lock requests are bound to it.
ALICE_HEAD = {"head_seq": 3, "head_hash": "ab" * 32}


def _attested(balance: int) -> dict[str, int]:
    """A witness's view of alice's funds: its own copy and what transaction 03's witnesses attested agree."""
    return {"available": balance, "balance": balance, "attested_available": balance, "attested_balance": balance}


def _lock_setup() -> dict[str, Any]:
    peers = {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")}
    trust = {f"@{w}": {"trust": t} for w, t in TRUST.items()}
    knowledge: dict[str, dict[str, dict[str, Any]]] = {
        "alice": {**trust, "@bob": {"head_hash": "@bob.head"}, "@alice": dict(ALICE_HEAD, available=1000)},
        "bob": dict(trust),
        **{w: {**trust, "@alice": dict(ALICE_HEAD, **_attested(1000))} for w in WITNESSES},
    }
    stores = {"bob": {"known_peers": ["@alice", "@bob", *(f"@{w}" for w in WITNESSES)]}}
    return {"peers": peers, "knowledge": knowledge, "stores": stores}


def _escrow_lock() -> dict[str, Scenario]:
    lock = ScheduledTrigger(1.0, "alice", "initiate_lock", {"provider": "@bob", "amount": 100, "hourly_rate": 60})
    topup = ScheduledTrigger(400.0, "alice", "initiate_topup", {"topup_amount": 50})
    locked = {"alice": "LOCKED", "bob": "SERVICE_PHASE", **dict.fromkeys(WITNESSES, "ESCROW_ACTIVE")}
    out = [
        Scenario("happy", "lock 100, then top up 50", triggers=[lock, topup], expect=locked, **_lock_setup()),
        Scenario(
            "provider_timeout",
            "the provider never answers: the consumer gives up after WITNESS_COMMITMENT_TIMEOUT",
            triggers=[lock],
            silent={"bob"},
            expect={"alice": "FAILED", **dict.fromkeys(WITNESSES, "IDLE")},
            **_lock_setup(),
        ),
        Scenario(
            "too_few_witnesses",
            "three of five witnesses are down: no threshold, everyone times out",
            triggers=[lock],
            silent={"w3", "w4", "w5"},
            expect={"alice": "FAILED", "bob": "ABANDONED", "w1": "DONE", "w2": "DONE"},
            **_lock_setup(),
        ),
        Scenario(
            "invalid_signature",
            "the consumer's signatures do not verify: the provider drops its intent",
            triggers=[lock],
            forgers={"alice"},
            expect={"alice": "FAILED", "bob": "IDLE"},
            **_lock_setup(),
        ),
        Scenario(
            "forged_witnesses",
            "three witnesses sign with the wrong key: the honest two never reach the threshold",
            triggers=[lock],
            forgers={"w3", "w4", "w5"},
            expect={"alice": "FAILED", "w1": "DONE", "w2": "DONE"},
            **_lock_setup(),
        ),
    ]
    rejected = {"alice": "FAILED", "bob": "ABANDONED", **dict.fromkeys(WITNESSES, "DONE")}
    for name, description, view in (
        ("insufficient_balance", "witnesses see a balance below the amount and agree to reject", _attested(10)),
        (
            "stale_view",
            "each witness's own copy shows enough, but the balance transaction 03 attests does not: reject",
            {**_attested(1000), "attested_available": 10, "attested_balance": 10},
        ),
    ):
        setup = _lock_setup()
        for w in WITNESSES:
            setup["knowledge"][w]["@alice"] = dict(ALICE_HEAD, **view)
        out.append(Scenario(name, description, triggers=[lock], expect=rejected, **setup))
    stranger = _lock_setup()
    del stranger["knowledge"]["alice"]["@bob"]
    out.append(
        Scenario(
            "no_checkpoint", "the consumer holds no checkpoint of the provider's chain: it refuses to start",
            triggers=[lock], expect={"alice": "FAILED", "bob": "IDLE"}, **stranger,
        )
    )  # fmt: skip
    unknown = _lock_setup()
    unknown["knowledge"]["alice"]["@bob"] = {"head_hash": "00" * 32}
    out.append(
        Scenario(
            "unknown_checkpoint",
            "the consumer's checkpoint is not on the provider's chain",
            triggers=[lock],
            expect={"alice": "FAILED", "bob": "REJECTED"},
            **unknown,
        )
    )
    return {s.name: s for s in out}


def _attestation_setup(**overrides: Any) -> dict[str, Any]:
    witness_ids = [f"@{w}" for w in WITNESSES]
    lock_result = {"session_id": "lock-1", "status": "ACCEPTED", "amount": 100}
    triggers = [
        ScheduledTrigger(
            0.0, "bob", "start_session", {"consumer": "@alice", "witnesses": witness_ids, "lock_result": lock_result}
        ),
        ScheduledTrigger(0.0, "alice", "setup_session", {"provider": "@bob", "witnesses": witness_ids}),
        *(
            ScheduledTrigger(0.0, w, "setup_session", {
                "provider": "@bob", "consumer": "@alice", "witnesses": witness_ids,
                "lock_result_hash": digest(lock_result),
            })
            for w in WITNESSES
        ),
    ]  # fmt: skip
    setup: dict[str, Any] = {
        "peers": {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")},
        "triggers": triggers,
        "native_results": {"check_vm_connectivity": True, "check_consumer_connected": True, "judge_misuse": False},
    }
    setup.update(overrides)
    return setup


def _cabal_attestation() -> dict[str, Scenario]:
    allocate = ScheduledTrigger(10.0, "bob", "allocate_vm", {"vm_endpoint": "198.18.0.10:51820"})
    cancel = ScheduledTrigger(3610.0, "alice", "request_cancel", {})
    accuse = ScheduledTrigger(1800.0, "bob", "accuse_misuse", {"evidence": {"what": "port scan", "flows": 5000}})
    base = _attestation_setup()
    out = [
        Scenario(
            "happy", "VM allocated and verified, the consumer cancels after an hour, five witnesses attest",
            **{**base, "triggers": [*base["triggers"], allocate, cancel]},
            expect={"alice": "ATTESTED", "bob": "SESSION_COMPLETE", **dict.fromkeys(WITNESSES, "DONE")},
            until=7200.0,
        ),
        Scenario(
            "allocation_timeout", "the provider never allocates the VM: everyone gives up",
            **base, expect={"alice": "NO_VM", "bob": "SESSION_ABORTED", **dict.fromkeys(WITNESSES, "DONE")},
        ),
        Scenario(
            "vm_unreachable", "witnesses cannot reach the VM: they attest VM_UNREACHABLE and the provider cancels",
            **{**_attestation_setup(native_results={"check_vm_connectivity": False, "check_consumer_connected": True,
                                                    "judge_misuse": False}),
               "triggers": [*base["triggers"], allocate]},
            expect={"alice": "ATTESTED", "bob": "SESSION_COMPLETE", **dict.fromkeys(WITNESSES, "DONE")},
        ),
        Scenario(
            "misuse_guilty", "the provider accuses the consumer of misuse; the witnesses find it guilty and abort",
            **{**_attestation_setup(native_results={"check_vm_connectivity": True, "check_consumer_connected": True,
                                                    "judge_misuse": True}),
               "triggers": [*base["triggers"], allocate, accuse]},
            expect={"alice": "ATTESTED", "bob": "SESSION_COMPLETE", **dict.fromkeys(WITNESSES, "DONE")},
        ),
        Scenario(
            "misuse_false", "a false accusation: the witnesses acquit, the session goes on and ends normally",
            **{**base, "triggers": [*base["triggers"], allocate, accuse, cancel]},
            expect={"alice": "ATTESTED", "bob": "SESSION_COMPLETE", **dict.fromkeys(WITNESSES, "DONE")},
            until=7200.0,
        ),
        Scenario(
            "too_few_witnesses", "three witnesses are down: the attestation never reaches its threshold",
            **{**base, "triggers": [*base["triggers"], allocate, cancel]}, silent={"w3", "w4", "w5"},
            expect={"alice": "UNATTESTED", "bob": "SESSION_ABORTED", "w1": "DONE", "w2": "DONE"}, until=7200.0,
        ),
        Scenario(
            "invalid_signature", "the provider's signatures do not verify: nobody accepts its VM announcement",
            **{**base, "triggers": [*base["triggers"], allocate]}, forgers={"bob"},
            expect={"alice": "NO_VM", "bob": "SESSION_ABORTED", **dict.fromkeys(WITNESSES, "DONE")},
        ),
    ]  # fmt: skip
    return {s.name: s for s in out}


def _settle_setup(trust_of: dict[str, int] | None = None, witnessed_at: float = -3600.0) -> dict[str, Any]:
    """The consumer settles one hour at 10 per hour from an escrow of 100; witnesses trust the provider 0.8 and
    witnessed the lock at ``witnessed_at`` (an hour before the scenario starts) and attested no duration."""
    witness_ids = [f"@{w}" for w in WITNESSES]
    inputs = {"provider": "@bob", "witnesses": witness_ids, "lock_hash": "cd" * 32, "escrow_total": 100,
              "duration_ms": 3_600_000, "hourly_rate": 10}  # fmt: skip
    trust = {w: (trust_of or {}).get(w, 800) for w in WITNESSES}
    return {
        "peers": {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")},
        "triggers": [ScheduledTrigger(1.0, "alice", "settle", inputs)],
        "knowledge": {w: {"@bob": {"trust_milli": t}, "@session": {"lock_witnessed_at": witnessed_at}}
                      for w, t in trust.items()},
    }  # fmt: skip


def _escrow_settle() -> dict[str, Scenario]:
    settled = {"alice": "SETTLED", "bob": "SETTLED", **dict.fromkeys(WITNESSES, "SETTLEMENT_SIGNED")}
    short = {"alice": "UNSETTLED", "bob": "IDLE", "w1": "EXPIRED", "w2": "EXPIRED"}
    out = [
        Scenario("happy", "one hour at 10 per hour from an escrow of 100, the provider trusted 0.8",
                 expect=settled, **_settle_setup()),
        Scenario("timeout", "no witness takes part: the consumer gives up", silent=set(WITNESSES),
                 expect={"alice": "UNSETTLED", "bob": "IDLE"}, **_settle_setup()),
        Scenario("too_few_witnesses", "three witnesses are down: too few trust reports", silent={"w3", "w4", "w5"},
                 expect=short, **_settle_setup()),
        Scenario("invalid_signature", "three witnesses sign with the wrong key: their reports are dropped",
                 forgers={"w3", "w4", "w5"}, expect=short, **_settle_setup()),
        Scenario("outlier", "one witness reports no trust at all: the lower median ignores it",
                 expect=settled, **_settle_setup({"w5": 0})),
        Scenario("unproven", "the witnesses attested no duration and witnessed the lock ten minutes ago: they "
                             "refuse an hour as more than they can prove",
                 expect={"alice": "UNSETTLED", "bob": "IDLE", **dict.fromkeys(WITNESSES, "IDLE")},
                 **_settle_setup(witnessed_at=-600.0)),
    ]  # fmt: skip
    return {s.name: s for s in out}


def _query_setup(balances: dict[str, int] | None = None, *, min_confidence: str = "HIGH") -> dict[str, Any]:
    """Carol asks five witnesses for alice's balance; each holds alice's chain at head 3, synced just now."""
    witness_ids = [f"@{w}" for w in WITNESSES]
    knowledge = {
        w: {"@alice": {"head_seq": 3, "head_hash": "ab" * 32, "balance": (balances or {}).get(w, 700), "synced_at": 0}}
        for w in WITNESSES
    }
    ask = {
        "subject": "@alice",
        "query": "balance",
        "min_confidence": min_confidence,
        "witnesses": witness_ids,
        "early": False,
    }
    return {
        "peers": {"carol": "Requester", "alice": "Requester", **dict.fromkeys(WITNESSES, "Witness")},
        "triggers": [ScheduledTrigger(1.0, "carol", "ask", ask)],
        "knowledge": knowledge if balances is not None or min_confidence == "HIGH" else {},
    }


def _state_query() -> dict[str, Scenario]:
    answered = dict.fromkeys(WITNESSES, "ANSWERED")
    unknown = _query_setup(min_confidence="LOW")
    unknown["knowledge"] = {}
    out = [
        Scenario("happy", "five witnesses synced alice just now and agree on her balance",
                 expect={"carol": "ATTESTED", **answered}, **_query_setup()),
        Scenario("two_liars", "two witnesses claim a higher balance: the honest three still attest",
                 expect={"carol": "ATTESTED", **answered}, **_query_setup({"w4": 5000, "w5": 5000})),
        Scenario("unknown_subject", "nobody holds alice's chain: the answer is unknown, not zero",
                 expect={"carol": "ATTESTED", **answered}, **unknown),
        Scenario("disagreement", "the witnesses' views differ too much: no value reaches the threshold",
                 expect={"carol": "FAILED", **answered}, **_query_setup({"w1": 1, "w2": 2, "w3": 3})),
        Scenario("timeout", "no witness answers", silent=set(WITNESSES), expect={"carol": "FAILED"},
                 **_query_setup()),
    ]  # fmt: skip
    return {s.name: s for s in out}


def _audit_setup() -> dict[str, Any]:
    """Carol audits alice's chain and asks bob, alice's counterparty, to confirm his halves."""
    return {
        "peers": {"carol": "Auditor", "alice": "Subject", "bob": "Counterparty"},
        "triggers": [ScheduledTrigger(1.0, "carol", "audit", {"subject": "@alice", "counterparties": ["@bob"]})],
        "native_results": {"audit_chain": {"subject": "alice", "discrepancies": []}, "halves_held": {"held": []}},
    }


def _state_audit() -> dict[str, Scenario]:
    out = [
        Scenario("happy", "alice serves her chain, bob confirms his halves, carol records a clean audit",
                 expect={"carol": "COMPLETE", "alice": "SERVED", "bob": "CONFIRMED"}, **_audit_setup()),
        Scenario("timeout", "alice does not answer: carol records that she did not", silent={"alice"},
                 expect={"carol": "COMPLETE", "bob": "IDLE"}, **_audit_setup()),
    ]  # fmt: skip
    return {s.name: s for s in out}


def _check_setup(initiator_view: dict[str, Any], cabal_view: dict[str, Any], clean: bool = True) -> dict[str, Any]:
    """Carol asks five cabal members to check alice; what each knows of alice's last check and suspicion."""
    witness_ids = [f"@{w}" for w in WITNESSES]
    return {
        "peers": {"carol": "Initiator", "alice": "Initiator", **dict.fromkeys(WITNESSES, "Cabal")},
        "triggers": [ScheduledTrigger(40 * 86400.0, "carol", "request_check", {"subject": "@alice",
                                                                              "cabal": witness_ids})],
        "knowledge": {"carol": {"@alice": initiator_view}, **{w: {"@alice": cabal_view} for w in WITNESSES}},
        "native_results": {"run_audit": {"discrepancies": [] if clean else [{"kind": "chain_fork"}]},
                           "suspicion_after": 0.0 if clean else 1.0},
        "until": 41 * 86400.0,
    }  # fmt: skip


def _health_check() -> dict[str, Scenario]:
    long_ago = {"last_health_check_at": 0.0, "suspicion": 0.0}  # checked at day 0: due at day 30
    recent = {"last_health_check_at": 35 * 86400.0, "suspicion": 0.0}  # checked at day 35: not due at day 40
    recorded = dict.fromkeys(WITNESSES, "RECORDED")
    out = [
        Scenario("happy", "alice was last checked 40 days ago: the cabal audits her and records the result",
                 expect={"carol": "CHECKED", **recorded}, **_check_setup(long_ago, long_ago)),
        Scenario("suspect", "the audit finds a fork: the cabal records it and alice's suspicion rises",
                 expect={"carol": "CHECKED", **recorded}, **_check_setup(long_ago, long_ago, clean=False)),
        Scenario("not_due", "alice was checked five days ago: the initiator cannot even ask",
                 expect={"carol": "REFUSED", **dict.fromkeys(WITNESSES, "IDLE")}, **_check_setup(recent, recent)),
        Scenario("refused", "the initiator says alice is due, the cabal's chains say not: every member refuses",
                 expect={"carol": "REFUSED", **dict.fromkeys(WITNESSES, "REFUSED")},
                 **_check_setup(long_ago, recent)),
        Scenario("too_few_witnesses", "three members are down: no result reaches the threshold",
                 silent={"w3", "w4", "w5"}, expect={"carol": "REFUSED", "w1": "INCONCLUSIVE", "w2": "INCONCLUSIVE"},
                 **_check_setup(long_ago, long_ago)),
    ]  # fmt: skip
    return {s.name: s for s in out}


BUILTIN: dict[str, Any] = {
    "00_escrow_lock": _escrow_lock,
    "01_cabal_attestation": _cabal_attestation,
    "02_escrow_settle": _escrow_settle,
    "03_state_query": _state_query,
    "04_state_audit": _state_audit,
    "05_health_check": _health_check,
}


def scenarios_for(spec_stem: str) -> dict[str, Scenario]:
    factory = BUILTIN.get(spec_stem)
    if factory is None:
        raise OmtError(
            f"no built-in scenarios for {spec_stem!r}; pass --scenario-file (built in: {', '.join(BUILTIN)})"
        )
    return factory()
