"""Semantic checks of a parsed ``.omt`` module.

Every check works on parsed source (positions included) and returns
:class:`Diagnostic` values; nothing is raised and nothing is touched. Imported modules
are context only: their names resolve, their bodies are not re-checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.diagnostics import Diagnostic, Fix, Severity, obvious_fix, suggestion_text
from omerta_ledger_omt.omt.stdlib import BUILTINS, IMPURE

RESERVED_KEYWORDS = frozenset(
    [
        "transaction",
        "imports",
        "parameters",
        "enum",
        "message",
        "block",
        "actor",
        "function",
        "native",
        "store",
        "trigger",
        "state",
        "initial",
        "terminal",
        "on",
        "auto",
        "when",
        "else",
        "lookup",
        "send",
        "broadcast",
        "append",
        "return",
        "from",
        "to",
        "by",
        "in",
        "signed",
        "and",
        "or",
        "not",
        "if",
        "then",
        "for",
        "timeout",
    ]
)
RESERVED_IDENTIFIERS = frozenset({"chain", "peer_id", "message", "null", "true", "false"})
# Payload fields the runtime fills itself when the store has no such variable.
AUTOMATIC_FIELDS = frozenset({"timestamp", "session_id"})
RUNTIME_NAMES = frozenset({"peer_id", "chain", "session_id"})
NUMERIC_TYPES = frozenset({"int", "uint", "float", "timestamp", "number", "count"})
STRING_TYPES = frozenset({"string", "str", "hash", "peer_id", "signature", "bytes"})
FORBIDDEN_FIELD_TYPES = frozenset({"object"})
NETWORK = "Network"


def type_kind(t: ast.TypeRef | None) -> str | None:
    """Reduce a declared type to a kind the checker reasons about, or None if unknown."""
    if t is None:
        return None
    name = t.name.lower()
    if name in NUMERIC_TYPES:
        return "number"
    if name in STRING_TYPES:
        return "string"
    if name == "bool":
        return "bool"
    if name == "list":
        return "list"
    if name in ("map", "dict"):
        return "map"
    return None


@dataclass
class SymbolTable:
    """Names declared by a module and its imports."""

    parameters: dict[str, ast.Parameter] = field(default_factory=dict)
    enums: dict[str, ast.EnumDecl] = field(default_factory=dict)
    messages: dict[str, ast.MessageDecl] = field(default_factory=dict)
    blocks: dict[str, ast.BlockDecl] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDecl] = field(default_factory=dict)
    actors: dict[str, ast.ActorDecl] = field(default_factory=dict)

    @property
    def enum_values(self) -> dict[str, str]:
        return {v.name: e.name for e in self.enums.values() for v in e.values}

    @classmethod
    def build(cls, module: ast.Module, imported: Sequence[ast.Module] = ()) -> SymbolTable:
        table = cls()
        for mod in [*imported, module]:  # local declarations override imported ones
            table.parameters.update({p.name: p for p in mod.parameters})
            table.enums.update({e.name: e for e in mod.enums})
            table.messages.update({m.name: m for m in mod.messages})
            table.blocks.update({b.name: b for b in mod.blocks})
            table.functions.update({f.name: f for f in mod.functions})
            table.actors.update({a.name: a for a in mod.actors})
        return table


@dataclass
class _Scope:
    """What a bare name may refer to while checking one expression."""

    types: dict[str, ast.TypeRef | None]
    where: str
    in_function: bool = False
    message: ast.MessageDecl | None = None


class _Checker:
    def __init__(self, module: ast.Module, imported: Sequence[ast.Module]) -> None:
        self.module = module
        self.symbols = SymbolTable.build(module, imported)
        self.out: list[Diagnostic] = []

    def emit(
        self, severity: Severity, code: str, message: str, node: ast.Node | None = None, fix: Fix | None = None
    ) -> None:
        line = node.line if node else 0
        column = node.column if node else 0
        self.out.append(Diagnostic(severity, code, message, line, column, fix))

    # -- names ------------------------------------------------------------------
    def reserved(self, name: str, context: str, node: ast.Node) -> None:
        if name.lower() in RESERVED_KEYWORDS:
            self.emit("error", "reserved-name", f"'{name}' is a keyword and cannot name {context}", node)
        elif name in RESERVED_IDENTIFIERS:
            self.emit("error", "reserved-name", f"'{name}' is a runtime name and cannot name {context}", node)

    def check_declarations(self) -> None:
        seen: dict[tuple[str, str], ast.Node] = {}
        headers = [d for d in self.module.decls if isinstance(d, ast.Header)]
        for extra in headers[1:]:
            self.emit("error", "duplicate", f"second transaction header (first on line {headers[0].line})", extra)
        for decl in self.module.decls:
            named: list[tuple[str, str, ast.Node]] = []
            if isinstance(decl, ast.ParameterBlock):
                named = [("parameter", p.name, p) for p in decl.parameters]
            elif isinstance(decl, ast.EnumDecl):
                named = [("enum", decl.name, decl)]
                for v in decl.values:
                    self.reserved(v.name, f"a value of enum {decl.name}", v)
            elif isinstance(decl, ast.MessageDecl | ast.BlockDecl):
                kind = "message" if isinstance(decl, ast.MessageDecl) else "block"
                named = [(kind, decl.name, decl)]
                self.check_fields(decl.fields, f"{kind} {decl.name}")
            elif isinstance(decl, ast.FunctionDecl):
                named = [("function", decl.name, decl)]
                for p in decl.params:
                    self.reserved(p.name, f"a parameter of function {decl.name}", p)
            elif isinstance(decl, ast.ActorDecl):
                named = [("actor", decl.name, decl)]
            for kind, name, node in named:
                self.reserved(name, f"a {kind}", node)
                if (kind, name) in seen:
                    first = seen[(kind, name)]
                    self.emit(
                        "error", "duplicate", f"{kind} '{name}' is declared twice (first on line {first.line})", node
                    )
                seen[(kind, name)] = node
        for m in self.module.messages:
            for role in (m.sender, *m.recipients):
                if role != NETWORK and self.symbols.actors and role not in self.symbols.actors:
                    self.emit(
                        "error", "unknown-role",
                        f"message {m.name} names role '{role}', which is not an actor"
                        + suggestion_text(role, self.symbols.actors),
                        m,
                    )  # fmt: skip

    def check_fields(self, fields: Sequence[ast.FieldDecl], owner: str) -> None:
        names: set[str] = set()
        for f in fields:
            self.reserved(f.name, f"a field of {owner}", f)
            if f.name in names:
                self.emit("error", "duplicate", f"field '{f.name}' appears twice in {owner}", f)
            names.add(f.name)
            for t in _walk_types(f.type):
                if t.name.lower() in FORBIDDEN_FIELD_TYPES:
                    self.emit(
                        "error", "object-type",
                        f"field '{f.name}' of {owner} has type '{f.type}'; 'object' is not allowed, name a struct type",
                        f,
                    )  # fmt: skip

    # -- actors -----------------------------------------------------------------
    def check_actor(self, actor: ast.ActorDecl) -> None:
        self.reserved(actor.name, "an actor", actor)
        self.check_fields(actor.store, f"the store of {actor.name}")
        states: dict[str, ast.StateDecl] = {}
        for s in actor.states:
            self.reserved(s.name, "a state", s)
            if s.name in states:
                self.emit("error", "duplicate-state", f"state '{s.name}' is declared twice in actor {actor.name}", s)
            states.setdefault(s.name, s)
        initials = [s.name for s in actor.states if s.initial]
        if not initials:
            self.emit("error", "no-initial-state", f"actor {actor.name} has no initial state", actor)
        elif len(initials) > 1:
            self.emit(
                "error", "multiple-initial-states",
                f"actor {actor.name} has several initial states: {', '.join(initials)}", actor,
            )  # fmt: skip
        if not any(s.terminal for s in actor.states):
            self.emit("warning", "no-terminal-state", f"actor {actor.name} has no terminal state", actor)
        triggers = {t.name: t for t in actor.triggers}
        for t in actor.triggers:
            self.reserved(t.name, "a trigger", t)
            for p in t.params:
                self.reserved(p.name, f"a parameter of trigger {t.name}", p)
            for s in t.allowed_in:
                if s not in states:
                    self.emit(
                        "error", "unknown-state",
                        f"trigger {t.name} is allowed in unknown state '{s}'" + suggestion_text(s, states),
                        t, obvious_fix(s, states, t.line, t.column),
                    )  # fmt: skip
        store_types = self.store_types(actor)
        for tr in actor.transitions:
            self.check_transition(actor, tr, states, triggers, store_types)
        self.check_graph(actor, states)

    def store_types(self, actor: ast.ActorDecl) -> dict[str, ast.TypeRef | None]:
        types: dict[str, ast.TypeRef | None] = {f.name: f.type for f in actor.store}
        for tr in actor.transitions:
            for action in (*tr.actions, *tr.else_actions):
                for name in _assigned_names(action):
                    types.setdefault(name, None)
        return types

    def check_transition(
        self,
        actor: ast.ActorDecl,
        tr: ast.Transition,
        states: dict[str, ast.StateDecl],
        triggers: dict[str, ast.TriggerDecl],
        store_types: dict[str, ast.TypeRef | None],
    ) -> None:
        target_at = ast.Name(tr.target, line=tr.target_line, column=tr.target_column) if tr.target_line else tr
        for name, what, at in (
            (tr.source, "source", tr),
            (tr.target, "target", target_at),
            (tr.else_target, "else target", tr),
        ):
            if name is not None and name not in states:
                self.emit(
                    "error", "unknown-state",
                    f"transition {what} '{name}' is not a state of actor {actor.name}" + suggestion_text(name, states),
                    at, obvious_fix(name, states, at.line, at.column),
                )  # fmt: skip
        if tr.source in states and states[tr.source].terminal:
            self.emit("warning", "terminal-has-exit", f"terminal state {tr.source} has an outgoing transition", tr)
        types = dict(store_types)
        ev = tr.event
        message: ast.MessageDecl | None = None
        store_sources: set[str] | None = None
        if ev.kind in ("message", "trigger"):
            message = self.symbols.messages.get(ev.name)
            trigger = triggers.get(ev.name)
            if message is not None:
                store_sources = {f.name for f in message.fields}
                if actor.name not in message.recipients and NETWORK not in message.recipients:
                    self.emit(
                        "warning", "not-a-recipient",
                        f"actor {actor.name} handles {message.name}, which is not addressed to it", ev,
                    )  # fmt: skip
            elif trigger is not None:
                store_sources = {p.name for p in trigger.params}
                types.update({p.name: p.type for p in trigger.params})
                if tr.source not in trigger.allowed_in and tr.source in states:
                    self.emit(
                        "warning", "trigger-not-allowed",
                        f"trigger {trigger.name} is not allowed in {tr.source}, so this transition never fires", ev,
                    )  # fmt: skip
            else:
                candidates = [*self.symbols.messages, *triggers]
                self.emit(
                    "error", "unknown-event",
                    f"'{ev.name}' is neither a message nor a trigger of actor {actor.name}"
                    + suggestion_text(ev.name, candidates),
                    ev, obvious_fix(ev.name, candidates, ev.line, ev.column),
                )  # fmt: skip
        elif ev.kind == "timeout" and ev.name not in self.symbols.parameters:
            self.emit(
                "error", "unknown-parameter",
                f"timeout({ev.name}) does not name a parameter" + suggestion_text(ev.name, self.symbols.parameters),
                ev, obvious_fix(ev.name, self.symbols.parameters, ev.line, ev.column),
            )  # fmt: skip
        scope = _Scope(types, f"actor {actor.name}", message=message)
        if message is not None:
            scope.types["message"] = ast.TypeRef(message.name)
        if tr.guard is not None:
            kind = self.expr(tr.guard, scope)
            if kind not in (None, "bool"):
                self.emit("error", "type", f"guard of {tr.source} -> {tr.target} is a {kind}, not a bool", tr.guard)
        for action in (*tr.actions, *tr.else_actions):
            self.check_action(actor, action, scope, store_sources)

    def check_action(
        self, actor: ast.ActorDecl, action: ast.Action, scope: _Scope, store_sources: set[str] | None
    ) -> None:
        if isinstance(action, ast.StoreFields):
            for name in action.names:
                if store_sources is None:
                    self.emit(
                        "error", "store-source", f"'store {name}' needs a message or trigger to copy from", action
                    )
                elif name not in store_sources:
                    self.emit(
                        "error", "store-source",
                        f"'store {name}': the event carries no field '{name}'" + suggestion_text(name, store_sources),
                        action,
                    )  # fmt: skip
        elif isinstance(action, ast.StoreValue | ast.Compute):
            self.expr(action.value, scope)
        elif isinstance(action, ast.AppendList):
            self.expr(action.value, scope)
            self.name_ref(action.target, scope, action)
        elif isinstance(action, ast.Send | ast.Broadcast):
            verb = "SEND" if isinstance(action, ast.Send) else "BROADCAST"
            if isinstance(action, ast.Send):
                self.expr(action.target, scope)
            else:
                self.name_ref(action.targets, scope, action)
            msg = self.symbols.messages.get(action.message)
            if msg is None:
                hint = suggestion_text(action.message, self.symbols.messages)
                self.emit(
                    "error", "unknown-message", f"{verb} of unknown message '{action.message}'{hint}",
                    action, obvious_fix(action.message, self.symbols.messages, action.line, action.column),
                )  # fmt: skip
                return
            if msg.sender != actor.name:
                self.emit(
                    "error", "wrong-sender",
                    f"actor {actor.name} sends {msg.name}, which is declared 'from {msg.sender}'", action,
                )  # fmt: skip
            for f in msg.fields:
                if f.name not in AUTOMATIC_FIELDS and f.name not in scope.types:
                    self.emit(
                        "warning", "payload-field-unset",
                        f"{msg.name} field '{f.name}' is taken from the store, but actor {actor.name} never sets it",
                        action,
                    )  # fmt: skip
        elif isinstance(action, ast.AppendBlock):
            block = self.symbols.blocks.get(action.block)
            if block is None:
                self.emit(
                    "error", "unknown-block",
                    f"APPEND of unknown block '{action.block}'" + suggestion_text(action.block, self.symbols.blocks),
                    action, obvious_fix(action.block, self.symbols.blocks, action.line, action.column),
                )  # fmt: skip
            elif actor.name not in block.writers:
                self.emit(
                    "error",
                    "wrong-writer",
                    f"actor {actor.name} appends {block.name}, declared 'by {', '.join(block.writers)}'",
                    action,
                )

    def check_graph(self, actor: ast.ActorDecl, states: dict[str, ast.StateDecl]) -> None:
        initial = next((s.name for s in actor.states if s.initial), None)
        edges: dict[str, set[str]] = {s: set() for s in states}
        for tr in actor.transitions:
            if tr.source in edges:
                edges[tr.source].add(tr.target)
                if tr.else_target:
                    edges[tr.source].add(tr.else_target)
        if initial is not None:
            seen = {initial}
            todo = deque([initial])
            while todo:
                for nxt in edges.get(todo.popleft(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            for name, s in states.items():
                if name not in seen:
                    self.emit(
                        "warning",
                        "unreachable-state",
                        f"state {name} of actor {actor.name} is unreachable from {initial}",
                        s,
                    )
        for name, s in states.items():
            if not s.terminal and not (edges[name] - {name}):
                self.emit(
                    "warning", "dead-end-state",
                    f"state {name} of actor {actor.name} is not terminal but has no way out", s,
                )  # fmt: skip

    # -- functions ----------------------------------------------------------------
    def check_function(self, fn: ast.FunctionDecl) -> None:
        if fn.native:
            return
        types: dict[str, ast.TypeRef | None] = {p.name: p.type for p in fn.params}
        scope = _Scope(types, f"function {fn.name}", in_function=True)
        self.statements(fn.body, scope, fn)
        if not any(isinstance(s, ast.Return) for s in fn.body):
            self.emit("error", "no-return", f"function {fn.name} never returns a value", fn)

    def statements(self, body: Sequence[ast.Statement], scope: _Scope, fn: ast.FunctionDecl) -> None:
        for st in body:
            if isinstance(st, ast.Return):
                self.expr(st.value, scope)
            elif isinstance(st, ast.Assign):
                kind = self.expr(st.value, scope)
                scope.types[st.name] = ast.TypeRef(kind) if kind in ("number", "bool", "list") else None
            elif isinstance(st, ast.IndexAssign):
                self.expr(st.index, scope)
                self.expr(st.value, scope)
                scope.types.setdefault(st.name, None)
            elif isinstance(st, ast.ForLoop):
                self.expr(st.iterable, scope)
                scope.types[st.var] = None
                self.statements(st.body, scope, fn)

    # -- expressions ----------------------------------------------------------------
    def name_ref(self, name: str, scope: _Scope, node: ast.Node) -> str | None:
        if name in scope.types:
            return type_kind(scope.types[name])
        if name in RUNTIME_NAMES and not scope.in_function:
            return None if name == "chain" else "string"
        if name in self.symbols.parameters:
            value = self.symbols.parameters[name].value
            return "string" if isinstance(value, str) else "number"
        if name in self.symbols.enum_values:
            return "string"
        candidates = [*scope.types, *self.symbols.parameters, *self.symbols.enum_values]
        self.emit(
            "error", "undefined-name",
            f"'{name}' is not defined in {scope.where}" + suggestion_text(name, candidates), node,
            obvious_fix(name, candidates, node.line, node.column),
        )  # fmt: skip
        return None

    def expr(self, e: ast.Expr, scope: _Scope) -> str | None:
        if isinstance(e, ast.Literal):
            if e.value is None:
                return None
            if isinstance(e.value, bool):
                return "bool"
            return "string" if isinstance(e.value, str) else "number"
        if isinstance(e, ast.Name):
            return self.name_ref(e.name, scope, e)
        if isinstance(e, ast.Unary):
            kind = self.expr(e.operand, scope)
            want = "bool" if e.op == "not" else "number"
            if kind not in (None, want):
                self.emit("error", "type", f"'{e.op}' needs a {want}, got a {kind}", e)
            return want
        if isinstance(e, ast.Binary):
            left, right = self.expr(e.left, scope), self.expr(e.right, scope)
            if e.op in ("and", "or"):
                for k in (left, right):
                    if k not in (None, "bool"):
                        self.emit("error", "type", f"'{e.op}' needs bools, got a {k}", e)
                return "bool"
            if e.op in ("==", "!=", "<", "<=", ">", ">="):
                if e.op not in ("==", "!=") and "string" in (left, right) and "number" in (left, right):
                    self.emit("error", "type", f"'{e.op}' compares a number with a string", e)
                return "bool"
            if e.op in ("*", "/", "-"):
                for k in (left, right):
                    if k not in (None, "number"):
                        self.emit("warning", "type", f"arithmetic '{e.op}' on a {k} in {scope.where}", e)
                return "number"
            return left if left == right else None  # '+': numbers, strings or lists
        if isinstance(e, ast.Conditional):
            if self.expr(e.condition, scope) not in (None, "bool"):
                self.emit("error", "type", "IF condition is not a bool", e)
            a, b = self.expr(e.then, scope), self.expr(e.otherwise, scope)
            return a if a == b else None
        if isinstance(e, ast.Call):
            return self.call(e, scope)
        if isinstance(e, ast.FieldAccess):
            return self.field_access(e, scope)
        if isinstance(e, ast.DynamicField | ast.Index):
            self.expr(e.base, scope)
            self.expr(e.key if isinstance(e, ast.DynamicField) else e.index, scope)
            return None
        if isinstance(e, ast.Lambda):
            inner = _Scope({**scope.types, e.param: None}, scope.where, scope.in_function, scope.message)
            self.expr(e.body, inner)
            return None
        if isinstance(e, ast.Struct):
            for entry in e.entries:
                self.expr(entry.value, scope)
            return "map"
        if isinstance(e, ast.ListLiteral):
            for item in e.items:
                self.expr(item, scope)
            return "list"
        return None

    def call(self, e: ast.Call, scope: _Scope) -> str | None:
        for a in e.args:
            self.expr(a, scope)
        if e.function in IMPURE:
            if scope.in_function:
                self.emit(
                    "error",
                    "impure-function",
                    f"{scope.where} calls {e.function}, which changes state; functions must be pure",
                    e,
                )
            else:
                self.emit("error", "action-in-expression", f"{e.function} is an action, not a function", e)
            return None
        builtin = BUILTINS.get(e.function)
        if builtin is not None:
            n = len(e.args)
            if n < builtin.min_args or (builtin.max_args is not None and n > builtin.max_args):
                self.emit(
                    "error", "arity", f"{e.function} takes {_arity(builtin.min_args, builtin.max_args)}, got {n}", e
                )
            return None if builtin.returns == "any" else builtin.returns
        fn = self.symbols.functions.get(e.function)
        if fn is None:
            candidates = [*BUILTINS, *self.symbols.functions]
            self.emit(
                "error", "undefined-function",
                f"call to undefined function '{e.function}' in {scope.where}" + suggestion_text(e.function, candidates),
                e, obvious_fix(e.function, candidates, e.line, e.column),
            )  # fmt: skip
            return None
        if len(e.args) != len(fn.params):
            self.emit("error", "arity", f"{fn.name} takes {len(fn.params)} argument(s), got {len(e.args)}", e)
        return type_kind(fn.return_type)

    def field_access(self, e: ast.FieldAccess, scope: _Scope) -> str | None:
        base = e.base
        if isinstance(base, ast.Name) and base.name not in scope.types and base.name in self.symbols.enums:
            enum = self.symbols.enums[base.name]
            values = [v.name for v in enum.values]
            if e.name not in values:
                owner = self.symbols.enum_values.get(e.name)
                hint = f"; '{e.name}' belongs to enum {owner}" if owner else suggestion_text(e.name, values)
                self.emit("error", "unknown-enum-value", f"enum {enum.name} has no value '{e.name}'{hint}", e,
                          obvious_fix(e.name, values, e.line, e.column) if not owner else None)  # fmt: skip
            return "string"
        if isinstance(base, ast.Name) and base.name == "message" and scope.message is not None:
            if e.name in ("sender", "payload", "type", "session"):
                return "map" if e.name == "payload" else "string"
            return self.record_field(scope.message.fields, e, f"message {scope.message.name}", error=True)
        self.expr(base, scope)
        if isinstance(base, ast.Name) and base.name in scope.types:
            declared = scope.types[base.name]
            if declared is not None:
                record = self.symbols.messages.get(declared.name) or self.symbols.blocks.get(declared.name)
                if record is not None:
                    return self.record_field(record.fields, e, f"{declared.name}", error=False)
        return None

    def record_field(self, fields: Sequence[ast.FieldDecl], e: ast.FieldAccess, what: str, error: bool) -> str | None:
        by_name = {f.name: f for f in fields}
        if e.name in by_name:
            return type_kind(by_name[e.name].type)
        self.emit(
            "error" if error else "warning", "unknown-field",
            f"{what} has no field '{e.name}'" + suggestion_text(e.name, by_name), e,
            obvious_fix(e.name, by_name, e.line, e.column),
        )  # fmt: skip
        return None

    def run(self) -> list[Diagnostic]:
        self.check_declarations()
        for fn in self.module.functions:
            self.check_function(fn)
        for actor in self.module.actors:
            self.check_actor(actor)
        return sorted(self.out, key=lambda d: (d.line, d.column, d.code))


def _arity(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo} argument(s)"
    return f"{lo} argument(s)" if lo == hi else f"{lo} to {hi} arguments"


def _walk_types(t: ast.TypeRef) -> Iterator[ast.TypeRef]:
    yield t
    for a in t.args:
        yield from _walk_types(a)


def _assigned_names(action: ast.Action) -> list[str]:
    if isinstance(action, ast.StoreFields):
        return list(action.names)
    if isinstance(action, ast.StoreValue | ast.Compute):
        return [action.name]
    if isinstance(action, ast.AppendList):
        return [action.target]
    return []


def validate(module: ast.Module, imported: Sequence[ast.Module] = ()) -> list[Diagnostic]:
    """All diagnostics for ``module``, sorted by position."""
    return _Checker(module, imported).run()
