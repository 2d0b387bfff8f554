"""A VM's only network: a TAP device in a network namespace of its own.

QEMU (through libvirt) opens the TAP by name in the host namespace, so the TAP
is created there, handed to the domain, then moved into the VM's namespace,
where nothing but the node sees its frames. Nothing here forks the node
process (a forked child would share asyncio's signal wake-up descriptor):
namespaces are added and removed by ``ip netns``, and work inside a namespace
runs on the calling thread after ``setns(2)``. Every call blocks (run it in a
thread); deletions are idempotent. Touches network namespaces and links whose
names it is given.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

#: Linux limits interface names to 15 bytes.
IFNAME_MAX = 15
#: ``ETH_P_ALL``: receive every protocol on a packet socket.
ETH_P_ALL = 0x0003
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_ENODEV = 19
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkError(OSError):
    """A namespace or link operation the kernel refused."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetworkError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run the block with this thread in the named ``namespace``; always return to the original one."""
    with inside_file(NETNS_DIR / namespace):
        yield


@contextlib.contextmanager
def inside_file(path: Path | str | None) -> Iterator[None]:
    """Run the block in the namespace of ``path`` (``/proc/1/ns/net``, say); ``None``: stay where we are."""
    if path is None:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise NetworkError(0, f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")


#: Sysctls of a VM's namespace: no IPv6 on any link (no router or neighbour
#: solicitations, MLD or DAD from the provider's kernel towards the guest) and
#: no forwarding; with no address either, the kernel neither answers nor routes.
VM_NAMESPACE_SYSCTLS = (
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv4.ip_forward=0",
)


def guest_mac(vm_id: str) -> str:
    """A locally administered unicast MAC derived from the VM id (52:54:00 is QEMU's prefix)."""
    return "52:54:00:" + ":".join(vm_id[i : i + 2] for i in range(0, 6, 2))


def create_namespace(name: str) -> None:
    _ip("netns", "add", name)
    done = subprocess.run(
        ["ip", "netns", "exec", name, "sysctl", "-q", "-w", *VM_NAMESPACE_SYSCTLS], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise NetworkError(0, f"sysctl in {name}: {done.stderr.decode(errors='replace').strip()}")


def delete_namespace(name: str) -> None:
    if namespace_exists(name):
        _ip("netns", "delete", name)


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def tap_artefact(name: str, libvirt_netns: str | None) -> str:
    """How a TAP is recorded: its name, and where it is created when that is not the node's namespace."""
    return f"{name}@{libvirt_netns}" if libvirt_netns else name


def split_tap_artefact(artefact: str) -> tuple[str, str | None]:
    name, _, netns = artefact.partition("@")
    return name, netns or None


def create_tap(artefact: str) -> None:
    """Create the TAP where libvirt's QEMU opens it: the node's namespace, or the one the artefact names."""
    name, netns = split_tap_artefact(artefact)
    with inside_file(netns), IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="tuntap", mode="tap")


def move_tap_into(artefact: str, namespace: str, mtu: int) -> None:
    """Move the (already attached) TAP into ``namespace`` and bring it up there with ``mtu``."""
    name, netns = split_tap_artefact(artefact)
    with inside_file(netns), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        ipr.link("set", index=index, net_ns_fd=namespace)
    with inside(namespace), IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], mtu=mtu, state="up")


def delete_tap(artefact: str) -> None:
    """Delete the TAP if it is still where it was created (inside the VM's namespace it dies with it)."""
    name, netns = split_tap_artefact(artefact)
    with inside_file(netns), IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=name):
            try:
                ipr.link("del", index=index)
            except NetlinkError as exc:
                if exc.code != _ENODEV:
                    raise


def link_exists(artefact: str) -> bool:
    name, netns = split_tap_artefact(artefact)
    with inside_file(netns), IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def open_frame_socket(namespace: str, tap: str) -> socket.socket:
    """A packet socket bound to the VM's TAP: reads and writes the VM's Ethernet frames."""
    with inside(namespace):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((tap, 0))
        except OSError:
            sock.close()
            raise
    return sock
