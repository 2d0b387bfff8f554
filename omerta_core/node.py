"""The node runtime: builds the selected plugins' backends, serves control, stops cleanly.

Owns the asyncio loop of ``omerta node``: it takes the state-directory lock,
loads the identity, starts backends in kind order (transport, NAT traversal,
discovery, ledger, hypervisor), serves the control socket, and on SIGINT or
SIGTERM stops everything in reverse order within the shutdown budget.
Touches the state directory, the control socket and process signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import inspect
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from omerta_core import identity as identity_mod
from omerta_core.config import Config
from omerta_core.control.server import ControlServer
from omerta_core.errors import OmertaError
from omerta_core.identity import Identity
from omerta_core.paths import control_socket_path, ensure_state_dir
from omerta_core.plugins import PluginHost
from omerta_core.records import RECORD_KINDS, BackendRecord

LOCK_FILE = "node.lock"


class NodeAlreadyRunningError(OmertaError):
    """Another node holds this state directory."""


class MissingServiceError(OmertaError, LookupError):
    """A plugin asked for a backend kind that no selected plugin provides."""


@dataclass
class NodeContext:
    """What a plugin's backends and hooks see of the running node."""

    config: Config
    identity: Identity
    host: PluginHost
    log: Any
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id

    def plugin_config(self, name: str) -> dict[str, Any]:
        return self.config.plugin(name)

    def plugin_state_dir(self, name: str) -> Path:
        """A directory of the state directory reserved for one plugin."""
        return ensure_state_dir(self.state_dir / "plugins" / name)

    def service(self, kind: str, name: str | None = None) -> Any:
        """The running backend of ``kind``: by name, else the one ``[node] <kind>`` names, else the first started."""
        running = self.services.get(kind, {})
        name = name or self.config.node(kind)
        if name is not None and name in running:
            return running[name]
        if name is None and running:
            return next(iter(running.values()))
        wanted = f"{kind} {name!r}" if name else f"a {kind}"
        raise MissingServiceError(f"no selected plugin provides {wanted}")

    def has_service(self, kind: str) -> bool:
        return bool(self.services.get(kind))

    def request_stop(self) -> None:
        self.stop_requested.set()


class Node:
    """One ``omerta node`` process."""

    def __init__(self, config: Config, host: PluginHost) -> None:
        self.config = config
        self.host = host
        self.log = structlog.get_logger("omerta.node")
        self.context: NodeContext | None = None
        self.control: ControlServer | None = None
        self._lock_fd: int | None = None
        self._started: list[tuple[str, str, Any]] = []

    async def run(self) -> None:
        state_dir = ensure_state_dir(self.config.state_dir)
        self._take_lock(state_dir)
        try:
            identity = identity_mod.load_or_create(state_dir)
            self.log = self.log.bind(peer=identity.peer_id.short)
            self.context = NodeContext(self.config, identity, self.host, self.log)
            self._install_signal_handlers(self.context)
            try:
                await self._start(self.context)
                self.log.info("node started", state_dir=str(state_dir), plugins=list(self.host.loaded))
                await self.context.stop_requested.wait()
            finally:
                await self._shutdown(self.context)
        finally:
            self._release_lock()

    async def _start(self, ctx: NodeContext) -> None:
        self.log.info("plugins loaded", plugins={n: p.version for n, p in self.host.loaded.items()})
        for kind in RECORD_KINDS:
            for plugin_name in self.host.loaded:
                for record in self.host.records_of(plugin_name).get(kind, []):
                    await self._start_backend(ctx, kind, plugin_name, record)
        self.control = ControlServer(control_socket_path(ctx.state_dir), self._control_methods(ctx))
        await self.control.start()
        for result in self.host.hook.omerta_node_started(node=ctx):
            await _maybe_await(result)

    async def _start_backend(self, ctx: NodeContext, kind: str, plugin: str, record: BackendRecord) -> None:
        reason = record.why_unusable()
        if reason:
            self.log.warning("backend skipped", kind=kind, backend=record.name, plugin=plugin, reason=reason)
            return
        service = record.factory(ctx)
        ctx.services.setdefault(kind, {})[record.name] = service
        self._started.append((kind, record.name, service))
        await service.start()
        self.log.info("backend started", kind=kind, backend=record.name, plugin=plugin)

    async def _shutdown(self, ctx: NodeContext) -> None:
        budget = float(self.config.node("shutdown_timeout_s"))
        try:
            await asyncio.wait_for(self._stop_everything(ctx), timeout=budget)
        except TimeoutError:
            self.log.warning("shutdown budget exceeded; exiting anyway", budget_s=budget)
        self.log.info("node stopped")

    async def _stop_everything(self, ctx: NodeContext) -> None:
        self.log.info("node stopping")
        for result in self.host.hook.omerta_node_stopping(node=ctx):
            with contextlib.suppress(Exception):
                await _maybe_await(result)
        if self.control is not None:
            await self.control.stop()
        while self._started:
            kind, name, service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                self.log.exception("backend failed to stop", kind=kind, backend=name)

    def _control_methods(self, ctx: NodeContext) -> dict[str, Any]:
        methods: dict[str, Any] = {
            "status": lambda _params: self.status(ctx),
            "stop": lambda _params: self._stop_soon(ctx),
        }
        for plugin_methods in self.host.hook.omerta_control_methods():
            for name, method in (plugin_methods or {}).items():
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
        return {
            "peer_id": ctx.peer_id,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - ctx.started_at, 3),
            "state_dir": str(ctx.state_dir),
            "plugins": {n: p.version for n, p in self.host.loaded.items()},
            "services": {
                kind: {name: _service_status(svc) for name, svc in running.items()}
                for kind, running in ctx.services.items()
            },
            "plugin_status": sections,
            "control": {
                "refused": self.control.refused if self.control else 0,
                "malformed": self.control.malformed if self.control else 0,
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
