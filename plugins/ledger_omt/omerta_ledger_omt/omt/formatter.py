"""Canonical layout of ``.omt`` source (``omerta omt fmt``).

Prints a parsed module back as text: four-space indents, one declaration, state,
transition or statement per line, short lists kept on one line, and expressions with
only the parentheses precedence needs. Comments are kept: a comment goes before the
item that follows it, or stays at the end of a one-line item. Formatting is idempotent
and the result parses to the same tree. Pure: text in, text out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.lexer import Comment
from omerta_ledger_omt.omt.parser import parse_with_comments

INDENT = "    "
# A list stays on one line when the line stays this short.
INLINE_WIDTH = 100

# Binding strength of each expression form, loosest first (see grammar.lark).
LAMBDA, OR, AND, NOT, COND, CMP, SUM, PROD, NEG, POSTFIX, ATOM = range(11)
BINARY_LEVEL = {"or": OR, "and": AND, "+": SUM, "-": SUM, "*": PROD, "/": PROD}
BINARY_TEXT = {"or": "or", "and": "and"}


def _number(value: int | float) -> str:
    return repr(value)


def _string(value: str) -> str:
    return f'"{value}"'


def expr(e: ast.Expr, minimum: int = LAMBDA) -> str:
    """Source text of an expression, parenthesised when its level is below ``minimum``."""
    text, level = _expr(e)
    return f"({text})" if level < minimum else text


def _expr(e: ast.Expr) -> tuple[str, int]:
    if isinstance(e, ast.Literal):
        v = e.value
        if v is None:
            return "null", ATOM
        if isinstance(v, bool):
            return ("true" if v else "false"), ATOM
        if isinstance(v, str):
            return _string(v), ATOM
        text = _number(v)
        return text, (NEG if text.startswith("-") else ATOM)
    if isinstance(e, ast.Name):
        return e.name, ATOM
    if isinstance(e, ast.Binary):
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            return f"{expr(e.left, SUM)} {e.op} {expr(e.right, SUM)}", CMP
        level = BINARY_LEVEL[e.op]
        return f"{expr(e.left, level)} {e.op} {expr(e.right, level + 1)}", level
    if isinstance(e, ast.Unary):
        if e.op == "not":
            return f"not {expr(e.operand, NOT)}", NOT
        inner = expr(e.operand, NEG)
        return f"-{inner}" if not inner.startswith("-") else f"-({inner})", NEG
    if isinstance(e, ast.Conditional):
        return f"IF {expr(e.condition)} THEN {expr(e.then, COND)} ELSE {expr(e.otherwise, COND)}", COND
    if isinstance(e, ast.Call):
        return f"{e.function}({', '.join(expr(a) for a in e.args)})", POSTFIX
    if isinstance(e, ast.FieldAccess):
        return f"{expr(e.base, POSTFIX)}.{e.name}", POSTFIX
    if isinstance(e, ast.DynamicField):
        return f"{expr(e.base, POSTFIX)}.[{expr(e.key)}]", POSTFIX
    if isinstance(e, ast.Index):
        return f"{expr(e.base, POSTFIX)}[{expr(e.index)}]", POSTFIX
    if isinstance(e, ast.Lambda):
        return f"{e.param} => {expr(e.body)}", LAMBDA
    if isinstance(e, ast.Struct):
        parts = [f"...{expr(x.value)}" if x.name is None else f"{x.name} {expr(x.value)}" for x in e.entries]
        return "{" + ", ".join(parts) + "}", ATOM
    if isinstance(e, ast.ListLiteral):
        return "[" + ", ".join(expr(i) for i in e.items) + "]", ATOM
    raise TypeError(f"not an expression: {e!r}")


def _chain(e: ast.Expr) -> tuple[str, list[ast.Expr]] | None:
    """Operands of a top-level ``and``/``or`` chain, for wrapping long conditions."""
    if not (isinstance(e, ast.Binary) and e.op in ("and", "or")):
        return None
    operands: list[ast.Expr] = []
    node: ast.Expr = e
    while isinstance(node, ast.Binary) and node.op == e.op:
        operands.insert(0, node.right)
        node = node.left
    operands.insert(0, node)
    return e.op, operands


def wrapped(prefix: str, e: ast.Expr, depth: int, width: int = INLINE_WIDTH + 20) -> list[tuple[int, str]]:
    """``prefix`` + expression as (depth, text) lines, breaking a long and/or chain before each operator."""
    one = prefix + expr(e)
    chain = _chain(e)
    if len(INDENT * depth + one) <= width or chain is None:
        return [(depth, one)]
    op, operands = chain
    level = BINARY_LEVEL[op]
    lines = [(depth, prefix + expr(operands[0], level))]
    lines += [(depth + 1, f"{op} {expr(x, level + 1)}") for x in operands[1:]]
    return lines


def action(a: ast.Action) -> str:
    if isinstance(a, ast.StoreFields):
        return "store " + ", ".join(a.names)
    if isinstance(a, ast.StoreValue):
        return f"STORE({a.name}, {expr(a.value)})"
    if isinstance(a, ast.Compute):
        return f"{'lookup ' if a.lookup else ''}{a.name} = {expr(a.value)}"
    if isinstance(a, ast.Send):
        return f"SEND({expr(a.target)}, {a.message})"
    if isinstance(a, ast.Broadcast):
        return f"BROADCAST({a.targets}, {a.message})"
    if isinstance(a, ast.AppendList):
        return f"APPEND({a.target}, {expr(a.value)})"
    return f"APPEND(chain, {a.block})"


def _desc(text: str | None) -> str:
    return f" {_string(text)}" if text is not None else ""


def _field(f: ast.FieldDecl) -> str:
    return f"{f.name} {f.type}"


class _Printer:
    def __init__(self, comments: Sequence[Comment], blank_lines: set[int]) -> None:
        self.comments = deque(sorted(comments, key=lambda c: (c.line, c.column)))
        self.blank_lines = blank_lines
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append(INDENT * depth + text)

    def gap(self, line: int) -> None:
        """Keep one empty line where the source had one before ``line`` (never after an opening '(')."""
        if line - 1 in self.blank_lines and self.lines and self.lines[-1].strip() and not self.lines[-1].endswith("("):
            self.lines.append("")

    def leading(self, line: int, depth: int) -> None:
        """Print the comments that come before source line ``line``."""
        while self.comments and self.comments[0].line < line:
            comment = self.comments.popleft()
            self.gap(comment.line)
            self.emit(depth, comment.text)
        if line < 10**9:
            self.gap(line)

    def trailing(self, node: ast.Node, depth: int, one_line: bool) -> None:
        """Print the comments inside ``node``'s lines: at the end of a one-line item, else below it."""
        end = max(node.end_line, node.line)
        inside = []
        while self.comments and self.comments[0].line <= end:
            inside.append(self.comments.popleft())
        if one_line and len(inside) == 1 and self.lines:
            self.lines[-1] += "  " + inside[0].text
        else:
            for c in inside:
                self.emit(depth, c.text)

    def has_comments(self, node: ast.Node) -> bool:
        """Comments inside ``node``; one on its last line follows its last token, so it does not count."""
        return any(node.line <= c.line < node.end_line for c in self.comments)

    def item(self, node: ast.Node, depth: int, text: str) -> None:
        self.leading(node.line, depth)
        self.emit(depth, text)
        self.trailing(node, depth, one_line=True)

    def listing(self, node: ast.Node, depth: int, head: str, items: Sequence[ast.Node], render: object) -> None:
        """``head ( a  b )`` on one line when short and comment-free, else one item per line."""
        assert callable(render)
        self.leading(node.line, depth)
        texts = [render(i) for i in items]
        inline = f"{head} ( {'  '.join(texts)} )" if texts else f"{head} ()"
        if len(INDENT * depth + inline) <= INLINE_WIDTH and not self.has_comments(node):
            self.emit(depth, inline)
            self.trailing(node, depth, one_line=True)
            return
        self.emit(depth, f"{head} (")
        if self.has_comments(node):
            for i, text in zip(items, texts, strict=True):
                self.item(i, depth + 1, text)
        else:
            row: list[str] = []
            for text in texts:
                if row and len(INDENT * (depth + 1) + "  ".join([*row, text])) > INLINE_WIDTH:
                    self.emit(depth + 1, "  ".join(row))
                    row = []
                row.append(text)
            if row:
                self.emit(depth + 1, "  ".join(row))
        self.leading(node.end_line, depth + 1)
        self.emit(depth, ")")
        self.trailing(node, depth, one_line=True)

    def actions(self, head: list[tuple[int, str]], actions: Sequence[ast.Action], owner: ast.Node) -> None:
        """Emit ``head`` lines with the action block opening on the last one."""
        *first, (depth, last) = head
        for d, text in first:
            self.emit(d, text)
        texts = [action(a) for a in actions]
        if not texts:
            self.emit(depth, last)
            return
        inline = f"{last} ( {'  '.join(texts)} )"
        if len(texts) == 1 and len(INDENT * depth + inline) <= INLINE_WIDTH and not self.has_comments(owner):
            self.emit(depth, inline)
            return
        self.emit(depth, f"{last} (")
        body = min(d for d, _ in head) + 1
        for a, text in zip(actions, texts, strict=True):
            self.item(a, body, text)
        self.emit(body - 1, ")")

    def transition(self, t: ast.Transition, depth: int) -> None:
        self.leading(t.line, depth)
        ev = t.event
        event = {"auto": "auto", "timeout": f"on timeout({ev.name})"}.get(ev.kind, f"on {ev.name}")
        head = [(depth, f"{t.source} -> {t.target} {event}")]
        if t.guard is not None:
            lines = wrapped(f"{head[0][1]} when ", t.guard, depth)
            head = lines if len(lines) == 1 else [*head, *wrapped("when ", t.guard, depth + 1)]
        self.actions(head, t.actions, t)
        if t.else_target is not None:
            last = self.lines.pop()
            indent = len(last) - len(last.lstrip())
            self.actions([(indent // len(INDENT), f"{last.strip()} else -> {t.else_target}")], t.else_actions, t)
        self.trailing(t, depth, one_line=True)

    def statements(self, body: Sequence[ast.Statement], depth: int) -> None:
        for st in body:
            self.leading(st.line, depth)
            if isinstance(st, ast.Return):
                self.lines.extend(INDENT * d + t for d, t in wrapped("RETURN ", st.value, depth))
            elif isinstance(st, ast.Assign):
                self.lines.extend(INDENT * d + t for d, t in wrapped(f"{st.name} = ", st.value, depth))
            elif isinstance(st, ast.IndexAssign):
                self.emit(depth, f"{st.name}[{expr(st.index)}] = {expr(st.value)}")
            elif isinstance(st, ast.ForLoop):
                self.emit(depth, f"FOR {st.var} IN {expr(st.iterable)} (")
                self.statements(st.body, depth + 1)
                self.emit(depth, ")")

    def actor(self, a: ast.ActorDecl) -> None:
        self.leading(a.line, 0)
        self.emit(0, f"actor {a.name}{_desc(a.description)} (")
        for item in a.items:
            if isinstance(item, ast.StoreDecl):
                self.listing(item, 1, "store", item.fields, _field)
            elif isinstance(item, ast.TriggerDecl):
                params = ", ".join(_field(p) for p in item.params)
                text = f"trigger {item.name}({params}) in [{', '.join(item.allowed_in)}]{_desc(item.description)}"
                self.item(item, 1, text)
            elif isinstance(item, ast.StateDecl):
                flags = ("initial " if item.initial else "") + ("terminal " if item.terminal else "")
                self.item(item, 1, f"state {item.name} {flags}".rstrip() + _desc(item.description))
            else:
                self.transition(item, 1)
        self.leading(a.end_line, 1)
        self.emit(0, ")")

    def decl(self, d: ast.Decl) -> None:
        if isinstance(d, ast.Header):
            self.item(d, 0, f"transaction {d.id} {_string(d.name)}{_desc(d.description)}")
        elif isinstance(d, ast.Import):
            self.item(d, 0, f"imports {d.path}")
        elif isinstance(d, ast.ParameterBlock):
            self.leading(d.line, 0)
            self.emit(0, "parameters (")
            for p in d.parameters:
                value = p.value if isinstance(p.value, str) else _number(p.value)
                self.item(p, 1, f"{p.name} = {value}{' ' + p.unit if p.unit else ''}{_desc(p.description)}")
            self.leading(d.end_line, 1)
            self.emit(0, ")")
        elif isinstance(d, ast.EnumDecl):
            self.listing(d, 0, f"enum {d.name}{_desc(d.description)}", d.values, lambda v: v.name)
        elif isinstance(d, ast.MessageDecl):
            signed = " signed" if d.signed else ""
            head = f"message {d.name} from {d.sender} to [{', '.join(d.recipients)}]{signed}"
            self.listing(d, 0, head, d.fields, _field)
        elif isinstance(d, ast.BlockDecl):
            self.listing(d, 0, f"block {d.name} by [{', '.join(d.writers)}]", d.fields, _field)
        elif isinstance(d, ast.FunctionDecl):
            params = ", ".join(_field(p) for p in d.params)
            if d.native:
                self.item(d, 0, f"native function {d.name}({params}) -> {d.return_type} {_string(d.library or '')}")
                return
            self.leading(d.line, 0)
            self.emit(0, f"function {d.name}({params}) -> {d.return_type} (")
            self.statements(d.body, 1)
            self.leading(d.end_line, 1)
            self.emit(0, ")")
        else:
            self.actor(d)


def format_module(module: ast.Module, comments: Sequence[Comment] = (), blank_lines: set[int] | None = None) -> str:
    printer = _Printer(comments, blank_lines or set())
    previous: ast.Decl | None = None
    previous_lines = 0
    for d in module.decls:
        same_kind = type(previous) is type(d) and isinstance(d, ast.MessageDecl | ast.BlockDecl | ast.Import)
        if previous is not None and not (same_kind and previous_lines == 1) and printer.lines[-1]:
            printer.lines.append("")
        start = len(printer.lines)
        printer.decl(d)
        previous, previous_lines = d, len(printer.lines) - start
    printer.leading(10**9, 0)
    text = "\n".join(printer.lines).rstrip("\n")
    return text + "\n" if text else ""


def format_source(text: str, path: str = "<string>") -> str:
    """Parse and re-print ``text``; raise OmtSyntaxError when it does not parse."""
    module, comments = parse_with_comments(text, path)
    blank = {i + 1 for i, line in enumerate(text.split("\n")) if not line.strip()}
    return format_module(module, comments, blank)
