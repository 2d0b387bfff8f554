"""Pygments lexer for ``.omt`` transaction specifications.

Use it with ``pygmentize -l contrib/editors/pygments/omt_lexer.py:OmtLexer -x file.omt``,
or import :class:`OmtLexer` and register it (e.g. in Sphinx via ``app.add_lexer("omt", OmtLexer)``).
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text

DECLARATIONS = ("transaction", "imports", "parameters", "enum", "message", "block", "actor", "function", "native")
ROUTING = ("from", "to", "by", "signed")
ACTOR_ITEMS = ("store", "trigger", "state", "initial", "terminal", "on", "auto", "timeout", "when", "lookup")
ACTIONS = ("STORE", "SEND", "BROADCAST", "APPEND")
TYPES = ("hash", "peer_id", "uint", "int", "float", "bool", "string", "str", "bytes", "timestamp", "signature",
         "dict", "any", "list", "map")  # fmt: skip


class OmtLexer(RegexLexer):
    name = "Omerta transaction spec"
    aliases = ["omt"]
    filenames = ["*.omt"]

    tokens = {
        "root": [
            (r"\s+", Text),
            (r"#.*$", Comment.Single),
            (r'"[^"\n]*"', String),
            (r"\d+(\.\d+)?([eE][+-]?\d+)?", Number),
            (r"(state)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Text, Name.Label)),
            (r"(actor|enum|message|block)(\s+)([A-Za-z_]\w*)", bygroups(Keyword.Declaration, Text, Name.Class)),
            (r"(function)(\s+)([A-Za-z_]\w*)", bygroups(Keyword.Declaration, Text, Name.Function)),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(ROUTING, suffix=r"\b"), Keyword),
            (words(ACTOR_ITEMS, suffix=r"\b"), Keyword),
            (words(ACTIONS, suffix=r"\b"), Name.Builtin),
            (r"(?i)\b(else|if|then|for|in|return)\b", Keyword),
            (r"(?i)\b(and|or|not)\b", Operator.Word),
            (r"(?i)\b(true|false|null)\b", Keyword.Constant),
            (words(TYPES, suffix=r"\b"), Keyword.Type),
            (r"\b(message|peer_id|session_id|chain)\b", Name.Builtin.Pseudo),
            (r"[A-Z][A-Z0-9_]*(?=\s*\()", Name.Function),
            (r"[A-Za-z_]\w*", Name),
            (r"->|=>|\.\.\.|==|!=|<=|>=|[<>=+\-*/]", Operator),
            (r"[()\[\]{},.]", Punctuation),
        ]
    }
