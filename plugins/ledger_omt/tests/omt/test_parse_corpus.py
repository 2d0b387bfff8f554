"""Conformance corpus, parse half: cases P01-P88 of the reference report (§5.3).

Each case is an input plus the tree facts we require. Where the original toolchain's
behaviour was a bug, the case id says ``ours`` and the comment says what we do instead.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.formatter import format_source
from omerta_ledger_omt.omt.parser import parse

Check = Callable[[ast.Module], object]


def actor(body: str) -> str:
    return f"actor A (\n{body}\n)"


def fn(body: str, params: str = "", rtype: str = "uint") -> str:
    return f"function f({params}) -> {rtype} (\n{body}\n)"


def only_actor(m: ast.Module) -> ast.ActorDecl:
    return m.actors[0]


def first_transition(m: ast.Module) -> ast.Transition:
    return only_actor(m).transitions[0]


def returned(m: ast.Module) -> ast.Expr:
    last = m.functions[0].body[-1]
    assert isinstance(last, ast.Return)
    return last.value


def op(e: ast.Expr) -> str:
    assert isinstance(e, ast.Binary), e
    return e.op


OK: list[tuple[str, str, Check]] = [
    ("P01", "", lambda m: m.header is None and not m.actors and m.decls == ()),
    (
        "P02",
        'transaction 07 "Demo"',
        lambda m: (m.header.id, m.header.name, m.header.description) == ("07", "Demo", None),
    ),
    ("P03", 'transaction 07 "Demo" "Longer text"', lambda m: m.header.description == "Longer text"),
    ("P07", "imports lib/base", lambda m: m.imports[0].path == "lib/base"),
    ("P08", '# before\ntransaction 1 "x" # after\n# end', lambda m: m.header.id == "1"),
    (
        "P09",
        'parameters ( T = 45 seconds "wait"  R = 0.25 fraction )',
        lambda m: (
            [(p.name, p.value, p.unit, p.description) for p in m.parameters]
            == [("T", 45, "seconds", "wait"), ("R", 0.25, "fraction", None)]
        ),
    ),
    ("P10", "parameters ()", lambda m: m.parameters == ()),
    ("P11", "parameters ( N = -3 )", lambda m: m.parameters[0].value == -3),
    ("P13", "parameters(N=2)", lambda m: m.parameters == parse("parameters ( N = 2 )").parameters),
    ("P14", "parameters (\n  # a comment\n  N = 2 # trailing\n)", lambda m: len(m.parameters) == 1),
    # ours: the original dropped a description given without a unit.
    (
        "P15-ours",
        'parameters ( N = 2 "desc" )',
        lambda m: (m.parameters[0].unit, m.parameters[0].description) == (None, "desc"),
    ),
    ("P16", "enum Color ( RED GREEN )", lambda m: [v.name for v in m.enums[0].values] == ["RED", "GREEN"]),
    (
        "P17",
        'enum Color "palette" ( RED # warm\n GREEN )',
        lambda m: m.enums[0].description == "palette" and len(m.enums[0].values) == 2,
    ),
    ("P18", "enum Nothing ()", lambda m: m.enums[0].values == ()),
    (
        "P19",
        "message PING from Alice to [Bob] ( n uint )",
        lambda m: (
            (m.messages[0].sender, m.messages[0].recipients, m.messages[0].signed, len(m.messages[0].fields))
            == ("Alice", ("Bob",), False, 1)
        ),
    ),
    (
        "P20",
        "message PING from Alice to [Bob, Carol] signed ( h hash )",
        lambda m: m.messages[0].signed and len(m.messages[0].recipients) == 2,
    ),
    ("P21", "message PING from Alice to [Bob] ()", lambda m: m.messages[0].fields == ()),
    (
        "P23",
        "message M from A to [B] ( xs list<peer_id>  m map<string, bool> )",
        lambda m: [str(f.type) for f in m.messages[0].fields] == ["list<peer_id>", "map<string, bool>"],
    ),
    ("P24", "message M from A to [B] ( xs list< uint > )", lambda m: str(m.messages[0].fields[0].type) == "list<uint>"),
    # ours: comments are allowed anywhere (the original rejected them inside field lists).
    ("P25-ours", "message M from A to [B] (\n # why\n n uint )", lambda m: len(m.messages[0].fields) == 1),
    ("P26", "block REC by [Alice, Bob] ( h hash )", lambda m: m.blocks[0].writers == ("Alice", "Bob")),
    ("P27", "block REC by [Alice] ()", lambda m: m.blocks[0].fields == ()),
    ("P28", 'actor Alice "desc" ( state IDLE initial )', lambda m: only_actor(m).description == "desc"),
    ("P29", actor("store ( a hash  b list<peer_id> )"), lambda m: [f.name for f in only_actor(m).store] == ["a", "b"]),
    ("P30", actor("store ()"), lambda m: only_actor(m).store == ()),
    (
        "P32",
        actor('trigger go(a hash, b list<peer_id>) in [S] "starts"'),
        lambda m: (
            (
                len(only_actor(m).triggers[0].params),
                only_actor(m).triggers[0].allowed_in,
                only_actor(m).triggers[0].description,
            )
            == (2, ("S",), "starts")
        ),
    ),
    (
        "P33",
        actor("state S initial terminal"),
        lambda m: only_actor(m).states[0].initial and only_actor(m).states[0].terminal,
    ),
    ("P34", actor('state S initial "waiting"'), lambda m: only_actor(m).states[0].description == "waiting"),
    ("P35", actor("S -> T auto"), lambda m: first_transition(m).event == ast.Event("auto")),
    ("P36", actor("S -> T on MSG_X ()"), lambda m: first_transition(m).event == ast.Event("message", "MSG_X")),
    (
        "P37",
        actor("S -> T on begin_work ()"),
        lambda m: first_transition(m).event == ast.Event("trigger", "begin_work"),
    ),
    ("P38", actor("S -> T on timeout(WAIT)"), lambda m: first_transition(m).event == ast.Event("timeout", "WAIT")),
    ("P42", actor("S -> T auto when k > 1 and ok == true"), lambda m: op(first_transition(m).guard) == "and"),
    (
        "P43",
        actor('S -> T on go when ok ( n = 1 ) else -> F ( STORE(why, "no") )'),
        lambda m: (
            (len(first_transition(m).actions), first_transition(m).else_target, len(first_transition(m).else_actions))
            == (1, "F", 1)
        ),
    ),
    (
        "P44",
        actor("S -> T on go ( store a, b, c )"),
        lambda m: first_transition(m).actions == (ast.StoreFields(("a", "b", "c")),),
    ),
    (
        "P45",
        actor("S -> T auto ( STORE(a, NOW()) )"),
        lambda m: first_transition(m).actions == (ast.StoreValue("a", ast.Call("NOW", ())),),
    ),
    (
        "P46",
        actor("S -> T auto ( h = HASH(d)  k = a + b )"),
        lambda m: [type(a) for a in first_transition(m).actions] == [ast.Compute, ast.Compute],
    ),
    (
        "P47",
        actor("S -> T auto ( SEND(dest, M1)  BROADCAST(group, M2) )"),
        lambda m: [type(a) for a in first_transition(m).actions] == [ast.Send, ast.Broadcast],
    ),
    (
        "P48",
        actor("S -> T on M ( APPEND(acc, message.payload) )"),
        lambda m: first_transition(m).actions[0].target == "acc",
    ),
    ("P49", actor("S -> T auto ()"), lambda m: first_transition(m).actions == ()),
    (
        "P50",
        actor("S -> T on M when check(v) ( store x )"),
        lambda m: (
            first_transition(m).guard == ast.Call("check", (ast.Name("v"),)) and len(first_transition(m).actions) == 1
        ),
    ),
    (
        "P51",
        actor("S -> T on M when ready ( store x )"),
        lambda m: first_transition(m).guard == ast.Name("ready") and len(first_transition(m).actions) == 1,
    ),
    # ours: comments may sit inside action blocks.
    ("P52-ours", actor("S -> T auto (\n # note\n x = 1 )"), lambda m: len(first_transition(m).actions) == 1),
    ("P53", fn("return a + b", "a uint, b uint"), lambda m: len(m.functions[0].params) == 2 and op(returned(m)) == "+"),
    (
        "P60",
        'native function g(x string) -> bool "pkg.mod"',
        lambda m: m.functions[0].native and m.functions[0].library == "pkg.mod",
    ),
    (
        "P61",
        fn("t = 0\nFOR x IN xs ( t = t + x  u = t )\nreturn t", "xs list<uint>"),
        lambda m: (
            [type(s) for s in m.functions[0].body] == [ast.Assign, ast.ForLoop, ast.Return]
            and len(m.functions[0].body[1].body) == 2
        ),
    ),
    (
        "P62",
        fn("t = 0\nFOR x IN xs t = t + x\nreturn t", "xs list<uint>"),
        lambda m: len(m.functions[0].body[1].body) == 1,
    ),
    (
        "P63",
        fn("FOR v IN d m[v.k] = v.c\nreturn m", "d list<dict>"),
        lambda m: isinstance(m.functions[0].body[0].body[0], ast.IndexAssign),
    ),
    ("P64", fn("return 1 + 2 * 3"), lambda m: op(returned(m)) == "+" and op(returned(m).right) == "*"),
    ("P65", fn("return (1 + 2) * 3"), lambda m: op(returned(m)) == "*" and op(returned(m).left) == "+"),
    ("P66", fn("return a - b - c"), lambda m: op(returned(m)) == "-" and op(returned(m).left) == "-"),
    ("P67", fn("return a or b and c"), lambda m: op(returned(m)) == "or" and op(returned(m).right) == "and"),
    (
        "P68",
        fn("return not a and b"),
        lambda m: op(returned(m)) == "and" and returned(m).left == ast.Unary("not", ast.Name("a")),
    ),
    ("P69", fn("return a + b > c * d"), lambda m: op(returned(m)) == ">"),
    ("P70", fn('return IF x > 0 THEN "p" ELSE "n"'), lambda m: isinstance(returned(m), ast.Conditional)),
    (
        "P71",
        fn("return -(a + b)"),
        lambda m: returned(m) == ast.Unary("-", ast.Binary("+", ast.Name("a"), ast.Name("b"))),
    ),
    ("P72", fn("return ((((x))))"), lambda m: returned(m) == ast.Name("x")),
    (
        "P73",
        fn("return {...base, extra 1}"),
        lambda m: (
            [(e.name, e.value) for e in returned(m).entries] == [(None, ast.Name("base")), ("extra", ast.Literal(1))]
        ),
    ),
    ("P74", fn("return {a 1, b (c / d)}"), lambda m: op(returned(m).entries[1].value) == "/"),
    ("P75", fn("return rec.[key]"), lambda m: returned(m) == ast.DynamicField(ast.Name("rec"), ast.Name("key"))),
    (
        "P76",
        fn("return x.a.b[0][1]"),
        lambda m: (
            returned(m)
            == ast.Index(
                ast.Index(ast.FieldAccess(ast.FieldAccess(ast.Name("x"), "a"), "b"), ast.Literal(0)), ast.Literal(1)
            )
        ),
    ),
    ("P77", fn("return MAP(xs, x => x.name)"), lambda m: isinstance(returned(m).args[1], ast.Lambda)),
    # The parser does not check states: the validator does (see V06/V07).
    ("P80", "actor A ( A -> B auto )", lambda m: first_transition(m).source == "A"),
    (
        "P82",
        actor("S -> T auto when (a > 1 or b)\n    and (c or d)"),
        lambda m: op(first_transition(m).guard) == "and",
    ),
    # ours: the original mangled unknown generic names.
    ("P84-ours", "message M from A to [B] ( x set<int> )", lambda m: str(m.messages[0].fields[0].type) == "set<int>"),
    # ours: several store blocks merge (the original kept only the last).
    (
        "P86-ours",
        actor("store ( a hash )\nstore ( b hash )"),
        lambda m: [f.name for f in only_actor(m).store] == ["a", "b"],
    ),
    # ours: exponents are numbers (the original read 1e5 as 1 with unit 'e5').
    ("P87-ours", "parameters ( N = 1e5 )", lambda m: (m.parameters[0].value, m.parameters[0].unit) == (100000.0, None)),
    # E.A is field access in the tree; the validator resolves it as an enum reference (V27).
    ("P88", fn("return E.A"), lambda m: returned(m) == ast.FieldAccess(ast.Name("E"), "A")),
]

ERR: list[tuple[str, str, str]] = [
    ("P04", 'transaction "Demo"', "expected a name or a number"),
    ("P05", 'transaction 07 "unterminated', "unterminated string"),
    ("P06", 'transaction 07 "line\nbreak"', "unterminated string"),
    ("P12", "parameters ( N = 2", "unexpected end of file"),
    ("P22", "message PING from Alice to [Bob ()", "unexpected '('"),
    ("P31", actor("store ( a list< )"), "unexpected ')'"),
    ("P39", actor("S T auto"), "unexpected 'T'"),
    ("P40", actor("S -> T auto else -> S"), "unexpected 'else'"),
    # ours: keywords are reserved, so a guard cannot be the identifier 'when'.
    ("P41-ours", actor("S -> T auto when when"), "unexpected 'when'"),
    ("P54", fn(""), "unexpected ')'"),
    ("P55", fn("# only a comment"), "unexpected ')'"),
    ("P56", fn("RETURN 1 +"), "unexpected ')'"),
    ("P57", fn("RETURN FILTER(xs, x =>)"), "unexpected ')'"),
    ("P58", fn("return 1", rtype="map<uint>"), "type map takes 2 type argument(s), got 1"),
    ("P59", fn("return 1", rtype="list<uint, bool>"), "type list takes 1 type argument(s), got 2"),
    # ours: only named functions can be called (the original accepted 1()).
    ("P78-ours", fn("return 1()"), "only a named function can be called"),
    # ours: a keyword is not a type name (the original parsed a return type 'function').
    ("P79-ours", fn("return 1", rtype="function"), "unexpected 'function'"),
    # ours: 'state' is a keyword, not a store field name (the original parsed it, then rejected it).
    ("P81-ours", actor("store ( state hash )"), "unexpected 'state'"),
    ("P83", "invalid_top_level foo", "unexpected 'invalid_top_level'"),
    # ours: method-call syntax is rejected (the original silently lost the callee).
    ("P85-ours", fn("return a.b(c)"), "only a named function can be called"),
]


@pytest.mark.parametrize(("case", "source", "check"), OK, ids=[c[0] for c in OK])
def test_parses(case: str, source: str, check: Check) -> None:
    module = parse(source)
    assert check(module)
    # Every accepted input also survives formatting unchanged in meaning.
    assert parse(format_source(source)) == module


@pytest.mark.parametrize(("case", "source", "message"), ERR, ids=[c[0] for c in ERR])
def test_rejects_with_position(case: str, source: str, message: str) -> None:
    with pytest.raises(OmtSyntaxError) as info:
        parse(source, "case.omt")
    err = info.value
    assert message in err.message
    assert err.line >= 1 and err.column >= 1
    assert str(err).startswith(f"case.omt:{err.line}:{err.column}: ")


def test_corpus_is_complete() -> None:
    ids = {c[0].split("-")[0] for c in OK} | {c[0].split("-")[0] for c in ERR}
    assert ids == {f"P{i:02d}" for i in range(1, 89)}


def test_every_node_has_a_position() -> None:
    module = parse(actor("store ( a hash )\nstate S initial\nS -> S on M when a == 1 ( x = f(a)  SEND(a, M) )"))
    stack: list[object] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
        elif isinstance(node, ast.Node):
            if not isinstance(node, ast.Module | ast.TypeRef):
                assert node.line >= 1 and node.column >= 1, node
            stack.extend(getattr(node, f) for f in node.__dataclass_fields__)
