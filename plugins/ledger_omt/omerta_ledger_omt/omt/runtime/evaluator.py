"""Evaluation of ``.omt`` expressions and function bodies.

Name resolution, first match wins: locals (lambda, loop and function variables,
trigger arguments), ``message``, the store (inside actors), ``peer_id``/``chain``/
``session_id``, parameters, bare enum values. Reads the store and calls natives; it
never writes the store (actions do that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtRuntimeError
from omerta_ledger_omt.omt.runtime.events import Envelope
from omerta_ledger_omt.omt.runtime.natives import NativeContext, NativeRegistry
from omerta_ledger_omt.omt.runtime.program import Program

# Deepest user-function call chain; .omt has no recursion need, this stops runaway specs.
MAX_CALL_DEPTH = 64


@dataclass(frozen=True)
class Closure:
    param: str
    body: ast.Expr
    env: Env


@dataclass
class Env:
    locals: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] | None = None  # None inside function bodies
    known_store: frozenset[str] = frozenset()
    message: Envelope | None = None
    runtime: dict[str, Any] = field(default_factory=dict)

    def child(self, **extra: Any) -> Env:
        return Env({**self.locals, **extra}, self.store, self.known_store, self.message, self.runtime)


@dataclass(frozen=True)
class MessageView:
    """``message`` inside an ``on MESSAGE`` transition."""

    envelope: Envelope

    def field(self, name: str) -> Any:
        env = self.envelope
        special = {"sender": env.sender, "payload": env.payload, "type": env.type, "session": env.session}
        return special[name] if name in special else env.payload.get(name)


class Evaluator:
    def __init__(self, program: Program, natives: NativeRegistry, context: Callable[[Env], NativeContext]) -> None:
        self.program = program
        self.natives = natives
        self.context = context
        self.enum_values = program.symbols.enum_values
        self.depth = 0

    def name(self, name: str, env: Env) -> Any:
        if name in env.locals:
            return env.locals[name]
        if name == "message" and env.message is not None:
            return MessageView(env.message)
        if env.store is not None and (name in env.store or name in env.known_store):
            return env.store.get(name)
        if name in env.runtime and env.store is not None:
            return env.runtime[name]
        if name in self.program.symbols.parameters:
            return self.program.parameter(name)
        if name in self.enum_values:
            return name
        raise OmtRuntimeError(f"undefined name '{name}'")

    def eval(self, e: ast.Expr, env: Env) -> Any:
        if isinstance(e, ast.Literal):
            return e.value
        if isinstance(e, ast.Name):
            return self.name(e.name, env)
        if isinstance(e, ast.Binary):
            return self.binary(e, env)
        if isinstance(e, ast.Unary):
            v = self.eval(e.operand, env)
            if e.op == "not":
                return not _truth(v, "not")
            if not isinstance(v, int | float):
                raise OmtRuntimeError(f"line {e.line}: '-' on {type(v).__name__}")
            return -v
        if isinstance(e, ast.Conditional):
            branch = e.then if _truth(self.eval(e.condition, env), "IF") else e.otherwise
            return self.eval(branch, env)
        if isinstance(e, ast.Call):
            return self.call(e, env)
        if isinstance(e, ast.FieldAccess):
            if isinstance(e.base, ast.Name) and self._is_enum(e.base.name, env):
                return e.name
            return _field(self.eval(e.base, env), e.name)
        if isinstance(e, ast.DynamicField):
            return _field(self.eval(e.base, env), self.eval(e.key, env))
        if isinstance(e, ast.Index):
            return _index(self.eval(e.base, env), self.eval(e.index, env))
        if isinstance(e, ast.Lambda):
            return Closure(e.param, e.body, env)
        if isinstance(e, ast.Struct):
            out: dict[str, Any] = {}
            for entry in e.entries:
                value = self.eval(entry.value, env)
                if entry.name is None:
                    if isinstance(value, MessageView):
                        value = value.envelope.payload
                    if not isinstance(value, dict):
                        raise OmtRuntimeError(f"line {entry.line}: '...' spreads a {type(value).__name__}, not a map")
                    out.update(value)
                else:
                    out[entry.name] = _plain(value)
            return out
        if isinstance(e, ast.ListLiteral):
            return [_plain(self.eval(i, env)) for i in e.items]
        raise OmtRuntimeError(f"cannot evaluate {type(e).__name__}")

    def _is_enum(self, name: str, env: Env) -> bool:
        shadowed = name in env.locals or (env.store is not None and name in env.known_store)
        return name in self.program.symbols.enums and not shadowed

    def binary(self, e: ast.Binary, env: Env) -> Any:
        if e.op == "and":
            return _truth(self.eval(e.left, env), "and") and _truth(self.eval(e.right, env), "and")
        if e.op == "or":
            return _truth(self.eval(e.left, env), "or") or _truth(self.eval(e.right, env), "or")
        a, b = _plain(self.eval(e.left, env)), _plain(self.eval(e.right, env))
        try:
            match e.op:
                case "==":
                    return a == b
                case "!=":
                    return a != b
                case "<" | "<=" | ">" | ">=":
                    if a is None or b is None:
                        return False
                    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]
                case "+":
                    return a + b
                case "-":
                    return a - b
                case "*":
                    return a * b
                case "/":
                    return a / b
        except (TypeError, ZeroDivisionError) as exc:
            raise OmtRuntimeError(
                f"line {e.line}: {e.op} on {type(a).__name__} and {type(b).__name__}: {exc}"
            ) from None
        raise OmtRuntimeError(f"unknown operator {e.op}")

    def call(self, e: ast.Call, env: Env) -> Any:
        args = [_plain(self.eval(a, env)) if not isinstance(a, ast.Lambda) else self.eval(a, env) for a in e.args]
        fn = self.program.symbols.functions.get(e.function)
        if fn is not None and not fn.native:
            return self.call_function(fn, args)
        native = self.natives.get(e.function)
        if native is None:
            raise OmtRuntimeError(f"line {e.line}: no native function '{e.function}' is registered")
        try:
            return native(self.context(env), *args)
        except OmtRuntimeError:
            raise
        except Exception as exc:
            raise OmtRuntimeError(f"line {e.line}: {e.function} failed: {exc}") from exc

    def apply(self, closure: Closure, *args: Any) -> Any:
        if not isinstance(closure, Closure):
            raise OmtRuntimeError("expected a lambda such as 'x => x.amount'")
        return self.eval(closure.body, closure.env.child(**{closure.param: args[0] if args else None}))

    def call_function(self, fn: ast.FunctionDecl, args: list[Any]) -> Any:
        if len(args) != len(fn.params):
            raise OmtRuntimeError(f"{fn.name} takes {len(fn.params)} argument(s), got {len(args)}")
        if self.depth >= MAX_CALL_DEPTH:
            raise OmtRuntimeError(f"{fn.name}: calls nested deeper than {MAX_CALL_DEPTH}")
        env = Env({p.name: a for p, a in zip(fn.params, args, strict=True)})
        self.depth += 1
        try:
            done, value = self.run(fn.body, env)
        finally:
            self.depth -= 1
        if not done:
            raise OmtRuntimeError(f"function {fn.name} ended without RETURN")
        return value

    def run(self, body: tuple[ast.Statement, ...], env: Env) -> tuple[bool, Any]:
        for st in body:
            if isinstance(st, ast.Return):
                return True, _plain(self.eval(st.value, env))
            if isinstance(st, ast.Assign):
                env.locals[st.name] = _plain(self.eval(st.value, env))
            elif isinstance(st, ast.IndexAssign):
                target = env.locals.get(st.name)
                if target is None:
                    target = {}
                if not isinstance(target, dict | list):
                    raise OmtRuntimeError(f"line {st.line}: {st.name}[...] = on a {type(target).__name__}")
                target = dict(target) if isinstance(target, dict) else list(target)
                target[self.eval(st.index, env)] = _plain(self.eval(st.value, env))
                env.locals[st.name] = target
            elif isinstance(st, ast.ForLoop):
                for item in _iterate(self.eval(st.iterable, env)):
                    env.locals[st.var] = item
                    done, value = self.run(st.body, env)
                    if done:
                        return True, value
        return False, None


def _truth(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    raise OmtRuntimeError(f"'{where}' needs a bool, got {type(value).__name__}")


def _plain(value: Any) -> Any:
    return value.envelope.payload if isinstance(value, MessageView) else value


def _field(base: Any, name: Any) -> Any:
    if isinstance(base, MessageView):
        return base.field(str(name))
    if base is None:
        return None
    if isinstance(base, dict):
        return base.get(name)
    raise OmtRuntimeError(f"field '{name}' of a {type(base).__name__}")


def _index(base: Any, index: Any) -> Any:
    base = _plain(base)
    if base is None:
        return None
    if isinstance(base, dict):
        return base.get(index)
    if isinstance(base, list | str) and isinstance(index, int):
        return base[index] if -len(base) <= index < len(base) else None
    raise OmtRuntimeError(f"index {index!r} into a {type(base).__name__}")


def _iterate(value: Any) -> list[Any]:
    value = _plain(value)
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return list(value)
    raise OmtRuntimeError(f"FOR over a {type(value).__name__}")
