"""The one-line reasons for a refused lock: each check of spec 00 a witness can fail, and the consumer's reading."""

from __future__ import annotations

from typing import Any

import pytest
from omerta_ledger_omt.ledger.refusals import RETRY_PAUSE_S, balance_query_note, consumer_refusal, witness_refusal

REQUEST = {"head_seq": 4, "head_hash": "aa", "available": 1000, "amount": 300}


class View:
    """What a witness's chain view reads about the consumer ``c``."""

    def __init__(self, **values: Any) -> None:
        self.values = {"attested_available": 1000, "head_seq": 4, "head_hash": "aa", "available": 1000, **values}

    def read(self, peer: str, key: str) -> Any:
        assert peer == "c"
        return self.values[key]


def witness(**store: Any) -> dict[str, Any]:
    return {"consumer": "c", "amount": 300, "lock_request": REQUEST, "observed_balance": 1000, **store}


@pytest.mark.parametrize(
    ("store", "view", "unattested", "reason"),
    [
        (witness(conflicts=[{}]), View(), None, "double lock: another request at head #4 promises the same funds"),
        (witness(), View(attested_available=None), "the balance query failed (disagreement)",
         "no attested balance for the request: the balance query failed (disagreement)"),
        (witness(), View(attested_available=None), None,
         "no attested balance for the request: no balance query was made for it"),
        (witness(), View(head_seq=6, head_hash="bb"), None,
         "the request names head #4; the consumer's chain held here is at #6 (past it)"),
        (witness(), View(head_seq=2, head_hash="bb"), None,
         "the request names head #4; the consumer's chain held here is at #2 (behind it)"),
        (witness(), View(head_seq=None, head_hash=None), None,
         "the request names head #4; no copy of the consumer's chain is held here"),
        (witness(), View(attested_available=900), None,
         "the request says 1000 available; the witnesses attested 900, the chain held here says 1000"),
        (witness(observed_balance=200), View(), None,
         "300 asked exceeds the 200 left after the locks this witness accepted"),
        (witness(), View(), None, "the request failed a check of spec 00 that this explanation does not know"),
    ],
)  # fmt: skip
def test_a_witness_names_the_check_that_failed(
    store: dict[str, Any], view: View, unattested: str | None, reason: str
) -> None:
    assert witness_refusal(store, view, unattested) == reason


def test_a_balance_query_note_counts_the_answers() -> None:
    high, low = {"answer": {"value": 1000, "confidence": "HIGH"}}, {"answer": {"value": 900, "confidence": "LOW"}}
    answers = [high, high, low]
    store = {"answers": answers, "witnesses": ["a", "b", "c", "d", "e"], "failure_reason": "disagreement"}
    assert balance_query_note(store, "failed") == (
        "the balance query failed (disagreement; 3 of 5 answered: 1000 HIGH x2, 900 LOW x1)"
    )


@pytest.mark.parametrize(
    ("store", "head", "reason", "again_after"),
    [
        ({"failure_reason": "lock_rejected", "lock_request": REQUEST}, (5, "bb"),
         "lock_rejected: this node's chain moved from head #4 to #5 while the witnesses judged the request bound to it",
         0.0),
        ({"failure_reason": "lock_rejected", "lock_request": {**REQUEST, "amount": 2000}}, (4, "aa"),
         "lock_rejected: this node has 1000 available, less than the 2000 asked", None),
        ({"failure_reason": "lock_rejected", "lock_request": REQUEST, "witnesses": list("abcde")}, (4, "aa"),
         "lock_rejected: too few of the 5 witnesses confirmed this node's 1000 available at head #4 (behind on its "
         "chain or unable to agree on its balance; each says why in its log)", RETRY_PAUSE_S),
        ({"failure_reason": "witness_timeout", "lock_request": REQUEST}, (4, "aa"),
         "witness_timeout: no lock result from the witnesses in time", None),
    ],
)  # fmt: skip
def test_the_consumer_reads_a_refusal_and_whether_to_ask_again(
    store: dict[str, Any], head: tuple[int, str], reason: str, again_after: float | None
) -> None:
    assert consumer_refusal(store, *head) == (reason, again_after)
    assert "\n" not in reason
