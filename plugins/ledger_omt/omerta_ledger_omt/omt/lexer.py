"""Tokeniser for ``.omt`` source.

Turns text into lark tokens for the LALR grammar in ``grammar.lark`` and collects
comments (for the formatter). Three context rules keep the grammar LALR(1):

* top-level keywords (``message``, ``actor`` ...) are keywords only outside parentheses,
  so ``message.payload`` inside an actor is a plain name, and ``timeout`` is a keyword
  only right after ``on``;
* a name directly followed by ``=`` becomes ``ASSIGN_NAME`` (parameters, assignments);
* a ``(`` that opens an action block or a statement block becomes ``ACT_LPAR``: it is
  followed by an action keyword, ``name =``, ``return``, ``FOR`` or ``name[...] =``.
  That settles ``when ready ( store x )`` (guard ``ready`` plus an action) against
  ``when f (x)`` (guard ``f(x)``) explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark import Token

from omerta_ledger_omt.omt.errors import OmtSyntaxError

TOP_LEVEL_KEYWORDS = {
    "transaction", "imports", "parameters", "enum", "message", "from", "to", "signed",
    "block", "by", "actor", "function", "native",
}  # fmt: skip
LOWER_KEYWORDS = {"store", "trigger", "state", "initial", "terminal", "on", "auto", "when", "lookup"}
ANY_CASE_KEYWORDS = {"in", "else", "return", "for", "if", "then", "and", "or", "not", "true", "false", "null"}
UPPER_KEYWORDS = {"STORE": "STORE_ACTION", "SEND": "SEND", "BROADCAST": "BROADCAST", "APPEND": "APPEND"}
ACTION_STARTERS = {"STORE", "STORE_ACTION", "SEND", "BROADCAST", "APPEND", "LOOKUP", "ASSIGN_NAME"}
STATEMENT_STARTERS = {"RETURN", "FOR", "ASSIGN_NAME"}

PUNCTUATION = {
    "...": "ELLIPSIS", "->": "ARROW", "=>": "FATARROW", "==": "EQEQ", "!=": "NOTEQ", "<=": "LE", ">=": "GE",
    "(": "LPAR", ")": "RPAR", "[": "LSQB", "]": "RSQB", "{": "LBRACE", "}": "RBRACE", ",": "COMMA",
    ".": "DOT", "/": "SLASH", "=": "EQUAL", "<": "LT", ">": "GT", "+": "PLUS", "-": "MINUS", "*": "STAR",
}  # fmt: skip

TOKEN_RE = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      |(?P<comment>\#[^\n]*)
      |(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z_0-9]))
      |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<string>"[^"\n]*")
      |(?P<badstring>"[^"\n]*)
      |(?P<punct>\.\.\.|->|=>|==|!=|<=|>=|[()\[\]{},./=<>+\-*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Comment:
    line: int
    column: int
    text: str  # including the leading '#'


def tokenize(text: str, path: str = "<string>") -> tuple[list[Token], list[Comment]]:
    """Split ``text`` into grammar tokens and comments; raise OmtSyntaxError on a bad character."""
    raw: list[Token] = []
    comments: list[Comment] = []
    pos, line, line_start = 0, 1, 0
    depth = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        column = pos - line_start + 1
        if m is None:
            raise OmtSyntaxError(f"unexpected character {text[pos]!r}", line, column, path)
        kind, value = m.lastgroup, m.group()
        if kind == "badstring":
            raise OmtSyntaxError("unterminated string (strings end on the same line)", line, column, path)
        if kind == "ws":
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = pos + value.rindex("\n") + 1
        elif kind == "comment":
            comments.append(Comment(line, column, value.rstrip()))
        else:
            if kind == "number":
                ttype = "NUMBER"
            elif kind == "string":
                ttype = "STRING"
            elif kind == "punct":
                ttype = PUNCTUATION[value]
                if value in "([{":
                    depth += 1
                elif value in ")]}":
                    depth = max(0, depth - 1)
            else:
                ttype = _name_type(value, depth, raw[-1].type if raw else None)
            raw.append(Token(ttype, value, pos, line, column, line, column + len(value), pos + len(value)))
        pos = m.end()
    return _refine(raw), comments


def _name_type(value: str, depth: int, previous: str | None) -> str:
    if value in TOP_LEVEL_KEYWORDS:
        return value.upper() if depth == 0 else "IDENT"
    if value == "timeout":
        return "TIMEOUT" if previous == "ON" else "IDENT"
    if value in LOWER_KEYWORDS:
        return value.upper()
    if value.lower() in ANY_CASE_KEYWORDS:
        return value.upper()
    return UPPER_KEYWORDS.get(value, "IDENT")


def _refine(tokens: list[Token]) -> list[Token]:
    """Apply the two look-ahead rules: ASSIGN_NAME and ACT_LPAR."""
    for i, tok in enumerate(tokens):
        if tok.type == "IDENT" and i + 1 < len(tokens) and tokens[i + 1].type == "EQUAL":
            tokens[i] = Token.new_borrow_pos("ASSIGN_NAME", tok.value, tok)
    actor_depth: int | None = None
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.type in ("LPAR", "LSQB", "LBRACE"):
            depth += 1
        elif tok.type in ("RPAR", "RSQB", "RBRACE"):
            depth -= 1
            if actor_depth is not None and depth < actor_depth:
                actor_depth = None
        if tok.type == "ACTOR":
            actor_depth = depth + 1
        if tok.type != "LPAR" or i + 1 >= len(tokens):
            continue
        nxt = tokens[i + 1].type
        starters = STATEMENT_STARTERS | (ACTION_STARTERS if actor_depth is not None else set())
        if nxt in starters or (nxt == "IDENT" and _is_index_assign(tokens, i + 1)):
            tokens[i] = Token.new_borrow_pos("ACT_LPAR", tok.value, tok)
    return tokens


def _is_index_assign(tokens: list[Token], i: int) -> bool:
    """True when tokens[i:] reads ``name [ ... ] =``."""
    if i + 1 >= len(tokens) or tokens[i + 1].type != "LSQB":
        return False
    depth = 0
    for j in range(i + 1, len(tokens)):
        t = tokens[j].type
        if t in ("LSQB", "LPAR", "LBRACE"):
            depth += 1
        elif t in ("RSQB", "RPAR", "RBRACE"):
            depth -= 1
            if depth == 0:
                return j + 1 < len(tokens) and tokens[j + 1].type == "EQUAL"
    return False
