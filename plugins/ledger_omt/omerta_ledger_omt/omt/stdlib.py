"""Signatures of the built-in functions every ``.omt`` program may call.

Shared by the validator (names, arity, result type) and the runtime (which implements
them in :mod:`.runtime.natives`). Names are upper case and match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinSignature:
    min_args: int
    max_args: int | None  # None: variadic
    returns: str  # a type kind: number, string, bool, list, map, any
    doc: str


BUILTINS: dict[str, BuiltinSignature] = {
    "LENGTH": BuiltinSignature(1, 1, "number", "number of items of a list, map or string"),
    "FILTER": BuiltinSignature(2, 2, "list", "items of a list for which the lambda holds"),
    "MAP": BuiltinSignature(2, 2, "list", "the lambda applied to each item"),
    "CONCAT": BuiltinSignature(1, None, "list", "lists joined in order"),
    "SORT": BuiltinSignature(1, 2, "list", "items sorted, optionally by a lambda key"),
    "UNIQUE": BuiltinSignature(1, 1, "list", "items with duplicates removed, first occurrence kept"),
    "CONTAINS": BuiltinSignature(2, 2, "bool", "true when the list (or map key set) holds the value"),
    "REMOVE": BuiltinSignature(2, 2, "list", "the list without every item equal to the value"),
    "SET_EQUALS": BuiltinSignature(2, 2, "bool", "true when both lists hold the same distinct items"),
    "HAS_KEY": BuiltinSignature(2, 2, "bool", "true when the map has the key"),
    "KEYS": BuiltinSignature(1, 1, "list", "sorted keys of a map"),
    "GET": BuiltinSignature(2, 3, "any", "map[key], or the default (null) when absent"),
    "SUM": BuiltinSignature(1, 1, "number", "sum of a list of numbers"),
    "MIN": BuiltinSignature(1, None, "number", "smallest of the arguments, or of one list"),
    "MAX": BuiltinSignature(1, None, "number", "largest of the arguments, or of one list"),
    "ABS": BuiltinSignature(1, 1, "number", "absolute value"),
    "FLOOR": BuiltinSignature(1, 1, "number", "largest integer not above the value"),
    "DIV": BuiltinSignature(2, 2, "number", "DIV(a, b): integer quotient rounded down, exact at any size (for money)"),
    "HASH": BuiltinSignature(1, None, "string", "hex SHA-256 of the canonical encoding of the arguments"),
    "SIGN": BuiltinSignature(1, 1, "string", "hex Ed25519 signature by this peer of the value's canonical encoding"),
    "VERIFY_SIG": BuiltinSignature(3, 3, "bool", "VERIFY_SIG(peer, value, signature): signature check"),
    "NOW": BuiltinSignature(0, 0, "number", "the time of the event being handled"),
    "LOAD": BuiltinSignature(1, 1, "any", "a store variable by name (a string)"),
    "READ": BuiltinSignature(2, 2, "any", "READ(peer, key): what this peer's ledger knows about another"),
    "SEEDED_SAMPLE": BuiltinSignature(3, 3, "list", "SEEDED_SAMPLE(seed, list, n): reproducible sample"),
    "RANDOM_BYTES": BuiltinSignature(1, 1, "string", "hex of n bytes derived from session, peer and a counter"),
    "GENERATE_ID": BuiltinSignature(0, 0, "string", "a fresh id derived like RANDOM_BYTES"),
    "CHAIN_HEAD": BuiltinSignature(0, 0, "string", "hash of this peer's newest block"),
    "CHAIN_SEGMENT": BuiltinSignature(1, 1, "list", "this peer's blocks from the given hash to the head"),
    "VERIFY_CHAIN_SEGMENT": BuiltinSignature(2, 2, "bool", "VERIFY_CHAIN_SEGMENT(peer, segment): links intact"),
    "CHAIN_CONTAINS_HASH": BuiltinSignature(2, 2, "bool", "true when the segment holds a block with the hash"),
    "ABORT": BuiltinSignature(1, 1, "any", "stop the actor with an error (a spec bug)"),
}

# Calls that change state or send: never allowed inside a function body.
IMPURE = {"STORE", "SEND", "BROADCAST", "APPEND"}
