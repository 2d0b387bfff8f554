"""The Linux consumer gateway: a rootless user + network namespace per rented VM.

:class:`LinuxGateway` starts :mod:`omerta_vpn.netns_helper` under
``unshare --user --map-root-user --net``, receives the TAP descriptor it
creates there, and (in ``internet`` mode) attaches ``pasta`` to the namespace
as its uplink: pasta turns the namespace's packets into ordinary sockets of
the node's user, so they leave with the consumer's own address and need no
privilege; :mod:`omerta_vpn.uplink_watch` ends pasta when the namespace's
anchor exits. Nothing here needs root; as root it works the same. Stopping
closes the helper's socket (it exits with dnsmasq, the namespace goes, pasta
is ended). Touches the gateway's directory, its helper, watcher and pasta.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import omerta_vpn
from omerta_core.interfaces.hypervisor import FramePort
from omerta_core.interfaces.vpn import GatewayInfo, GatewayMode
from omerta_vpn.errors import GatewayError
from omerta_vpn.gateway import GATEWAY_MAC, GATEWAY_TAP, GatewaySpec
from omerta_vpn.tap import TapFramePort

#: How long the namespace helper may take to report ready.
HELPER_TIMEOUT_S = 15.0
#: The namespace-side name of pasta's interface (the gateway's uplink).
UPLINK_IFNAME = "uplink"
TOOLS = ("unshare", "nsenter", "ip", "nft", "sysctl", "dnsmasq")


def unusable_reason() -> str | None:
    """Why no gateway can be built here, or ``None``."""
    if sys.platform != "linux":
        return "the Linux gateway runs on Linux"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install util-linux iproute2 nftables procps dnsmasq-base)"
    return None


class LinuxGateway:
    """One VM's gateway: namespace, TAP, dnsmasq and (internet mode) pasta."""

    def __init__(self, spec: GatewaySpec, log: Any) -> None:
        self.spec = spec
        self.log = log.bind(vm_id=spec.vm_id, provider=spec.provider.short)
        self._helper: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._watch: subprocess.Popen[bytes] | None = None
        self._port: TapFramePort | None = None

    @property
    def port(self) -> FramePort:
        if self._port is None:
            raise GatewayError(f"the gateway of VM {self.spec.vm_id} is not running")
        return self._port

    @property
    def helper_pid(self) -> int | None:
        return self._helper.pid if self._helper is not None else None

    def enter(self) -> tuple[str, ...]:
        if self._helper is None:
            raise GatewayError(f"the gateway of VM {self.spec.vm_id} is not running")
        return ("nsenter", "--target", str(self._helper.pid), "--user", "--net", "--preserve-credentials")

    def allow_offloads(self) -> None:
        if self._port is not None:
            self._port.enable_offloads()

    def info(self) -> GatewayInfo:
        spec = self.spec
        return GatewayInfo(
            vm_id=spec.vm_id,
            provider=spec.provider,
            mode=spec.mode,
            vm_address=spec.vm_address,
            gateway_address=spec.gateway_address,
            prefix_len=spec.subnet.prefixlen,
            mtu=spec.mtu,
            enter=self.enter(),
            counters=self._port.counters() if self._port is not None else {},
        )

    async def start(self) -> None:
        try:
            fd = await asyncio.to_thread(self._start_helper)
            self._port = TapFramePort(fd, self.spec.mtu, vnet=True)
            if self.spec.mode is GatewayMode.INTERNET:
                await asyncio.to_thread(self._start_pasta)
        except BaseException:
            await self.stop()
            raise
        self.log.info("gateway up", mode=self.spec.mode.value, vm_address=self.spec.vm_address, mtu=self.spec.mtu)

    async def stop(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None
        await asyncio.to_thread(self._stop_processes)

    # -- blocking parts (run in a thread) -----------------------------------------

    def _start_helper(self) -> int:
        spec = self.spec
        spec.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        helper_spec = {
            "control_fd": theirs.fileno(),
            "directory": str(spec.directory),
            "mode": spec.mode.value,
            "tap": GATEWAY_TAP,
            "tap_mac": GATEWAY_MAC,
            "gateway_address": spec.gateway_address,
            "vm_address": spec.vm_address,
            "prefix_len": spec.subnet.prefixlen,
            "netmask": str(spec.subnet.netmask),
            "subnet": str(spec.subnet),
            "mtu": spec.mtu,
            "lease_s": spec.lease_s,
            "upstream_dns": spec.upstream_dns,
        }
        argv = ["unshare", "--user", "--map-root-user", "--net", "--"]
        argv += [sys.executable, "-m", "omerta_vpn.netns_helper", json.dumps(helper_spec)]
        env = {**os.environ, "PYTHONPATH": _package_root()}
        log = (spec.directory / "helper.log").open("ab")
        try:
            self._helper = subprocess.Popen(
                argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        finally:
            theirs.close()
            log.close()
        self._control = ours
        ours.settimeout(HELPER_TIMEOUT_S)
        try:
            _, fds, _, _ = socket.recv_fds(ours, 16, 1)
            reply = _read_line(ours)
        except (OSError, ValueError) as exc:
            raise GatewayError(
                f"the gateway namespace did not come up: {exc}; see {spec.directory / 'helper.log'}"
            ) from exc
        if not reply.get("ready"):
            for fd in fds:
                os.close(fd)
            raise GatewayError(f"the gateway namespace did not come up: {reply.get('error', 'no reason given')}")
        if len(fds) != 1:
            raise GatewayError("the gateway namespace did not pass its TAP")
        return fds[0]

    def _start_pasta(self) -> None:
        if shutil.which("pasta") is None:
            raise GatewayError("internet mode needs pasta (apt-get install passt); or use isolated mode")
        assert self._helper is not None
        pidfile = self.spec.directory / "pasta.pid"
        pasta = [
            "pasta",
            "--config-net",
            "--ipv4-only",
            "--quiet",
            "--no-map-gw",
            "--no-dhcp",
            "--no-ndp",
            "--no-ra",
            "--no-dhcpv6",
            "--ns-ifname",
            UPLINK_IFNAME,
            "--tcp-ports",
            "none",
            "--udp-ports",
            "none",
            "--tcp-ns",
            "none",
            "--udp-ns",
            "none",
            "--pid",
            str(pidfile),
            str(self._helper.pid),
        ]
        argv = [sys.executable, "-m", "omerta_vpn.uplink_watch", str(self._helper.pid), str(pidfile), *pasta]
        self._watch = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": _package_root()},
            start_new_session=True,  # outlives a crash of the node's process group, to end pasta
        )
        assert self._watch.stdout is not None
        report = self._watch.stdout.readline().decode(errors="replace").strip()
        self._watch.stdout.close()
        if report != "ready":
            raise GatewayError(f"pasta could not attach the uplink: {report or 'no report'}")

    def _stop_processes(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._helper is not None:
            try:
                self._helper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._helper.kill()
                self._helper.wait(timeout=5)
            self._helper = None
        if self._watch is not None:  # it ends pasta once the helper is gone
            try:
                self._watch.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watch.kill()
                self._watch.wait(timeout=5)
            self._watch = None


def _package_root() -> str:
    """The directory holding the ``omerta_vpn`` package: all the helper imports."""
    return str(Path(omerta_vpn.__file__).resolve().parent.parent)


def _read_line(sock: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > 65536:
            raise ValueError("the helper's report is too long")
    if not data:
        raise ValueError("the helper exited without a report")
    report = json.loads(data)
    if not isinstance(report, dict):
        raise ValueError("the helper's report is not an object")
    return report


def run_inside(enter: Sequence[str], argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside a gateway's namespace (tests, diagnostics)."""
    return subprocess.run([*enter, *argv], check=False, **kwargs)
