"""The node runtime: builds the selected plugins' backends, serves control, stops cleanly.

Owns the asyncio loop of ``omerta node``: it takes the state-directory lock,
loads the identity, starts backends in dependency order (each after what it
needs), serves the control socket, and on SIGINT or SIGTERM stops everything in
reverse order within the shutdown budget.
Touches the state directory, the control socket and process signals.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import inspect
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog
import structlog.typing

from omerta_core import identity as identity_mod
from omerta_core import transport_restart
from omerta_core.config import Config
from omerta_core.control.server import ControlServer
from omerta_core.errors import OmertaError, UnmetNeedError
from omerta_core.identity import Identity
from omerta_core.interfaces.common import PeerId, Service
from omerta_core.paths import control_socket_path, ensure_plugin_dir, ensure_state_dir, identity_key_path
from omerta_core.plugins import PluginHost
from omerta_core.records import ServiceRecord
from omerta_core.services import Claims, KindKey, ServiceTable, acting_for, start_order

T = TypeVar("T")

#: Control methods the kernel serves itself; a plugin offering one of these names is a conflict.
KERNEL_METHODS = ("status", "stop", "transport.restart")

LOCK_FILE = "node.lock"
#: What a person who just started their first node may want to do next.
FIRST_START_HINT = (
    "make a network with `omerta network create NAME` and share `omerta network invite NAME`, "
    "or join one with `omerta network join LINK`; `omerta status` shows this node"
)


class NodeAlreadyRunningError(OmertaError):
    """Another node holds this state directory."""


@dataclass
class NodeContext:
    """What a plugin's backends and hooks see of the running node."""

    config: Config
    identity: Identity
    host: PluginHost
    log: structlog.typing.FilteringBoundLogger
    services: ServiceTable = field(default_factory=ServiceTable)
    started_at: float = field(default_factory=time.time)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.services.defaults = self.config.table("node.defaults")

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    def plugin_config(self, name: str) -> dict[str, Any]:
        return self.config.plugin(name)

    def plugin_state_dir(self, name: str) -> Path:
        """A directory of the state directory reserved for one plugin."""
        return ensure_plugin_dir(self.state_dir, name)

    def service(self, kind: KindKey[T], name: str | None = None) -> T:
        """The running backend of ``kind`` (a Protocol class): by name, else ``[node] defaults``, else the first
        started. Raises :class:`MissingServiceError` when none runs."""
        return self.services.get(kind, name)

    def find(self, kind: KindKey[T], name: str | None = None) -> T | None:
        """Like :meth:`service`, but ``None`` when no backend of ``kind`` runs (for kinds a backend only uses)."""
        return self.services.find(kind, name)

    def request_stop(self) -> None:
        self.stop_requested.set()


class Node:
    """One ``omerta node`` process."""

    def __init__(self, config: Config, host: PluginHost) -> None:
        self.config = config
        self.host = host
        self.log: structlog.typing.FilteringBoundLogger = structlog.get_logger("omerta.node")
        self.context: NodeContext | None = None
        self.control: ControlServer | None = None
        self._lock_fd: int | None = None
        self._started: list[tuple[str, ServiceRecord, Service]] = []

    async def run(self) -> None:
        state_dir = ensure_state_dir(self.config.state_dir)
        self._take_lock(state_dir)
        try:
            first_start = not identity_key_path(state_dir).exists()
            identity = identity_mod.load_or_create(state_dir)
            self.log = self.log.bind(peer=identity.peer_id.short)
            if first_start:
                self.log.info("new identity created", peer_id=str(identity.peer_id), state_dir=str(state_dir))
            self.context = NodeContext(self.config, identity, self.host, self.log)
            self._install_signal_handlers(self.context)
            try:
                await self._start(self.context)
                self.log.info(
                    "node started",
                    peer_id=str(identity.peer_id),
                    state_dir=str(state_dir),
                    plugins=self._running_plugins(),
                    **({"next": FIRST_START_HINT} if first_start else {}),
                )
                await self.context.stop_requested.wait()
            finally:
                await self._shutdown(self.context)
        finally:
            self._release_lock()

    async def _start(self, ctx: NodeContext) -> None:
        self.log.info("plugins loaded", plugins={n: p.version for n, p in self.host.loaded.items()})
        for pulled in self.host.pulled_in:
            self.log.info(f"{pulled.plugin} loaded: needed by {pulled.needed_by}", kind=pulled.kind)
        entries: list[tuple[str, ServiceRecord]] = []
        for plugin_name in self.host.loaded:
            for record in self.host.records_of(plugin_name):
                reason = record.why_unusable()
                if reason:
                    self.log.warning("backend skipped", kind=record.kind, backend=record.name, reason=reason)
                else:
                    entries.append((plugin_name, record))
        for plugin_name, record in start_order(entries):
            await self._start_backend(ctx, plugin_name, record)
        self.control = ControlServer(control_socket_path(ctx.state_dir), self._control_methods(ctx))
        await self.control.start()
        for plugin_name in self.host.loaded:
            with acting_for(plugin_name):
                await _maybe_await(self.host.call_one(plugin_name, "omerta_node_started", node=ctx))

    async def _start_backend(self, ctx: NodeContext, plugin: str, record: ServiceRecord) -> None:
        for need in record.needs:
            running = ctx.services.all_of(need.kind)
            fit = [s for s in running.values() if all(isinstance(s, also) for also in need.also)]
            if not fit and not need.optional:
                what = "and none of the running ones is" if running else "and no selected plugin provides one"
                raise UnmetNeedError(f"{plugin} needs {need.describe()}, {what}; select one with --plugins")
        with acting_for(plugin):
            service = record.factory(ctx)
            ctx.services.add(plugin, record, service)
            self._started.append((plugin, record, service))
            await service.start()
        self.log.info("backend started", kind=record.kind, backend=record.name, plugin=plugin)

    def _running_plugins(self) -> list[str]:
        """Plugins with a running backend or no backend at all (a plugin whose backends were all skipped is not)."""
        running = {s.plugin for s in self.context.services.running()} if self.context else set()
        return [n for n in self.host.loaded if n in running or not self.host.records_of(n)]

    async def _shutdown(self, ctx: NodeContext) -> None:
        budget = float(self.config.node("shutdown_timeout_s"))
        try:
            await asyncio.wait_for(self._stop_everything(ctx), timeout=budget)
        except TimeoutError:
            self.log.warning("shutdown budget exceeded; exiting anyway", budget_s=budget)
        self.log.info("node stopped")

    async def _stop_everything(self, ctx: NodeContext) -> None:
        self.log.info("node stopping")
        for plugin_name in self.host.loaded:
            try:
                await _maybe_await(self.host.call_one(plugin_name, "omerta_node_stopping", node=ctx))
            except Exception:
                self.log.exception("plugin failed while the node was stopping", plugin=plugin_name)
        if self.control is not None:
            await self.control.stop()
        while self._started:
            plugin, record, service = self._started.pop()
            ctx.services.remove(record)
            try:
                await service.stop()
            except Exception:
                self.log.exception("backend failed to stop", kind=record.kind, backend=record.name, plugin=plugin)

    def _control_methods(self, ctx: NodeContext) -> dict[str, Any]:
        claims = Claims("control method")
        methods: dict[str, Any] = {
            "status": lambda _params: self.status(ctx),
            "stop": lambda _params: self._stop_soon(ctx),
            "transport.restart": functools.partial(transport_restart.restart, ctx),
        }
        for name in KERNEL_METHODS:
            claims.claim(name, "kernel")
        for plugin_name in self.host.loaded:
            for name, method in (self.host.call_one(plugin_name, "omerta_control_methods") or {}).items():
                claims.claim(name, plugin_name)
                methods[name] = functools.partial(method, ctx)
        return methods

    def _stop_soon(self, ctx: NodeContext) -> dict[str, bool]:
        asyncio.get_running_loop().call_soon(ctx.request_stop)
        return {"stopping": True}

    def status(self, ctx: NodeContext) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for plugin_name in self.host.loaded:
            section = self.host.call_one(plugin_name, "omerta_node_status", node=ctx)
            if section:
                sections[plugin_name] = section
        services: dict[str, dict[str, Any]] = {}
        for running in ctx.services.running():
            services.setdefault(running.record.kind, {})[running.record.name] = _service_status(running.instance)
        return {
            "peer_id": ctx.peer_id,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - ctx.started_at, 3),
            "state_dir": str(ctx.state_dir),
            "plugins": {n: self.host.loaded[n].version for n in self._running_plugins()},
            "pulled_in": {p.plugin: p.needed_by for p in self.host.pulled_in},
            "services": services,
            "plugin_status": sections,
            "control": {
                "refused": self.control.refused if self.control else 0,
                "malformed": self.control.malformed if self.control else 0,
                "unsendable": self.control.unsendable if self.control else 0,
            },
        }

    def _install_signal_handlers(self, ctx: NodeContext) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, ctx.request_stop)

    def _take_lock(self, state_dir: Path) -> None:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise NodeAlreadyRunningError(f"another node is running with state directory {state_dir}") from exc
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _service_status(service: Any) -> Any:
    status = getattr(service, "status", None)
    return status() if callable(status) else {}


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def run_node(config: Config, host: PluginHost) -> None:
    """Run a node until it is asked to stop."""
    asyncio.run(Node(config, host).run())
