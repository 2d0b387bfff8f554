"""Transaction 03's pure part: a witness's signed answer about a subject's state, and threshold agreement.

A requester asks witnesses one question about a subject (``balance``, ``chain_head``,
``chain_length``, ``age`` or ``trust``). Each witness answers from the chain it holds with a value,
a confidence set by how recently it synced the subject (HIGH within a day, MEDIUM within a week, LOW
after), and the head it answered at (its evidence). A subject the witness has never seen is
``unknown`` — never zero. :func:`agree` turns the answers into a state attestation when a threshold
of witnesses with enough confidence give one value, and names the dissenters; their signed answers
stay with the requester. An answer about the chain (balance, head, length) made with HIGH confidence
is falsifiable: :class:`FalseAnswerProof` is the signed answer plus the subject's chain up to the head
it names, which replays to another value — anyone checks it offline (``age`` and ``trust`` are
local to each observer and never falsifiable). :func:`attested_answers` reads the signed answers out of
a ``state_attestation`` block: what an audit holds against a witness whose answer the chain later
contradicts. Touches nothing.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from omerta_core.identity import Identity, verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.encoding import hash_value
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidBlockError, InvalidProofError
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

#: Synced within this long: HIGH confidence (the original's 24 h).
HIGH_CONFIDENCE_MS = 24 * 3_600_000
#: Synced within this long: MEDIUM confidence (the original's 7 days); older is LOW.
MEDIUM_CONFIDENCE_MS = 7 * 24 * 3_600_000

#: What a state question may ask; the first three are read off the subject's chain and falsifiable.
CHAIN_QUERIES = ("balance", "chain_head", "chain_length")
QUERIES = (*CHAIN_QUERIES, "age", "trust")

#: The value of an answer about a subject the witness has never seen.
UNKNOWN = "unknown"

#: Longest chain a false-answer proof may carry (the chain-rule proof's bound: small enough to gossip).
MAX_ANSWER_PROOF_BLOCKS = 4096

#: The ``what`` of a signed answer, so no other signed value can pass for one.
ANSWER = "state_answer"


class Confidence(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


def confidence(last_synced_ms: int | None, now_ms: int) -> Confidence:
    """How much a witness vouches for its view, from how long ago it last synced the subject."""
    if last_synced_ms is None:
        return Confidence.LOW
    age = max(0, now_ms - last_synced_ms)
    if age <= HIGH_CONFIDENCE_MS:
        return Confidence.HIGH
    return Confidence.MEDIUM if age <= MEDIUM_CONFIDENCE_MS else Confidence.LOW


def chain_value(state: ChainState, query: str) -> Any:
    """The value of a chain question at the head ``state`` was replayed to."""
    if query == "balance":
        return state.available()
    if query == "chain_head":
        return state.head_hash.hex()
    if query == "chain_length":
        return state.head_seq + 1
    raise ValueError(f"{query!r} is not a question about the chain ({', '.join(CHAIN_QUERIES)})")


@dataclass(frozen=True)
class Answer:
    """A witness's signed answer: ``statement`` is what it signed (canonical JSON of the runtime)."""

    statement: dict[str, Any]
    signature: str

    @property
    def witness(self) -> str:
        return str(self.statement["witness"])

    @property
    def value(self) -> Any:
        return self.statement["value"]

    @property
    def confidence(self) -> Confidence:
        return Confidence[self.statement["confidence"]]

    def signed(self) -> bool:
        try:
            return verify(PeerId(self.witness), canonical_bytes(self.statement), bytes.fromhex(self.signature))
        except ValueError:
            return False

    def to_wire(self) -> dict[str, Any]:
        return {"statement": self.statement, "signature": self.signature}

    @classmethod
    def from_wire(cls, obj: Any) -> Answer:
        if not isinstance(obj, dict) or set(obj) != {"statement", "signature"}:
            raise InvalidProofError("state answer is not a {statement, signature} map")
        statement, signature = obj["statement"], obj["signature"]
        expected = {"what", "session_id", "subject", "query", "value", "confidence", "head_seq", "evidence", "witness"}
        if not isinstance(statement, dict) or set(statement) != expected or not isinstance(signature, str):
            raise InvalidProofError(f"state answer statement fields must be {sorted(expected)}")
        if statement["what"] != ANSWER or statement["query"] not in QUERIES:
            raise InvalidProofError("state answer is not an answer to a known question")
        if not isinstance(statement["confidence"], str) or statement["confidence"] not in Confidence.__members__:
            raise InvalidProofError("state answer has no confidence level")
        if type(statement["head_seq"]) is not int or statement["head_seq"] < -1:
            raise InvalidProofError("state answer's head_seq is not an integer of at least -1")
        for name in ("session_id", "evidence"):
            if not isinstance(statement[name], str):
                raise InvalidProofError(f"state answer's {name} is not text")
        for name in ("subject", "witness"):
            if schema.PEER.check(statement[name]):
                raise InvalidProofError(f"state answer's {name} is not a peer id")
        return cls(dict(statement), signature)


def answer(
    witness: Identity,
    session_id: str,
    subject: str,
    query: str,
    state: ChainState | None,
    last_synced_ms: int | None,
    now_ms: int,
    local_value: Any = None,
) -> Answer:
    """Answer ``query`` about ``subject`` from the replayed ``state`` held here (None: never seen).

    ``local_value`` is the answer to a local question (``age`` in days, ``trust`` in thousandths).
    """
    if query not in QUERIES:
        raise ValueError(f"unknown state question {query!r}")
    if state is None or state.head_seq < 0:
        value: Any = UNKNOWN
        level, head_seq, evidence = Confidence.LOW, -1, ""
    else:
        value = chain_value(state, query) if query in CHAIN_QUERIES else local_value
        level, head_seq, evidence = confidence(last_synced_ms, now_ms), state.head_seq, state.head_hash.hex()
    statement = {
        "what": ANSWER,
        "session_id": session_id,
        "subject": subject,
        "query": query,
        "value": value,
        "confidence": level.name,
        "head_seq": head_seq,
        "evidence": evidence,
        "witness": str(witness.peer_id),
    }
    return Answer(statement, witness.sign(canonical_bytes(statement)).hex())


@dataclass(frozen=True)
class Agreement:
    """The outcome of a query: the agreed value (None when the threshold was not met) and who said what."""

    value: Any
    confidence: Confidence | None
    supporters: tuple[Answer, ...]
    dissenters: tuple[Answer, ...]

    @property
    def agreed(self) -> bool:
        return self.confidence is not None


def agree(
    answers: Iterable[Answer],
    threshold: int,
    witnesses: Sequence[str],
    minimum: Confidence = Confidence.LOW,
    *,
    session_id: str,
    subject: str,
    query: str,
) -> Agreement:
    """Threshold agreement over the valid answers of listed witnesses (one each) to this very question.

    Answers below ``minimum`` confidence are not counted (escrow needs HIGH). The attestation's
    confidence is the lowest among the supporters'.
    """
    valid: dict[str, Answer] = {}
    for item in answers:
        s = item.statement
        asked = (s["session_id"], s["subject"], s["query"]) == (session_id, subject, query)
        if asked and item.witness in witnesses and item.witness not in valid and item.signed():
            valid[item.witness] = item
    counted = [a for a in valid.values() if a.confidence >= minimum]
    tally = Counter(canonical_bytes(a.value) for a in counted)
    if tally:
        best, votes = tally.most_common(1)[0]
        if votes >= threshold:
            supporters = tuple(a for a in counted if canonical_bytes(a.value) == best)
            dissenters = tuple(a for a in valid.values() if a not in supporters)
            level = min(a.confidence for a in supporters)
            return Agreement(supporters[0].value, level, supporters, dissenters)
    return Agreement(None, None, (), tuple(valid.values()))


@dataclass(frozen=True)
class FalseAnswerProof:
    """A witness's HIGH-confidence answer about a chain, and that chain up to the head it named, disagreeing."""

    answer: Answer
    blocks: tuple[Block, ...]

    kind = "false_answer"

    @property
    def subject(self) -> str:
        """Whom the proof is against: the witness that answered falsely."""
        return self.answer.witness

    def verify(self, params: Parameters | None = None) -> None:
        s = self.answer.statement
        if not self.answer.signed():
            raise InvalidProofError("false-answer proof's answer has a bad signature")
        if s["query"] not in CHAIN_QUERIES or self.answer.confidence != Confidence.HIGH:
            raise InvalidProofError("only a HIGH-confidence answer about the chain can be proven false")
        if len(self.blocks) != s["head_seq"] + 1 or any(b.owner != s["subject"] for b in self.blocks):
            raise InvalidProofError("false-answer proof does not hold the subject's chain up to the answered head")
        state = ChainState(s["subject"], params or Parameters())
        try:
            for block in self.blocks:
                block.verify()
                state.apply(block)
        except (InvalidBlockError, ChainRuleError) as exc:
            raise InvalidProofError(f"false-answer proof's chain does not replay: {exc}") from exc
        if state.head_hash.hex() != s["evidence"]:
            raise InvalidProofError("false-answer proof's chain ends at another head than the answer named")
        if chain_value(state, s["query"]) == s["value"]:
            raise InvalidProofError(f"the answer {s['value']!r} is what the chain says: not false")

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "answer": self.answer.to_wire(), "blocks": [b.to_wire() for b in self.blocks]}

    @property
    def hash(self) -> bytes:
        answer = hash_value(self.answer.to_wire())
        return hash_value({"kind": self.kind, "answer": answer, "blocks": [b.hash for b in self.blocks]})

    def describe(self) -> str:
        s = self.answer.statement
        return f"false answer: {s['query']} of {s['subject'][:12]} at #{s['head_seq']} is not {s['value']!r}"


def attested_answers(block: Block) -> tuple[Answer, ...]:
    """The agreeing witnesses' signed answers a ``state_attestation`` block (spec 03) carries."""
    if block.kind != BlockKind.STATE_ATTESTATION:
        raise InvalidProofError(f"block {block.ref} is a {block.kind} block, not a state attestation")
    return tuple(Answer.from_wire(entry) for entry in block.payload["answers"])


def false_answer_from_wire(obj: Any) -> FalseAnswerProof:
    if not isinstance(obj, dict) or set(obj) != {"kind", "answer", "blocks"} or obj["kind"] != FalseAnswerProof.kind:
        raise InvalidProofError("false-answer proof is not a {kind, answer, blocks} map")
    if not isinstance(obj["blocks"], list) or len(obj["blocks"]) > MAX_ANSWER_PROOF_BLOCKS:
        raise InvalidProofError(f"false-answer proof's blocks are not a list of at most {MAX_ANSWER_PROOF_BLOCKS}")
    try:
        blocks = tuple(Block.from_wire(b) for b in obj["blocks"])
    except InvalidBlockError as exc:
        raise InvalidProofError(f"false-answer proof holds an invalid block: {exc}") from exc
    return FalseAnswerProof(Answer.from_wire(obj["answer"]), blocks)
