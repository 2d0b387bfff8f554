"""Property tests: formatting is idempotent and keeps the tree; no input crashes the toolchain."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.formatter import format_module, format_source
from omerta_ledger_omt.omt.linter import style_rules, usage_rules
from omerta_ledger_omt.omt.loader import shipped_specs_dir
from omerta_ledger_omt.omt.parser import parse
from omerta_ledger_omt.omt.validator import validate

from omerta_core.fuzz import mutate

NAMES = st.sampled_from(["a", "b", "xs", "peer", "count_1", "Value", "E"])
FUNCS = st.sampled_from(["f", "LENGTH", "HASH", "g2"])
LITERALS = st.one_of(
    st.integers(-1000, 1000).map(ast.Literal),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(ast.Literal),
    st.text(st.characters(blacklist_characters='"\n\r', blacklist_categories=("Cs",)), max_size=8).map(ast.Literal),
    st.sampled_from([True, False, None]).map(ast.Literal),
)


def _compound(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = st.sampled_from(["or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"])
    return st.one_of(
        st.builds(ast.Binary, ops, inner, inner).filter(
            lambda b: not (b.op in ("==", "!=", "<", "<=", ">", ">=") and _is_cmp(b.left) and _is_cmp(b.right))
        ),
        st.builds(ast.Unary, st.sampled_from(["not", "-"]), inner).filter(
            lambda u: (
                not (u.op == "-" and isinstance(u.operand, ast.Literal) and isinstance(u.operand.value, int | float))
            )
        ),
        st.builds(ast.Conditional, inner, inner, inner),
        st.builds(ast.Call, FUNCS, st.lists(inner, max_size=3).map(tuple)),
        st.builds(ast.FieldAccess, inner, NAMES),
        st.builds(ast.DynamicField, inner, inner),
        st.builds(ast.Index, inner, inner),
        st.builds(ast.Lambda, NAMES, inner),
        st.builds(ast.ListLiteral, st.lists(inner, max_size=3).map(tuple)),
        st.builds(
            ast.Struct,
            st.lists(st.builds(ast.StructEntry, st.one_of(st.none(), NAMES), inner), max_size=3).map(tuple),
        ),
    )


def _is_cmp(e: ast.Expr) -> bool:
    return isinstance(e, ast.Binary) and e.op in ("==", "!=", "<", "<=", ">", ">=")


EXPRS = st.recursive(st.one_of(NAMES.map(ast.Name), LITERALS), _compound, max_leaves=12)


def _function(e: ast.Expr) -> ast.Module:
    return ast.Module((ast.FunctionDecl("f", (), ast.TypeRef("uint"), (ast.Return(e),)),))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRS)
def test_printed_expressions_parse_back_to_the_same_tree(e: ast.Expr) -> None:
    module = _function(e)
    text = format_module(module)
    assert parse(text) == module
    assert format_source(text) == text


def test_shipped_specs_are_formatted_and_round_trip() -> None:
    for path in sorted(shipped_specs_dir().glob("*.omt")):
        text = path.read_text()
        assert format_source(text) == text, path.name
        assert parse(format_source(text)) == parse(text)


TOKENS = st.sampled_from(
    [
        "transaction", "imports", "parameters", "enum", "message", "from", "to", "signed", "block", "by",
        "actor", "store", "trigger", "in", "state", "initial", "terminal", "on", "auto", "timeout", "when",
        "else", "lookup", "function", "native", "RETURN", "FOR", "IN", "IF", "THEN", "ELSE", "and", "or", "not",
        "true", "null", "STORE", "SEND", "BROADCAST", "APPEND", "chain", "message", "A", "B", "S", "T", "x", "f",
        "LENGTH", "1", "2.5", '"s"', "(", ")", "[", "]", "{", "}", ",", ".", "/", "=", "->", "=>", "...", "==",
        "!=", "<", ">", "<=", ">=", "+", "-", "*", "# c\n", "\n", "list", "map", "uint", "1e3",
    ]
)  # fmt: skip


def _survives(text: str) -> None:
    try:
        module = parse(text)
    except OmtSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
        return
    diagnostics = validate(module) + usage_rules(module) + style_rules(module)
    assert all(d.severity in ("error", "warning") for d in diagnostics)
    assert parse(format_source(text)) == module


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=40))
def test_random_token_streams_only_produce_diagnostics(tokens: list[str]) -> None:
    _survives(" ".join(tokens))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_produces_diagnostics(text: str) -> None:
    _survives(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.data())
def test_mutated_specs_only_produce_diagnostics(seed: int, data: st.DataObject) -> None:
    source = (shipped_specs_dir() / "01_cabal_attestation.omt").read_text()
    cut = data.draw(st.integers(0, len(source)))
    insert = data.draw(TOKENS)
    _survives(source[:cut] + " " + insert + " " + source[cut:])


UPPER = st.sampled_from(["IDLE", "WAIT", "DONE", "S1", "REQ", "VOTE"])
LOWER = st.sampled_from(["go", "x", "votes", "peer", "amount"])
DESC = st.one_of(
    st.none(), st.text(st.characters(blacklist_characters='"\n\r#', blacklist_categories=("Cs",)), max_size=10)
)
TYPES = st.sampled_from(
    [
        ast.TypeRef("uint"),
        ast.TypeRef("list", (ast.TypeRef("peer_id"),)),
        ast.TypeRef("map", (ast.TypeRef("string"), ast.TypeRef("any"))),
    ]
)
FIELDS = st.lists(st.builds(ast.FieldDecl, LOWER, TYPES), max_size=4).map(tuple)
ACTIONS = st.lists(
    st.one_of(
        st.builds(ast.StoreFields, st.lists(LOWER, min_size=1, max_size=3).map(tuple)),
        st.builds(ast.StoreValue, LOWER, EXPRS),
        st.builds(ast.Compute, LOWER, EXPRS, st.booleans()),
        st.builds(ast.Send, EXPRS, UPPER),
        st.builds(ast.Broadcast, LOWER, UPPER),
        st.builds(ast.AppendList, LOWER, EXPRS),
        st.builds(ast.AppendBlock, UPPER),
    ),
    max_size=3,
).map(tuple)
EVENTS = st.one_of(
    st.just(ast.Event("auto")),
    st.builds(ast.Event, st.just("message"), UPPER),
    st.builds(ast.Event, st.just("trigger"), LOWER),
    st.builds(ast.Event, st.just("timeout"), UPPER),
)


@st.composite
def transitions(draw: st.DrawFn) -> ast.Transition:
    guard = draw(st.one_of(st.none(), EXPRS))
    has_else = guard is not None and draw(st.booleans())
    return ast.Transition(
        draw(UPPER), draw(UPPER), draw(EVENTS), guard, draw(ACTIONS),
        draw(UPPER) if has_else else None, draw(ACTIONS) if has_else else (),
    )  # fmt: skip


ACTOR_ITEMS = st.one_of(
    st.builds(ast.StoreDecl, FIELDS),
    st.builds(ast.TriggerDecl, LOWER, FIELDS, st.lists(UPPER, min_size=1, max_size=2).map(tuple), DESC),
    st.builds(ast.StateDecl, UPPER, st.booleans(), st.booleans(), DESC),
    transitions(),
)
DECLS = st.one_of(
    st.builds(ast.Header, st.sampled_from(["00", "7", "tx"]), st.text("abc ", max_size=5), DESC),
    st.builds(ast.Import, st.sampled_from(["shared/common", "lib"])),
    st.builds(
        ast.ParameterBlock,
        st.lists(
            st.builds(ast.Parameter, UPPER, st.one_of(st.integers(-50, 50), st.sampled_from([0.5, 2.25]), UPPER),
                      st.one_of(st.none(), st.just("seconds")), DESC),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(ast.EnumDecl, st.sampled_from(["Color", "Verdict"]), DESC,
              st.lists(st.builds(ast.EnumValue, UPPER), max_size=3).map(tuple)),
    st.builds(ast.MessageDecl, UPPER, st.just("Alice"), st.just(("Bob", "Carol")), st.booleans(), FIELDS),
    st.builds(ast.BlockDecl, UPPER, st.just(("Alice",)), FIELDS),
    st.builds(ast.ActorDecl, st.sampled_from(["Alice", "Bob"]), DESC, st.lists(ACTOR_ITEMS, max_size=5).map(tuple)),
)  # fmt: skip
MODULES = st.lists(DECLS, max_size=5).map(lambda ds: ast.Module(tuple(ds)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODULES, st.data())
def test_printed_modules_parse_back_and_comments_survive(module: ast.Module, data: st.DataObject) -> None:
    text = format_module(module)
    assert parse(text) == module
    assert format_source(text) == text
    # Sprinkle comments at line ends and on their own lines: fmt keeps the tree, keeps every
    # comment, and is idempotent.
    lines = text.rstrip("\n").split("\n")
    marks = data.draw(st.lists(st.integers(0, max(0, len(lines) - 1)), max_size=4))
    for n, i in enumerate(sorted(set(marks), reverse=True)):
        if lines and data.draw(st.booleans()):
            lines[i] += f"  # note {n}"
        else:
            lines.insert(i, f"# own {n}")
    commented = "\n".join(lines) + "\n"
    once = format_source(commented)
    assert parse(once) == module
    assert format_source(once) == once
    for n in range(len(set(marks))):
        assert f"note {n}" in once or f"own {n}" in once


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(shipped_specs_dir().glob("*.omt"))), st.randoms(use_true_random=False))
def test_byte_mutated_specs_only_produce_diagnostics(path: Path, rng: random.Random) -> None:
    source = mutate(path.read_bytes(), rng).decode("utf-8", "replace")
    _survives(source)


def _function_returning(expression: str) -> str:
    return f"function f() -> uint (\n    RETURN {expression}\n)"


@pytest.mark.parametrize(
    "source",
    [
        _function_returning("9" * 5000),  # int() past Python's digit limit raised ValueError
        _function_returning("not " * 5000 + "1"),  # the validator recursed past Python's limit
        _function_returning("[" * 3000 + "]" * 3000),
        _function_returning(" + ".join(["1"] * 20_000)),
    ],
    ids=["5000-digit-number", "deep-not", "deep-list", "long-sum"],
)
def test_huge_numbers_and_deep_nesting_are_syntax_errors(source: str) -> None:
    with pytest.raises(OmtSyntaxError, match=r"too long|nested more than"):
        parse(source)
