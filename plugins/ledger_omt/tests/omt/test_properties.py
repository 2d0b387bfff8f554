"""Property tests: formatting is idempotent and keeps the tree; no input crashes the toolchain."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.formatter import format_module, format_source
from omerta_ledger_omt.omt.linter import style_rules, usage_rules
from omerta_ledger_omt.omt.loader import shipped_specs_dir
from omerta_ledger_omt.omt.parser import parse
from omerta_ledger_omt.omt.validator import validate

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
