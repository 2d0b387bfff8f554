"""Built-in scenarios for the shipped specs: the happy path and failure paths of each.

Plain data for :func:`omerta_ledger_omt.omt.player.play`; ``omerta omt run SPEC -s NAME``
picks one, and the tests assert their outcomes.
"""

from __future__ import annotations

from typing import Any

from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.player import Scenario, ScheduledTrigger

WITNESSES = ["w1", "w2", "w3", "w4", "w5"]
TRUST = {"w1": 1.5, "w2": 1.2, "w3": 0.4, "w4": 0.6, "w5": 0.3}


def _lock_setup() -> dict[str, Any]:
    peers = {"alice": "Consumer", "bob": "Provider", **dict.fromkeys(WITNESSES, "Witness")}
    trust = {f"@{w}": {"trust": t} for w, t in TRUST.items()}
    knowledge: dict[str, dict[str, dict[str, Any]]] = {
        "alice": {**trust, "@bob": {"head_hash": "@bob.head"}},
        "bob": dict(trust),
        **{w: {**trust, "@alice": {"balance": 1000}} for w in WITNESSES},
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
        poor["knowledge"][w]["@alice"] = {"balance": 10}
    out.append(
        Scenario(
            "insufficient_balance",
            "witnesses see a balance below the amount and agree to reject",
            triggers=[lock],
            expect={"alice": "FAILED", "bob": "ABANDONED", **dict.fromkeys(WITNESSES, "DONE")},
            **poor,
        )
    )
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


BUILTIN: dict[str, Any] = {"00_escrow_lock": _escrow_lock}


def scenarios_for(spec_stem: str) -> dict[str, Scenario]:
    factory = BUILTIN.get(spec_stem)
    if factory is None:
        raise OmtError(
            f"no built-in scenarios for {spec_stem!r}; pass --scenario-file (built in: {', '.join(BUILTIN)})"
        )
    return factory()
