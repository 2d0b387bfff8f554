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


def _lock_setup() -> dict[str, Any]:
    peers = {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")}
    trust = {f"@{w}": {"trust": t} for w, t in TRUST.items()}
    knowledge: dict[str, dict[str, dict[str, Any]]] = {
        "alice": {**trust, "@bob": {"head_hash": "@bob.head"}, "@alice": dict(ALICE_HEAD, available=1000)},
        "bob": dict(trust),
        **{w: {**trust, "@alice": dict(ALICE_HEAD, available=1000, balance=1000)} for w in WITNESSES},
    }
    stores = {"bob": {"known_peers": ["@alice", "@bob", *(f"@{w}" for w in WITNESSES)]}}
    return {"peers": peers, "knowledge": knowledge, "stores": stores}


def _escrow_lock() -> dict[str, Scenario]:
    lock = ScheduledTrigger(1.0, "alice", "initiate_lock", {"provider": "@bob", "amount": 100})
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
    poor = _lock_setup()
    for w in WITNESSES:
        poor["knowledge"][w]["@alice"] = dict(ALICE_HEAD, available=10, balance=10)
    out.append(
        Scenario(
            "insufficient_balance",
            "witnesses see a balance below the amount and agree to reject",
            triggers=[lock],
            expect={"alice": "FAILED", "bob": "ABANDONED", **dict.fromkeys(WITNESSES, "DONE")},
            **poor,
        )
    )
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


def _settle_setup(trust_of: dict[str, int] | None = None) -> dict[str, Any]:
    """The consumer settles one hour at 10 per hour from an escrow of 100; witnesses trust the provider 0.8."""
    witness_ids = [f"@{w}" for w in WITNESSES]
    inputs = {"provider": "@bob", "witnesses": witness_ids, "lock_hash": "cd" * 32, "escrow_total": 100,
              "duration_ms": 3_600_000, "hourly_rate": 10}  # fmt: skip
    trust = {w: (trust_of or {}).get(w, 800) for w in WITNESSES}
    return {
        "peers": {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")},
        "triggers": [ScheduledTrigger(1.0, "alice", "settle", inputs)],
        "knowledge": {w: {"@bob": {"trust_milli": t}} for w, t in trust.items()},
    }


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
    ]  # fmt: skip
    return {s.name: s for s in out}


BUILTIN: dict[str, Any] = {
    "00_escrow_lock": _escrow_lock,
    "01_cabal_attestation": _cabal_attestation,
    "02_escrow_settle": _escrow_settle,
}


def scenarios_for(spec_stem: str) -> dict[str, Scenario]:
    factory = BUILTIN.get(spec_stem)
    if factory is None:
        raise OmtError(
            f"no built-in scenarios for {spec_stem!r}; pass --scenario-file (built in: {', '.join(BUILTIN)})"
        )
    return factory()
