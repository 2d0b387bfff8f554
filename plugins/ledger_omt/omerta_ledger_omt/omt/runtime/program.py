"""A checked ``.omt`` module, indexed for execution.

Building a Program validates the module: a module with errors never runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.loader import load_with_imports
from omerta_ledger_omt.omt.validator import SymbolTable, validate


@dataclass(frozen=True)
class ActorIndex:
    decl: ast.ActorDecl
    initial: str
    terminal: frozenset[str]
    known_store: frozenset[str]
    store_types: dict[str, ast.TypeRef]
    by_event: dict[tuple[str, str, str], tuple[ast.Transition, ...]] = field(default_factory=dict)

    def transitions(self, state: str, kind: str, name: str = "") -> tuple[ast.Transition, ...]:
        return self.by_event.get((state, kind, name), ())

    def timeouts(self, state: str) -> tuple[ast.Transition, ...]:
        return tuple(t for t in self.decl.transitions if t.source == state and t.event.kind == "timeout")


@dataclass(frozen=True)
class Program:
    module: ast.Module
    symbols: SymbolTable
    actors: dict[str, ActorIndex]

    @classmethod
    def from_module(cls, module: ast.Module, imported: Sequence[ast.Module] = (), path: str = "<string>") -> Program:
        errors = [d for d in validate(module, imported) if d.severity == "error"]
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise OmtError(f"{first.render(path)}{more}")
        symbols = SymbolTable.build(module, imported)
        return cls(module, symbols, {a.name: _index(a) for a in symbols.actors.values()})

    @classmethod
    def load(cls, path: str | Path) -> Program:
        p = Path(path)
        module, imported = load_with_imports(p)
        return cls.from_module(module, imported, str(p))

    def actor(self, name: str) -> ActorIndex:
        try:
            return self.actors[name]
        except KeyError:
            raise OmtError(f"no actor {name!r} (actors: {', '.join(self.actors)})") from None

    def parameter(self, name: str) -> int | float | str:
        return self.symbols.parameters[name].value

    def with_parameters(self, values: Mapping[str, int | float]) -> Program:
        """The same program with some parameters set otherwise (a node's configuration, a test's short timeout)."""
        unknown = sorted(set(values) - set(self.symbols.parameters))
        if unknown:
            raise OmtError(f"no parameter {unknown[0]!r} (parameters: {', '.join(self.symbols.parameters)})")
        parameters = dict(self.symbols.parameters)
        for name, value in values.items():
            parameters[name] = dataclasses.replace(parameters[name], value=value)
        return dataclasses.replace(self, symbols=dataclasses.replace(self.symbols, parameters=parameters))


def _index(actor: ast.ActorDecl) -> ActorIndex:
    by_event: dict[tuple[str, str, str], list[ast.Transition]] = {}
    known = {f.name for f in actor.store}
    for tr in actor.transitions:
        by_event.setdefault((tr.source, tr.event.kind, tr.event.name), []).append(tr)
        for action in (*tr.actions, *tr.else_actions):
            if isinstance(action, ast.StoreFields):
                known.update(action.names)
            elif isinstance(action, ast.StoreValue | ast.Compute):
                known.add(action.name)
            elif isinstance(action, ast.AppendList):
                known.add(action.target)
    initial = next(s.name for s in actor.states if s.initial)
    return ActorIndex(
        decl=actor,
        initial=initial,
        terminal=frozenset(s.name for s in actor.states if s.terminal),
        known_store=frozenset(known),
        store_types={f.name: f.type for f in actor.store},
        by_event={k: tuple(v) for k, v in by_event.items()},
    )
