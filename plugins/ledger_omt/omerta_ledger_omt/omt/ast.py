"""Typed syntax tree of an ``.omt`` file.

Every node carries ``line``/``column`` (1-based, of its first token) and ``end_line``;
positions are left out of equality so that two trees parsed from differently laid out
sources compare equal. Pure data: no parsing or evaluation here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as TypingLiteral


@dataclass(frozen=True)
class Node:
    line: int = field(default=0, compare=False, kw_only=True, repr=False)
    column: int = field(default=0, compare=False, kw_only=True, repr=False)
    end_line: int = field(default=0, compare=False, kw_only=True, repr=False)


# -- types ---------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef(Node):
    name: str
    args: tuple[TypeRef, ...] = ()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}<{', '.join(str(a) for a in self.args)}>"


# -- expressions ---------------------------------------------------------------


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Literal(Node):
    value: int | float | str | bool | None


@dataclass(frozen=True)
class Unary(Node):
    op: TypingLiteral["not", "-"]
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    op: str  # one of: or and == != < <= > >= + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Conditional(Node):
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class FieldAccess(Node):
    base: Expr
    name: str


@dataclass(frozen=True)
class DynamicField(Node):
    base: Expr
    key: Expr


@dataclass(frozen=True)
class Index(Node):
    base: Expr
    index: Expr


@dataclass(frozen=True)
class Lambda(Node):
    param: str
    body: Expr


@dataclass(frozen=True)
class StructEntry(Node):
    name: str | None  # None: a spread ``...expr``
    value: Expr


@dataclass(frozen=True)
class Struct(Node):
    entries: tuple[StructEntry, ...]


@dataclass(frozen=True)
class ListLiteral(Node):
    items: tuple[Expr, ...]


Expr = (
    Name
    | Literal
    | Unary
    | Binary
    | Conditional
    | Call
    | FieldAccess
    | DynamicField
    | Index
    | Lambda
    | Struct
    | ListLiteral
)


# -- function statements -------------------------------------------------------


@dataclass(frozen=True)
class Assign(Node):
    name: str
    value: Expr


@dataclass(frozen=True)
class IndexAssign(Node):
    name: str
    index: Expr
    value: Expr


@dataclass(frozen=True)
class ForLoop(Node):
    var: str
    iterable: Expr
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Return(Node):
    value: Expr


Statement = Assign | IndexAssign | ForLoop | Return


# -- actions -------------------------------------------------------------------


@dataclass(frozen=True)
class StoreFields(Node):
    """``store a, b``: copy same-named message fields or trigger arguments into the store."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class StoreValue(Node):
    """``STORE(k, e)``."""

    name: str
    value: Expr


@dataclass(frozen=True)
class Compute(Node):
    """``x = e`` (``lookup x = e`` when ``lookup`` is set)."""

    name: str
    value: Expr
    lookup: bool = False


@dataclass(frozen=True)
class Send(Node):
    target: Expr
    message: str


@dataclass(frozen=True)
class Broadcast(Node):
    targets: str
    message: str


@dataclass(frozen=True)
class AppendList(Node):
    target: str
    value: Expr


@dataclass(frozen=True)
class AppendBlock(Node):
    """``APPEND(chain, BLOCK)``: append a block to the actor's own chain."""

    block: str


Action = StoreFields | StoreValue | Compute | Send | Broadcast | AppendList | AppendBlock


# -- actors --------------------------------------------------------------------

EventKind = TypingLiteral["auto", "message", "trigger", "timeout"]


@dataclass(frozen=True)
class Event(Node):
    kind: EventKind
    name: str = ""  # message, trigger or parameter name; empty for auto


@dataclass(frozen=True)
class Transition(Node):
    source: str
    target: str
    event: Event
    guard: Expr | None = None
    actions: tuple[Action, ...] = ()
    else_target: str | None = None
    else_actions: tuple[Action, ...] = ()
    #: Where the target state's name is written, so a wrong one is reported there.
    target_line: int = field(default=0, compare=False, kw_only=True, repr=False)
    target_column: int = field(default=0, compare=False, kw_only=True, repr=False)


@dataclass(frozen=True)
class FieldDecl(Node):
    name: str
    type: TypeRef


@dataclass(frozen=True)
class StoreDecl(Node):
    fields: tuple[FieldDecl, ...]


@dataclass(frozen=True)
class TriggerDecl(Node):
    name: str
    params: tuple[FieldDecl, ...]
    allowed_in: tuple[str, ...]
    description: str | None = None


@dataclass(frozen=True)
class StateDecl(Node):
    name: str
    initial: bool = False
    terminal: bool = False
    description: str | None = None


ActorItem = StoreDecl | TriggerDecl | StateDecl | Transition


@dataclass(frozen=True)
class ActorDecl(Node):
    name: str
    description: str | None
    items: tuple[ActorItem, ...]

    @property
    def store(self) -> tuple[FieldDecl, ...]:
        """All store fields; several ``store`` blocks are merged in order."""
        return tuple(f for i in self.items if isinstance(i, StoreDecl) for f in i.fields)

    @property
    def triggers(self) -> tuple[TriggerDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, TriggerDecl))

    @property
    def states(self) -> tuple[StateDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, StateDecl))

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(i for i in self.items if isinstance(i, Transition))


# -- top-level declarations ----------------------------------------------------


@dataclass(frozen=True)
class Header(Node):
    id: str
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Import(Node):
    path: str


@dataclass(frozen=True)
class Parameter(Node):
    name: str
    value: int | float | str
    unit: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ParameterBlock(Node):
    parameters: tuple[Parameter, ...]


@dataclass(frozen=True)
class EnumValue(Node):
    name: str


@dataclass(frozen=True)
class EnumDecl(Node):
    name: str
    description: str | None
    values: tuple[EnumValue, ...]


@dataclass(frozen=True)
class MessageDecl(Node):
    name: str
    sender: str
    recipients: tuple[str, ...]
    signed: bool
    fields: tuple[FieldDecl, ...]


@dataclass(frozen=True)
class BlockDecl(Node):
    name: str
    writers: tuple[str, ...]
    fields: tuple[FieldDecl, ...]


@dataclass(frozen=True)
class FunctionDecl(Node):
    name: str
    params: tuple[FieldDecl, ...]
    return_type: TypeRef
    body: tuple[Statement, ...] = ()
    native: bool = False
    library: str | None = None


Decl = Header | Import | ParameterBlock | EnumDecl | MessageDecl | BlockDecl | ActorDecl | FunctionDecl


@dataclass(frozen=True)
class Module(Node):
    """One parsed file: its declarations in source order."""

    decls: tuple[Decl, ...]

    @property
    def header(self) -> Header | None:
        headers = [d for d in self.decls if isinstance(d, Header)]
        return headers[-1] if headers else None

    @property
    def imports(self) -> tuple[Import, ...]:
        return tuple(d for d in self.decls if isinstance(d, Import))

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(p for d in self.decls if isinstance(d, ParameterBlock) for p in d.parameters)

    @property
    def enums(self) -> tuple[EnumDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, EnumDecl))

    @property
    def messages(self) -> tuple[MessageDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, MessageDecl))

    @property
    def blocks(self) -> tuple[BlockDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, BlockDecl))

    @property
    def actors(self) -> tuple[ActorDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, ActorDecl))

    @property
    def functions(self) -> tuple[FunctionDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, FunctionDecl))
