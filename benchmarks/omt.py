"""Throughput of the .omt toolchain: parse and validate (lines per second) on the shipped
specs and on a generated large spec, and interpreter steps per second playing spec 00.

Run with no arguments; prints headline figures last, one per line as ``name: value``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from omerta_ledger_omt.omt.loader import shipped_spec, shipped_specs_dir
from omerta_ledger_omt.omt.parser import parse
from omerta_ledger_omt.omt.player import play
from omerta_ledger_omt.omt.runtime import Program
from omerta_ledger_omt.omt.scenarios import scenarios_for
from omerta_ledger_omt.omt.validator import validate

MIN_SECONDS = 3.0  # each measurement repeats until it has run this long


def generated_spec(actors: int = 40, states: int = 40) -> str:
    """A large valid spec: ring-shaped actors exchanging one message per step."""
    lines = ['transaction 99 "Generated" "Benchmark input"', "parameters (", "    WAIT = 30 seconds", ")"]
    lines.append("function bump(x uint) -> uint (\n    y = x + 1\n    RETURN IF y > 100 THEN 0 ELSE y\n)")
    for a in range(actors):
        lines.append(f"message STEP_{a} from Actor{a} to [Actor{(a + 1) % actors}] signed ( n uint  tag hash )")
    for a in range(actors):
        prev = (a - 1) % actors
        lines.append(f'actor Actor{a} "Generated actor {a}" (')
        lines.append("    store ( n uint  tag hash  peer peer_id  seen list<uint> )")
        lines.append("    trigger start(peer peer_id) in [S0]")
        lines.append("    state S0 initial")
        lines += [f"    state S{s}" for s in range(1, states)]
        lines.append("    state DONE terminal")
        lines.append("    S0 -> S1 on start ( store peer  n = 0  tag = HASH(peer, n) )")
        for s in range(1, states - 1):
            lines.append(
                f"    S{s} -> S{s + 1} on STEP_{prev} when message.n >= n and LENGTH(seen) < 1000 "
                f"( n = bump(message.n)  APPEND(seen, n)  tag = HASH(tag, n)  SEND(peer, STEP_{a}) )"
            )
            lines.append(f"    S{s} -> DONE on timeout(WAIT)")
        lines.append(f"    S{states - 1} -> DONE auto")
        lines.append(")")
    return "\n".join(lines) + "\n"


def rate(work: Callable[[], int]) -> float:
    """Units of work per second, repeating ``work`` for at least MIN_SECONDS."""
    done = 0
    start = time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return done / elapsed


def parse_rate(texts: list[str]) -> float:
    lines = sum(len(t.splitlines()) for t in texts)

    def work() -> int:
        for t in texts:
            parse(t)
        return lines

    return rate(work)


def validate_rate(texts: list[str]) -> float:
    lines = sum(len(t.splitlines()) for t in texts)
    modules = [parse(t) for t in texts]

    def work() -> int:
        for m in modules:
            validate(m)
        return lines

    return rate(work)


def main() -> None:
    specs = [p.read_text() for p in sorted(shipped_specs_dir().glob("*.omt"))]
    big = generated_spec()
    parse(big)  # builds the parser tables once
    print(
        f"shipped specs: {sum(len(t.splitlines()) for t in specs)} lines; generated spec: {len(big.splitlines())} lines"
    )
    print(f"shipped specs:  parse {parse_rate(specs):9.0f} lines/s  validate {validate_rate(specs):9.0f} lines/s")
    print(f"generated spec: parse {parse_rate([big]):9.0f} lines/s  validate {validate_rate([big]):9.0f} lines/s")
    program = Program.load(shipped_spec("00_escrow_lock"))
    scenario = scenarios_for("00_escrow_lock")["happy"]
    steps = rate(lambda: play(program, scenario).events)
    print("interpreter: spec 00 happy path (lock + top-up, 7 peers), every message Ed25519-signed and verified")
    print(f"omt_parse_lines_per_s: {parse_rate([*specs, big]):.0f}")
    print(f"omt_validate_lines_per_s: {validate_rate([*specs, big]):.0f}")
    print(f"omt_interpreter_steps_per_s: {steps:.0f}")


if __name__ == "__main__":
    main()
