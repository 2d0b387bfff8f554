"""Why an escrow lock (spec 00) was refused, in one line, on both sides of it.

* :func:`witness_refusal`: a witness that votes to reject a lock request says which of spec 00's checks
  failed (a double lock, no attested balance and why the balance query gave none, the request naming
  another head than the one held here, an available balance that differs, too little left), for its log.
* :func:`balance_query_note`: what a spec 03 balance query made for a lock request ended with, the
  answers it counted included, which the witness's refusal quotes when the query gave no attestation.
* :func:`consumer_refusal`: the consumer's reading of a failed lock from what it knows (its own request and
  its own chain now), and whether and when asking again may lock: a request whose head this node's chain
  has moved past since it signed it is refused by every witness that holds the newer head, and a fresh
  request at the new head is not (ask at once); a request the witnesses could not confirm may lock once
  they caught up with the consumer (ask after :data:`RETRY_PAUSE_S`).

Pure functions over spec instances' stores and the chain view. Touches nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

#: Seconds a consumer waits before asking again when too few witnesses confirmed its balance: they may have
#: been catching up with its chain.
RETRY_PAUSE_S = 1.0

#: What the consumer's failure codes of spec 00 mean, for the one line a caller sees.
FAILURES = {
    "witness_timeout": "no lock result from the witnesses in time",
    "commitment_timeout": "the provider sent no witness selection in time",
    "unknown_checkpoint": "the provider does not hold the head of its chain this node named (sync and retry)",
    "no_prior_provider_checkpoint": "this node holds none of the provider's chain (sync with it first)",
    "provider_chain_invalid": "the provider's chain segment does not verify",
    "witness_selection_invalid": "the provider's witness selection does not check out",
}


class ChainReader(Protocol):
    def read(self, peer: str, key: str) -> Any: ...


def witness_refusal(store: Mapping[str, Any], view: ChainReader, unattested: str | None) -> str:
    """Why a spec 00 witness whose ``store`` holds verdict REJECT refused the request (``view`` as it judged).

    ``unattested`` says why no balance was attested for the request (None: one was)."""
    request = store.get("lock_request") or {}
    consumer, amount = str(store.get("consumer")), store.get("amount")
    if store.get("conflicts"):
        return f"double lock: another request at head #{request.get('head_seq')} promises the same funds"
    attested = view.read(consumer, "attested_available")
    if attested is None:
        return f"no attested balance for the request: {unattested or 'no balance query was made for it'}"
    head_seq, named = view.read(consumer, "head_seq"), request.get("head_seq")
    if named != head_seq or request.get("head_hash") != view.read(consumer, "head_hash"):
        if head_seq is None:
            return f"the request names head #{named}; no copy of the consumer's chain is held here"
        held = "behind it" if isinstance(named, int) and head_seq < named else "past it"
        return f"the request names head #{named}; the consumer's chain held here is at #{head_seq} ({held})"
    available = view.read(consumer, "available")
    if request.get("available") != attested or request.get("available") != available:
        return (
            f"the request says {request.get('available')} available; the witnesses attested {attested}, "
            f"the chain held here says {available}"
        )
    observed = store.get("observed_balance")
    if isinstance(observed, int) and isinstance(amount, int) and observed < amount:
        return f"{amount} asked exceeds the {observed} left after the locks this witness accepted"
    return "the request failed a check of spec 00 that this explanation does not know"


def balance_query_note(store: Mapping[str, Any], outcome: str) -> str:
    """How a balance query ended (``outcome``: ``attested`` or ``failed``), with the answers it counted."""
    answers = [a.get("answer") or {} for a in store.get("answers") or [] if isinstance(a, dict)]
    tally = Counter(f"{a.get('value')} {a.get('confidence')}" for a in answers if isinstance(a, dict))
    heard = ", ".join(f"{what} x{n}" for what, n in sorted(tally.items())) or "none"
    asked = len(store.get("witnesses") or [])
    if outcome == "attested":
        return f"the witnesses attested {store.get('value')!r} at {store.get('confidence')} confidence, not a balance"
    return f"the balance query failed ({store.get('failure_reason')}; {len(answers)} of {asked} answered: {heard})"


def consumer_refusal(store: Mapping[str, Any], head_seq: int, head_hash: str) -> tuple[str, float | None]:
    """One line saying why this consumer's lock failed, and after how many seconds asking again (a new
    request) may lock (None: it would not).

    ``store`` is its spec 00 instance's; ``head_seq``/``head_hash`` its own chain's head now."""
    code = str(store.get("failure_reason"))
    if code != "lock_rejected":
        return f"{code}: {FAILURES.get(code, 'the lock did not complete')}", None
    request = store.get("lock_request") or {}
    asked, available = request.get("amount"), request.get("available")
    if (request.get("head_seq"), request.get("head_hash")) != (head_seq, head_hash):
        return (
            f"lock_rejected: this node's chain moved from head #{request.get('head_seq')} to #{head_seq} while the "
            "witnesses judged the request bound to it"
        ), 0.0
    if isinstance(asked, int) and isinstance(available, int) and asked > available:
        return f"lock_rejected: this node has {available} available, less than the {asked} asked", None
    witnesses = len(store.get("witnesses") or [])
    return (
        f"lock_rejected: too few of the {witnesses} witnesses confirmed this node's {available} available at head "
        f"#{request.get('head_seq')} (behind on its chain or unable to agree on its balance; each says why in its log)"
    ), RETRY_PAUSE_S
