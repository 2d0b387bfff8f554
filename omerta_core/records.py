"""Typed records that plugins return from ``omerta_services``: what a backend provides and needs.

A record names one backend: the service kind it ``provides`` (a Protocol class,
built-in ones in :mod:`omerta_core.interfaces`, or a plugin's own), the kinds it
``needs`` to start and the kinds it ``uses`` when present. The kernel picks
backends by ``name``, orders them by their needs and builds each by calling
``factory(node)``. Pure data; touches nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omerta_core.interfaces.common import Service

if TYPE_CHECKING:
    from omerta_core.node import NodeContext

#: Every platform name the kernel compares against ``sys.platform``.
ANY_PLATFORM: tuple[str, ...] = ("linux", "darwin", "win32")

#: A service kind: a Protocol class (``Transport``, ``Discovery``, or a plugin's own).
ServiceKind = type


def kind_name(kind: ServiceKind) -> str:
    """The kind's name in config, the CLI and messages: its class name in snake case.

    ``Transport`` is ``transport``, ``NatTraversal`` is ``nat_traversal``.
    """
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()


def article(name: str) -> str:
    """``a transport``, ``an ui_theme``: the name of a kind with its indefinite article."""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name.replace('_', ' ')}"


@dataclass(frozen=True)
class Need:
    """One service kind a backend needs (or, with ``optional``, uses when present).

    ``also`` lists further protocols the provider must satisfy (the relay needs a
    transport that is also a ``PacketPathHost``); ``install`` is the distribution a
    user can install when nothing provides the kind.
    """

    kind: ServiceKind
    also: tuple[type, ...] = ()
    optional: bool = False
    install: str | None = None

    @property
    def name(self) -> str:
        return kind_name(self.kind)

    def describe(self) -> str:
        base = article(self.name)
        if self.also:
            base += " that is " + " and ".join(a.__name__ for a in self.also)
        return base


@dataclass(frozen=True)
class ServiceRecord:
    """One backend a plugin offers.

    ``factory`` receives the running :class:`~omerta_core.node.NodeContext` and
    returns the service object, which must satisfy ``provides`` and
    :class:`~omerta_core.interfaces.common.Service`. ``needs`` are started before
    it and must be running; ``default`` marks the backend the kernel loads to fill
    another plugin's need when the user named no provider. ``platforms`` lists the
    ``sys.platform`` values the backend works on; ``unusable_reason`` lets a
    backend refuse for another cause (a missing system library) with a sentence a
    user can act on.
    """

    name: str
    provides: ServiceKind
    factory: Callable[[NodeContext], Service]
    description: str
    needs: tuple[Need, ...] = ()
    default: bool = False
    platforms: tuple[str, ...] = ANY_PLATFORM
    unusable_reason: Callable[[], str | None] | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return kind_name(self.provides)

    def why_unusable(self, platform: str = sys.platform) -> str | None:
        """Return why this backend cannot run here, or ``None`` when it can."""
        if platform not in self.platforms:
            wanted = ", ".join(self.platforms)
            return f"{self.name} runs on {wanted}, not on {platform}"
        if self.unusable_reason is not None:
            return self.unusable_reason()
        return None

    def required(self) -> tuple[Need, ...]:
        return tuple(n for n in self.needs if not n.optional)
