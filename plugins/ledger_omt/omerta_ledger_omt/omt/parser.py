"""Parse ``.omt`` text into the typed tree of :mod:`.ast`.

LALR(1) through lark over the tokens of :mod:`.lexer`; syntax errors become
:class:`OmtSyntaxError` with ``file:line:col`` and what was expected. Touches no files
except through :func:`parse_file`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.lexer import (
    ANY_CASE_KEYWORDS,
    LOWER_KEYWORDS,
    TOP_LEVEL_KEYWORDS,
    UPPER_KEYWORDS,
    Comment,
    tokenize,
)

# How expected terminals read in an error message.
TOKEN_DESCRIPTIONS = {
    "IDENT": "a name", "ASSIGN_NAME": "'name ='", "NUMBER": "a number", "STRING": "a string",
    "LPAR": "'('", "ACT_LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'",
    "RBRACE": "'}'", "COMMA": "','", "DOT": "'.'", "SLASH": "'/'", "EQUAL": "'='", "ARROW": "'->'",
    "FATARROW": "'=>'", "ELLIPSIS": "'...'", "EQEQ": "'=='", "NOTEQ": "'!='", "LE": "'<='", "GE": "'>='",
    "LT": "'<'", "GT": "'>'", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "STORE_ACTION": "'STORE'",
    "$END": "end of file", "SEND": "'SEND'", "BROADCAST": "'BROADCAST'", "APPEND": "'APPEND'",
}  # fmt: skip

GENERIC_ARITY = {"list": 1, "map": 2}
#: Deepest syntax tree accepted: the shipped specs nest about 12 levels; the validator, formatter and
#: runtime walk trees recursively, so this keeps every later stage far from Python's recursion limit.
MAX_NESTING = 100
#: Longest number literal: far above any amount or duration, below Python's int-to-text digit limit.
MAX_NUMBER_CHARS = 100


class _TokenListLexer(Lexer):
    """Hands lark the token list made by :func:`tokenize`."""

    def __init__(self, lexer_conf: Any) -> None:
        pass

    def lex(self, data: Any) -> Any:  # type: ignore[override]
        yield from data


def _describe(name: str) -> str:
    return TOKEN_DESCRIPTIONS.get(name, f"'{name.lower()}'")


def _pos(meta: Any) -> dict[str, int]:
    if meta.empty:
        return {}
    return {"line": meta.line, "column": meta.column, "end_line": meta.end_line}


def _tpos(tok: Token) -> dict[str, int]:
    return {"line": tok.line or 0, "column": tok.column or 0, "end_line": tok.end_line or 0}


class _SemanticSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _unquote(tok: Token) -> str:
    return str(tok)[1:-1]


def _strings(children: list[Any]) -> list[str]:
    return [_unquote(c) for c in children if isinstance(c, Token) and c.type == "STRING"]


def _idents(children: list[Any]) -> list[Token]:
    return [c for c in children if isinstance(c, Token) and c.type in ("IDENT", "ASSIGN_NAME")]


def _nodes(children: list[Any], kind: type | tuple[type, ...]) -> list[Any]:
    return [c for c in children if isinstance(c, kind)]


def _number(tok: Token) -> int | float:
    text = str(tok)
    if len(text) > MAX_NUMBER_CHARS:
        message = f"number literal of {len(text)} characters is too long"
        raise _SemanticSyntaxError(message, tok.line or 0, tok.column or 0)
    if any(ch in text for ch in ".eE"):
        return float(text)
    return int(text)


def _check_depth(module: ast.Module, path: str) -> None:
    """Refuse trees nested deeper than MAX_NESTING (walked without recursion, so any depth is safe here)."""
    stack: list[tuple[object, int, ast.Node]] = [(module, 0, module)]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, tuple):
            stack.extend((item, depth, where) for item in node)
        elif isinstance(node, ast.Node):
            if depth > MAX_NESTING:
                raise OmtSyntaxError(f"nested more than {MAX_NESTING} levels deep", where.line, where.column, path)
            where = node if node.line else where
            stack.extend((getattr(node, f.name), depth + 1, where) for f in dataclasses.fields(node))


@dataclass(frozen=True)
class _Span:
    """Where a rule's text starts and ends, computed from its children (lark gives no meta
    to transformers that run inside the LALR parser)."""

    line: int
    column: int
    end_line: int
    empty: bool = False


def _first_position(items: Iterable[Any]) -> tuple[int, int] | None:
    for c in items:
        if isinstance(c, Token):
            if c.line is not None:
                return c.line, c.column or 0
        elif isinstance(c, ast.Node):
            if c.line:
                return c.line, c.column
        elif isinstance(c, list | tuple):
            found = _first_position(c)
            if found:
                return found
        elif isinstance(c, dict):
            found = _first_position(c.values())
            if found:
                return found
    return None


def _last_line(items: Sequence[Any]) -> int:
    for c in reversed(items):
        if isinstance(c, Token) and c.end_line is not None:
            return c.end_line
        if isinstance(c, ast.Node) and c.end_line:
            return c.end_line
        if isinstance(c, list | tuple) and c:
            found = _last_line(c)
            if found:
                return found
        if isinstance(c, dict):
            found = _last_line(list(c.values()))
            if found:
                return found
    return 0


def _with_span(f: Callable[..., Any], data: str, children: list[Any], meta: Any) -> Any:
    first = _first_position(children)
    if first is None:
        return f(_Span(0, 0, 0, empty=True), children)
    return f(_Span(first[0], first[1], _last_line(children) or first[0]), children)


@v_args(wrapper=_with_span)
class _ToAst(Transformer[Token, ast.Module]):
    # -- declarations
    def start(self, meta: Any, c: list[Any]) -> ast.Module:
        return ast.Module(tuple(c), **_pos(meta))

    def header(self, meta: Any, c: list[Any]) -> ast.Header:
        strings = _strings(c)
        return ast.Header(str(c[1]), strings[0], strings[1] if len(strings) > 1 else None, **_pos(meta))

    def imports(self, meta: Any, c: list[Any]) -> ast.Import:
        return ast.Import("/".join(str(t) for t in _idents(c)), **_pos(meta))

    def params(self, meta: Any, c: list[Any]) -> ast.ParameterBlock:
        return ast.ParameterBlock(tuple(_nodes(c, ast.Parameter)), **_pos(meta))

    def param(self, meta: Any, c: list[Any]) -> ast.Parameter:
        value = c[2]
        unit = next((str(t) for t in c[3:] if isinstance(t, Token) and t.type == "IDENT"), None)
        strings = _strings(c[3:])
        return ast.Parameter(str(c[0]), value, unit, strings[0] if strings else None, **_pos(meta))

    def pvalue(self, meta: Any, c: list[Any]) -> int | float | str:
        if c[0].type == "MINUS":
            return -_number(c[1])
        if c[0].type == "NUMBER":
            return _number(c[0])
        return str(c[0])

    def enum(self, meta: Any, c: list[Any]) -> ast.EnumDecl:
        strings = _strings(c)
        values = tuple(_nodes(c, ast.EnumValue))
        return ast.EnumDecl(str(c[1]), strings[0] if strings else None, values, **_pos(meta))

    def enum_value(self, meta: Any, c: list[Any]) -> ast.EnumValue:
        return ast.EnumValue(str(c[0]), **_pos(meta))

    def names(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(t) for t in _idents(c))

    def message(self, meta: Any, c: list[Any]) -> ast.MessageDecl:
        recipients = next(x for x in c if isinstance(x, tuple))
        signed = any(isinstance(t, Token) and t.type == "SIGNED" for t in c)
        fields = tuple(_nodes(c, ast.FieldDecl))
        return ast.MessageDecl(str(c[1]), str(c[3]), recipients, signed, fields, **_pos(meta))

    def block(self, meta: Any, c: list[Any]) -> ast.BlockDecl:
        writers = next(x for x in c if isinstance(x, tuple))
        return ast.BlockDecl(str(c[1]), writers, tuple(_nodes(c, ast.FieldDecl)), **_pos(meta))

    def field(self, meta: Any, c: list[Any]) -> ast.FieldDecl:
        return ast.FieldDecl(str(c[0]), c[1], **_pos(meta))

    def type(self, meta: Any, c: list[Any]) -> ast.TypeRef:
        name = str(c[0])
        args = tuple(_nodes(c, ast.TypeRef))
        expected = GENERIC_ARITY.get(name.lower())
        if expected is not None and len(args) != expected:
            raise _SemanticSyntaxError(
                f"type {name} takes {expected} type argument(s), got {len(args)}", c[0].line, c[0].column
            )
        return ast.TypeRef(name, args, **_pos(meta))

    def fparams(self, meta: Any, c: list[Any]) -> tuple[ast.FieldDecl, ...]:
        return tuple(_nodes(c, ast.FieldDecl))

    def function(self, meta: Any, c: list[Any]) -> ast.FunctionDecl:
        params = next((x for x in c if isinstance(x, tuple)), ())
        rtype = _nodes(c, ast.TypeRef)[0]
        body = tuple(s for x in c if isinstance(x, list) for s in x)
        return ast.FunctionDecl(str(c[1]), params, rtype, body, **_pos(meta))

    def native(self, meta: Any, c: list[Any]) -> ast.FunctionDecl:
        params = next((x for x in c if isinstance(x, tuple)), ())
        rtype = _nodes(c, ast.TypeRef)[0]
        return ast.FunctionDecl(str(c[2]), params, rtype, (), True, _strings(c)[0], **_pos(meta))

    # -- statements (each returns a list so that blocks flatten)
    def return_stmt(self, meta: Any, c: list[Any]) -> list[ast.Statement]:
        return [ast.Return(c[1], **_pos(meta))]

    def assign_stmt(self, meta: Any, c: list[Any]) -> list[ast.Statement]:
        return [ast.Assign(str(c[0]), c[2], **_pos(meta))]

    def index_assign_stmt(self, meta: Any, c: list[Any]) -> list[ast.Statement]:
        return [ast.IndexAssign(str(c[0]), c[2], c[5], **_pos(meta))]

    def for_stmt(self, meta: Any, c: list[Any]) -> list[ast.Statement]:
        return [ast.ForLoop(str(c[1]), c[3], tuple(c[4]), **_pos(meta))]

    def block_stmt(self, meta: Any, c: list[Any]) -> list[ast.Statement]:
        return [s for x in c if isinstance(x, list) for s in x]

    # -- actors
    def actor(self, meta: Any, c: list[Any]) -> ast.ActorDecl:
        strings = [_unquote(t) for t in c[:4] if isinstance(t, Token) and t.type == "STRING"]
        items = tuple(x for x in c if isinstance(x, ast.Node))
        return ast.ActorDecl(str(c[1]), strings[0] if strings else None, items, **_pos(meta))

    def store(self, meta: Any, c: list[Any]) -> ast.StoreDecl:
        return ast.StoreDecl(tuple(_nodes(c, ast.FieldDecl)), **_pos(meta))

    def trigger(self, meta: Any, c: list[Any]) -> ast.TriggerDecl:
        allowed = next(x for x in c if isinstance(x, tuple))
        strings = _strings(c)
        return ast.TriggerDecl(
            str(c[1]), tuple(_nodes(c, ast.FieldDecl)), allowed, strings[0] if strings else None, **_pos(meta)
        )

    def state(self, meta: Any, c: list[Any]) -> ast.StateDecl:
        flags = {str(x) for x in c if isinstance(x, str) and not isinstance(x, Token)}
        strings = _strings(c)
        return ast.StateDecl(
            str(c[1]), "initial" in flags, "terminal" in flags, strings[0] if strings else None, **_pos(meta)
        )

    def state_flag(self, meta: Any, c: list[Any]) -> str:
        return str(c[0]).lower()

    def transition(self, meta: Any, c: list[Any]) -> ast.Transition:
        source, target, event = str(c[0]), str(c[2]), c[3]
        rest = c[4] if len(c) > 4 else None
        pos = {**_pos(meta), "target_line": c[2].line or 0, "target_column": c[2].column or 0}
        if isinstance(rest, dict):
            return ast.Transition(source, target, event, **rest, **pos)
        return ast.Transition(source, target, event, actions=tuple(rest or ()), **pos)

    def auto_event(self, meta: Any, c: list[Any]) -> ast.Event:
        return ast.Event("auto", **_pos(meta))

    def timeout_event(self, meta: Any, c: list[Any]) -> ast.Event:
        return ast.Event("timeout", str(c[3]), **_pos(meta))

    def on_event(self, meta: Any, c: list[Any]) -> ast.Event:
        name = str(c[1])
        return ast.Event("message" if name.isupper() else "trigger", name, **_pos(meta))

    def guard(self, meta: Any, c: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"guard": c[1]}
        for x in c[2:]:
            if isinstance(x, list):
                out["actions"] = tuple(x)
            elif isinstance(x, tuple):
                out["else_target"], out["else_actions"] = x
        return out

    def guarded_actions(self, meta: Any, c: list[Any]) -> list[ast.Action]:
        return _nodes(c, ast.Node)

    def orelse(self, meta: Any, c: list[Any]) -> tuple[str, tuple[ast.Action, ...]]:
        actions = next((x for x in c if isinstance(x, list)), [])
        return str(c[2]), tuple(actions)

    def actions(self, meta: Any, c: list[Any]) -> list[ast.Action]:
        return _nodes(c, ast.Node)

    def store_fields(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.StoreFields(tuple(str(t) for t in _idents(c)), **_pos(meta))

    def store_value(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.StoreValue(str(c[2]), c[4], **_pos(meta))

    def lookup(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.Compute(str(c[1]), c[3], lookup=True, **_pos(meta))

    def compute(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.Compute(str(c[0]), c[2], **_pos(meta))

    def send(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.Send(c[2], str(c[4]), **_pos(meta))

    def broadcast(self, meta: Any, c: list[Any]) -> ast.Action:
        return ast.Broadcast(str(c[2]), str(c[4]), **_pos(meta))

    def append(self, meta: Any, c: list[Any]) -> ast.Action:
        target, value = str(c[2]), c[4]
        if target == "chain":
            if not isinstance(value, ast.Name):
                raise _SemanticSyntaxError("APPEND(chain, ...) takes a block name", meta.line, meta.column)
            return ast.AppendBlock(value.name, **_pos(meta))
        return ast.AppendList(target, value, **_pos(meta))

    # -- expressions
    def lambda_(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Lambda(str(c[0]), c[2], **_pos(meta))

    def binary(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary(str(c[1]).lower(), c[0], c[2], **_pos(meta))

    def unary(self, meta: Any, c: list[Any]) -> ast.Expr:
        value = c[1].value if isinstance(c[1], ast.Literal) else None
        if c[0].type == "MINUS" and isinstance(value, int | float) and not isinstance(value, bool):
            return ast.Literal(-value, **_pos(meta))
        return ast.Unary("not" if c[0].type == "NOT" else "-", c[1], **_pos(meta))

    def conditional(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Conditional(c[1], c[3], c[5], **_pos(meta))

    def call(self, meta: Any, c: list[Any]) -> ast.Expr:
        callee = c[0]
        if not isinstance(callee, ast.Name):
            raise _SemanticSyntaxError("only a named function can be called", meta.line, meta.column)
        args = next((x for x in c if isinstance(x, tuple)), ())
        return ast.Call(callee.name, args, **_pos(meta))

    def action_call(self, meta: Any, c: list[Any]) -> ast.Expr:
        args = next((x for x in c if isinstance(x, tuple)), ())
        return ast.Call(str(c[0]), args, **_pos(meta))

    def dynamic_field(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.DynamicField(c[0], c[3], **_pos(meta))

    def field_access(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.FieldAccess(c[0], str(c[2]), **_pos(meta))

    def index(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Index(c[0], c[2], **_pos(meta))

    def paren(self, meta: Any, c: list[Any]) -> ast.Expr:
        return c[1]

    def struct(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Struct(tuple(_nodes(c, ast.StructEntry)), **_pos(meta))

    def spread(self, meta: Any, c: list[Any]) -> ast.StructEntry:
        return ast.StructEntry(None, c[1], **_pos(meta))

    def struct_field(self, meta: Any, c: list[Any]) -> ast.StructEntry:
        return ast.StructEntry(str(c[0]), c[1], **_pos(meta))

    def list_literal(self, meta: Any, c: list[Any]) -> ast.Expr:
        args = next((x for x in c if isinstance(x, tuple)), ())
        return ast.ListLiteral(args, **_pos(meta))

    def args(self, meta: Any, c: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(x for x in c if not isinstance(x, Token))

    def number(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Literal(_number(c[0]), **_tpos(c[0]))

    def string(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Literal(_unquote(c[0]), **_tpos(c[0]))

    def constant(self, meta: Any, c: list[Any]) -> ast.Expr:
        value = {"TRUE": True, "FALSE": False, "NULL": None}[c[0].type]
        return ast.Literal(value, **_tpos(c[0]))

    def name(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Name(str(c[0]), **_tpos(c[0]))


@functools.cache
def _lark() -> Lark:
    grammar = files("omerta_ledger_omt.omt").joinpath("grammar.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        lexer=_TokenListLexer,
        propagate_positions=True,
        maybe_placeholders=False,
        transformer=_ToAst(),  # build the typed tree while parsing, with no intermediate parse tree
    )


def parse_with_comments(text: str, path: str = "<string>") -> tuple[ast.Module, list[Comment]]:
    """Parse ``text``; return the tree and the comments (for the formatter)."""
    tokens, comments = tokenize(text, path)
    try:
        module = _lark().parse(tokens)
    except UnexpectedToken as exc:
        raise _syntax_error(exc, tokens, text, path) from None
    except UnexpectedInput as exc:
        raise OmtSyntaxError(f"unexpected input: {exc}", exc.line, exc.column, path) from None
    except _SemanticSyntaxError as exc:
        raise OmtSyntaxError(exc.message, exc.line, exc.column, path) from None
    assert isinstance(module, ast.Module)
    _check_depth(module, path)
    return module, comments


#: Words a mistyped keyword is compared with, for "did you mean".
_KEYWORDS = sorted(TOP_LEVEL_KEYWORDS | LOWER_KEYWORDS | ANY_CASE_KEYWORDS | set(UPPER_KEYWORDS))


def _syntax_error(exc: UnexpectedToken, tokens: list[Token], text: str, path: str) -> OmtSyntaxError:
    """Point at the mistake, not past it.

    A word that is nearly a keyword (``stat``, ``mesage``) is reported at that
    word with the keyword it resembles; a token missing at the end of a line
    (a ``)``) is reported where that line ends rather than at the next one.
    """
    tok = exc.token
    expected = sorted({_describe(t) for t in exc.expected})
    wanted = " or ".join(expected)
    index = next((i for i, t in enumerate(tokens) if t is tok), len(tokens))
    previous = tokens[index - 1] if index > 0 else None
    for word in (tok, previous):
        if word is not None and word.type == "IDENT" and _line_start(tokens, word):
            keyword = difflib.get_close_matches(str(word), _KEYWORDS, n=1, cutoff=0.75)
            if keyword and keyword[0] != str(word):
                return OmtSyntaxError(
                    f"unknown keyword {str(word)!r}; did you mean {keyword[0]!r}?", word.line, word.column, path
                )
    unclosed = _unclosed_paren(tokens, index)
    if unclosed is not None:
        opened, before = unclosed
        return OmtSyntaxError(
            f"missing ')' to close the '(' opened at line {opened.line}, column {opened.column}",
            before.end_line or before.line,
            (before.end_column or before.column or 0),
            path,
        )
    if tok.type == "$END":
        lines = text.splitlines() or [""]
        return OmtSyntaxError(f"unexpected end of file; expected {wanted}", len(lines), len(lines[-1]) + 1, path)
    closes = tok.type in {"RPAR", "RSQB", "RBRACE"}  # an empty body: the closer itself is the surprise
    if previous is not None and previous.end_line is not None and tok.line > previous.end_line and not closes:
        return OmtSyntaxError(
            f"expected {wanted} after {str(previous)!r} at the end of the line",
            previous.end_line,
            (previous.end_column or previous.column or 0),
            path,
        )
    return OmtSyntaxError(f"unexpected {str(tok)!r}; expected {wanted}", tok.line, tok.column, path)


def _unclosed_paren(tokens: list[Token], index: int) -> tuple[Token, Token] | None:
    """The ``(`` left open when a declaration keyword starts a new line before ``index``.

    Returns that ``(`` and the token after which its ``)`` is missing.
    """
    depth: list[Token] = []
    for i, token in enumerate(tokens[: index + 1]):
        if token.type == "LPAR":
            depth.append(token)
        elif token.type == "RPAR" and depth:
            depth.pop()
        elif (
            depth
            and i > 0
            and str(token) in TOP_LEVEL_KEYWORDS - {"from", "to", "by", "signed"}
            and _line_start(tokens, token)
        ):
            return depth[-1], tokens[i - 1]
    return None


def _line_start(tokens: list[Token], word: Token) -> bool:
    """True when ``word`` is the first token on its line (where a keyword would stand)."""
    index = next((i for i, t in enumerate(tokens) if t is word), 0)
    return index == 0 or tokens[index - 1].end_line != word.line


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse ``.omt`` text into a :class:`ast.Module`; raise OmtSyntaxError on bad source."""
    return parse_with_comments(text, path)[0]


def parse_file(path: str | Path) -> ast.Module:
    p = Path(path)
    return parse(p.read_text(encoding="utf-8"), str(p))
