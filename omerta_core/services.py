"""The running services of a node: typed lookup by service kind, start order, claims.

:class:`ServiceTable` holds the backends a node started, keyed by their kind (the
Protocol class a record ``provides``) and name. ``get(Transport)`` returns a
``Transport`` as far as mypy is concerned, so every call through it is checked.
:func:`start_order` sorts records so that each starts after what it needs.
:class:`Claims` records who registered a named thing (a control method, a
channel) so a second claim fails naming both plugins, and
:func:`current_plugin` tells shared code which plugin is starting or being
called. Pure bookkeeping; touches nothing.
"""

from __future__ import annotations

import contextlib
import graphlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar, cast

from omerta_core.errors import ConflictError, DependencyCycleError, OmertaError
from omerta_core.records import ServiceRecord, article, kind_name

T = TypeVar("T")

#: A service kind as a lookup key. Typed ``Callable[..., T]`` rather than ``type[T]``
#: because mypy refuses Protocol classes where ``type[T]`` is expected (mypy #4717);
#: pass the Protocol class itself, as in ``node.service(Transport)``.
KindKey = Callable[..., T]

_current_plugin: ContextVar[str | None] = ContextVar("omerta_current_plugin", default=None)


class MissingServiceError(OmertaError, LookupError):
    """A plugin asked for a service kind (or name) that no running backend provides."""


def current_plugin() -> str | None:
    """The plugin whose backend, hook or handler registration is running now (``None``: the kernel)."""
    return _current_plugin.get()


@contextlib.contextmanager
def acting_for(plugin: str | None) -> Iterator[None]:
    """Run a block (and the tasks it creates) on behalf of ``plugin``."""
    token = _current_plugin.set(plugin)
    try:
        yield
    finally:
        _current_plugin.reset(token)


@dataclass(frozen=True)
class RunningService:
    plugin: str
    record: ServiceRecord
    instance: object


@dataclass
class ServiceTable:
    """The started backends, by kind and name; ``defaults`` maps a kind's name to its preferred plugin."""

    defaults: dict[str, str] = field(default_factory=dict)
    _by_kind: dict[type, dict[str, RunningService]] = field(default_factory=dict)

    def add(self, plugin: str, record: ServiceRecord, instance: object) -> None:
        running = self._by_kind.setdefault(record.provides, {})
        if record.name in running:
            first = running[record.name].plugin
            raise ConflictError(
                f"plugins {first} and {plugin} both provide {article(record.kind)} named {record.name!r}"
            )
        running[record.name] = RunningService(plugin, record, instance)

    def remove(self, record: ServiceRecord) -> None:
        self._by_kind.get(record.provides, {}).pop(record.name, None)

    def find(self, kind: KindKey[T], name: str | None = None) -> T | None:
        """The running backend of ``kind``: by name, else the configured default, else the first started."""
        running = self._by_kind.get(cast(type, kind), {})
        if name is not None:
            found = running.get(name)
        else:
            preferred = self.defaults.get(kind_name(cast(type, kind)))
            found = next((s for s in running.values() if s.plugin == preferred), None)
            found = found or next(iter(running.values()), None)
        return cast(T, found.instance) if found is not None else None

    def get(self, kind: KindKey[T], name: str | None = None) -> T:
        found = self.find(kind, name)
        if found is None:
            kind_text = kind_name(cast(type, kind))
            wanted = f"{kind_text} {name!r}" if name else article(kind_text)
            raise MissingServiceError(f"no running plugin provides {wanted}")
        return found

    def all_of(self, kind: KindKey[T]) -> dict[str, T]:
        return {name: cast(T, s.instance) for name, s in self._by_kind.get(cast(type, kind), {}).items()}

    def by_kind_name(self, name: str) -> dict[str, object]:
        """The string form, for the CLI and config only: backends of the kind called ``name``."""
        for kind, running in self._by_kind.items():
            if kind_name(kind) == name:
                return {n: s.instance for n, s in running.items()}
        return {}

    def running(self) -> list[RunningService]:
        return [s for running in self._by_kind.values() for s in running.values()]


def start_order(entries: Sequence[tuple[str, ServiceRecord]]) -> list[tuple[str, ServiceRecord]]:
    """``(plugin, record)`` pairs sorted so each starts after every provider of a kind it needs or uses.

    Ties keep the given order. A cycle raises :class:`DependencyCycleError` naming it.
    """
    providers: dict[type, list[int]] = {}
    for index, (_plugin, record) in enumerate(entries):
        providers.setdefault(record.provides, []).append(index)
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for index, (_plugin, record) in enumerate(entries):
        sorter.add(index, *(p for need in record.needs for p in providers.get(need.kind, []) if p != index))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " → ".join(f"{entries[i][1].name} ({entries[i][0]})" for i in exc.args[1])
        raise DependencyCycleError(f"backends need each other in a cycle: {cycle}") from exc
    order: list[int] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return [entries[i] for i in order]


class Claims:
    """Who registered each name in one namespace (``"control method"``, ``"channel"``)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.owners: dict[str, str] = {}

    def claim(self, name: str, owner: str | None = None) -> None:
        """Record ``owner`` (default: :func:`current_plugin`) for ``name``; any second claim is a conflict."""
        owner = owner or current_plugin() or "kernel"
        if name in self.owners:
            first = self.owners[name]
            both = f"both {first} and {owner}" if first != owner else f"{owner} twice"
            raise ConflictError(f"{self.what} {name!r} is registered by {both}")
        self.owners[name] = owner

    def release(self, name: str) -> None:
        self.owners.pop(name, None)
