"""Execution semantics of the interpreter, one rule per test."""

from __future__ import annotations

import pytest
from omerta_ledger_omt.omt.errors import OmtError, OmtRuntimeError
from omerta_ledger_omt.omt.parser import parse
from omerta_ledger_omt.omt.runtime import (
    ActorInstance,
    AppendBlockAction,
    Deliver,
    Envelope,
    FireTrigger,
    MemoryLedger,
    MessageBuffered,
    MessageDropped,
    Program,
    SendAction,
    SessionTable,
    StateChanged,
    Tick,
    standard_natives,
)
from omerta_ledger_omt.omt.runtime.session import MAX_HELD_PER_SESSION, MAX_HELD_SESSIONS
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

from omerta_core.identity import Identity

ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)

SPEC = """
parameters ( WAIT = 10 seconds )
message PING from Pinger to [Ponger] signed ( n uint )
message NOTE from Pinger to [Ponger] ( n uint )
block SEEN by [Ponger] ( n uint  timestamp timestamp )
actor Pinger (
    store ( n uint  peer peer_id )
    trigger go(peer peer_id, n uint) in [IDLE]
    state IDLE initial
    state DONE terminal
    IDLE -> DONE on go ( store peer, n  SEND(peer, PING)  SEND(peer, NOTE) )
)
actor Ponger (
    store ( n uint  seen list<uint> )
    state IDLE initial
    state GOT
    state BIG terminal
    state SMALL terminal
    state LATE terminal
    IDLE -> GOT on PING when message.n > 100 ( store n ) else -> SMALL ( store n )
    IDLE -> BIG on PING
    GOT -> GOT on NOTE ( APPEND(seen, message.n) )
    GOT -> BIG auto when LENGTH(seen) >= 2 ( APPEND(chain, SEEN) )
    GOT -> LATE on timeout(WAIT)
)
"""


def program(text: str = SPEC) -> Program:
    return Program.from_module(parse(text))


def ponger(session: str = "s1", roster: dict[str, str] | None = None) -> ActorInstance:
    return ActorInstance(
        program(), "Ponger", signer=BOB, ledger=MemoryLedger(BOB.peer_id), session=session, roster=roster
    )


def envelope(
    kind: str, n: int, signer: Identity = ALICE, session: str = "s1", sign_as: Identity | None = None
) -> Envelope:
    env = Envelope(kind, session, str(signer.peer_id), str(BOB.peer_id), {"n": n})
    if kind == "PING":
        sig = (sign_as or signer).sign(canonical_bytes(env.signed_part())).hex()
        env = Envelope(env.type, env.session, env.sender, env.recipient, env.payload, sig)
    return env


def states(actions: list[object]) -> list[tuple[str, str]]:
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def test_guard_true_takes_the_main_branch() -> None:
    p = ponger()
    assert states(p.handle(Deliver(envelope("PING", 500)), 0.0)) == [("IDLE", "GOT")]
    assert p.store["n"] == 500


def test_false_guard_with_else_takes_the_else_branch_and_stops() -> None:
    p = ponger()
    assert states(p.handle(Deliver(envelope("PING", 5)), 0.0)) == [("IDLE", "SMALL")]


def test_exactly_one_transition_per_event_then_auto() -> None:
    p = ponger()
    p.handle(Deliver(envelope("PING", 500)), 0.0)
    p.handle(Deliver(envelope("NOTE", 1)), 1.0)
    actions = p.handle(Deliver(envelope("NOTE", 2)), 2.0)
    assert states(actions) == [("GOT", "GOT"), ("GOT", "BIG")]
    assert [a.block for a in actions if isinstance(a, AppendBlockAction)] == ["SEEN"]
    assert next(a for a in actions if isinstance(a, AppendBlockAction)).payload == {"n": 500, "timestamp": 2.0}


def test_early_message_is_buffered_and_replayed() -> None:
    p = ponger()
    assert isinstance(p.handle(Deliver(envelope("NOTE", 1)), 0.0)[0], MessageBuffered)
    p.handle(Deliver(envelope("PING", 500)), 1.0)
    assert p.store["seen"] == [1]


def test_timer_restarts_only_on_state_change() -> None:
    p = ponger()
    p.handle(Deliver(envelope("PING", 500)), 0.0)
    p.handle(Deliver(envelope("NOTE", 1)), 5.0)  # self-loop: the timer keeps running
    assert p.next_deadline() == 10.0
    assert p.handle(Tick(), 9.9) == []
    assert states(p.handle(Tick(), 10.0)) == [("GOT", "LATE")]


def test_bad_signature_wrong_session_and_wrong_role_are_dropped() -> None:
    p = ponger(roster={str(ALICE.peer_id): "Pinger", str(BOB.peer_id): "Ponger"})
    forged = p.handle(Deliver(envelope("PING", 500, sign_as=BOB)), 0.0)
    assert forged == [MessageDropped(envelope("PING", 500, sign_as=BOB), "invalid signature")]
    other = p.handle(Deliver(envelope("PING", 500, session="s2")), 0.0)
    assert isinstance(other[0], MessageDropped) and other[0].reason == "wrong session"
    carol = Identity.from_seed(b"c" * 32)
    impostor = p.handle(Deliver(envelope("PING", 500, signer=carol)), 0.0)
    assert isinstance(impostor[0], MessageDropped) and impostor[0].reason == "sender does not play Pinger"
    assert p.state == "IDLE"


def test_trigger_outside_allowed_states_is_refused() -> None:
    pinger = ActorInstance(program(), "Pinger", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s1")
    actions = pinger.handle(FireTrigger("go", {"peer": str(BOB.peer_id), "n": 7}), 0.0)
    sends = [a.envelope for a in actions if isinstance(a, SendAction)]
    assert [e.type for e in sends] == ["PING", "NOTE"]
    assert sends[0].signature is not None and sends[1].signature is None
    with pytest.raises(OmtRuntimeError, match="not allowed in state DONE"):
        pinger.handle(FireTrigger("go", {"peer": str(BOB.peer_id), "n": 7}), 1.0)


def test_signed_message_round_trip_between_instances() -> None:
    pinger = ActorInstance(program(), "Pinger", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s1")
    sends = [
        a.envelope
        for a in pinger.handle(FireTrigger("go", {"peer": str(BOB.peer_id), "n": 700}), 0.0)
        if isinstance(a, SendAction)
    ]
    p = ponger()
    for env in sends:
        p.handle(Deliver(env), 0.1)
    assert p.state == "GOT" and p.store["seen"] == [700]


def test_auto_loop_is_stopped() -> None:
    looping = """actor A ( trigger go() in [W]
        state W initial  state X  state Y  state Z terminal
        W -> X on go  X -> Y auto  Y -> X auto  X -> Z on timeout(T) )
    parameters ( T = 1 seconds )"""
    inst = ActorInstance(program(looping), "A", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s")
    with pytest.raises(OmtRuntimeError, match="without waiting"):
        inst.handle(FireTrigger("go"), 0.0)


def test_missing_native_fails_at_creation() -> None:
    spec = 'native function probe(x uint) -> bool "host.probe"\nactor A ( state S initial terminal )'
    with pytest.raises(OmtRuntimeError, match="probe"):
        ActorInstance(program(spec), "A", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s")
    natives = standard_natives().with_natives({"probe": lambda ctx, x: True})
    ActorInstance(program(spec), "A", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s", natives=natives)


def test_program_refuses_a_module_with_errors() -> None:
    with pytest.raises(OmtError, match="no initial state"):
        program("actor A ( state S terminal )")


def test_session_table_opens_and_routes_per_session() -> None:
    prog = program()
    table = SessionTable(
        prog,
        {"Ponger"},
        lambda session, actor, now: ActorInstance(
            prog, actor, signer=BOB, ledger=MemoryLedger(BOB.peer_id), session=session, now=now
        ),
    )
    table.deliver(envelope("PING", 500, session="one"), 0.0)
    table.deliver(envelope("PING", 5, session="two"), 0.0)
    assert table.get("one", "Ponger").state == "GOT"
    assert table.get("two", "Ponger").state == "SMALL"
    assert table.next_deadline() == 10.0
    assert states(table.tick(10.0)) == [("GOT", "LATE")]


def ponger_table() -> SessionTable:
    prog = program()
    return SessionTable(
        prog,
        {"Ponger"},
        lambda session, actor, now: ActorInstance(
            prog, actor, signer=BOB, ledger=MemoryLedger(BOB.peer_id), session=session, now=now
        ),
    )


def test_session_table_holds_messages_that_arrive_before_their_session_opens() -> None:
    table = ponger_table()
    early = [envelope("NOTE", n, session="three") for n in (1, 2)]
    assert [table.deliver(e, 0.0) for e in early] == [[MessageBuffered(e)] for e in early]
    assert table.get("three", "Ponger") is None
    # the opening message creates the instance and the held messages follow it, in order of arrival
    actions = table.deliver(envelope("PING", 500, session="three"), 1.0)
    assert states(actions) == [("IDLE", "GOT"), ("GOT", "GOT"), ("GOT", "GOT"), ("GOT", "BIG")]
    assert table.get("three", "Ponger").store["seen"] == [1, 2]
    assert table.held == {}


def test_held_messages_are_bounded_and_dropped_when_not_for_our_roles() -> None:
    table = ponger_table()
    for n in range(MAX_HELD_PER_SESSION):
        assert isinstance(table.deliver(envelope("NOTE", n, session="s"), 0.0)[0], MessageBuffered)
    [over] = table.deliver(envelope("NOTE", 99, session="s"), 0.0)
    assert isinstance(over, MessageDropped) and "too many messages held" in over.reason
    for n in range(MAX_HELD_SESSIONS):
        table.deliver(envelope("NOTE", 1, session=f"junk{n}"), 0.0)
    assert len(table.held) == MAX_HELD_SESSIONS and "s" not in table.held, "the oldest session goes first"
    table.close("junk7")
    assert "junk7" not in table.held
    pinger_only = SessionTable(program(), {"Pinger"}, lambda session, actor, now: ponger())
    [dropped] = pinger_only.deliver(envelope("NOTE", 1, session="x"), 0.0)
    assert isinstance(dropped, MessageDropped) and dropped.reason == "no session for this message"
    assert pinger_only.held == {}


def test_functions_loops_and_lambdas_evaluate() -> None:
    spec = """
    function total(xs list<map<string, uint>>) -> uint (
        t = 0
        FOR x IN xs ( t = t + x.v )
        RETURN t
    )
    function index(xs list<map<string, uint>>) -> map<string, uint> (
        m = {}
        FOR x IN xs m[x.k] = x.v
        RETURN m
    )
    actor A (
        store ( r uint  m map<string, uint>  big list<uint> )
        trigger go(xs list<map<string, uint>>) in [S]
        state S initial
        state D terminal
        S -> D on go ( r = total(xs)  m = index(xs)  big = MAP(FILTER(xs, x => x.v > 1), x => x.v * 10) )
    )
    """
    inst = ActorInstance(program(spec), "A", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s")
    inst.handle(FireTrigger("go", {"xs": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]}), 0.0)
    assert inst.store["r"] == 3
    assert inst.store["m"] == {"a": 1, "b": 2}
    assert inst.store["big"] == [20]


def test_failed_event_leaves_the_instance_unchanged() -> None:
    spec = """actor A (
        store ( n uint )
        trigger go(x uint) in [S]
        state S initial
        state D terminal
        S -> D on go ( n = x  m = ABORT("stop") )
    )"""
    inst = ActorInstance(program(spec), "A", signer=ALICE, ledger=MemoryLedger(ALICE.peer_id), session="s")
    with pytest.raises(OmtRuntimeError, match="ABORT: stop"):
        inst.handle(FireTrigger("go", {"x": 3}), 0.0)
    assert (inst.state, inst.store["n"]) == ("S", None)


def test_a_program_takes_parameter_overrides_and_refuses_unknown_ones() -> None:
    base = program()
    short = base.with_parameters({"WAIT": 2})
    assert short.parameter("WAIT") == 2 and base.parameter("WAIT") == 10
    with pytest.raises(OmtError, match="no parameter 'NO_SUCH'"):
        base.with_parameters({"NO_SUCH": 1})
