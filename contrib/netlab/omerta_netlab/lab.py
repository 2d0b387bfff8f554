"""A network-namespace NAT lab: an "internet", NAT routers and hosts, built with pyroute2.

Topology. One namespace is the internet: a router with one veth link per
attached node. Link ``k`` uses 198.18.k.0/24 and fd00:0:0:k::/64, the internet
side being ``.1``. A public host or a NAT router's WAN side sits at
198.18.k.2. A NAT router has one veth per host behind it: host ``j`` behind
router ``k`` is 198.19.k.(4j+2)/30 and fd00:1:k:j::2/64, and hosts behind one
router get disjoint ephemeral port ranges so that the router's port-preserving
SNAT maps endpoint-independently. The internet routes the routers' IPv6
prefixes (IPv6 is filtered, not translated); it has no route to 198.19/16, so
private IPv4 traffic can only leave through a NAT.

Touches only the namespaces it creates (named ``<prefix><pid>x<n>-<node>``),
processes it starts, and nftables/tc/sysctl state inside those namespaces.
:meth:`Lab.close` removes all of them and is safe to call twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import itertools
import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from omerta_netlab.behaviour import (
    CUT_TABLE,
    TABLE4,
    NatBehaviour,
    cut_ruleset,
    ipv4_ruleset,
    loss_ruleset,
    loss_table,
    router_ruleset,
)
from omerta_netlab.reflector import Reflector

#: Namespace name prefix; a lab's namespaces also carry the pid so parallel runs never collide.
DEFAULT_PREFIX = "onl"
#: The interface every node uses towards the internet (or towards its NAT router).
UPLINK = "eth0"
#: First port of the per-host ephemeral ranges behind a router; each host gets PORTS_PER_HOST ports.
EPHEMERAL_BASE = 20000
PORTS_PER_HOST = 1000
#: Hosts behind one router: each needs a /30 of 198.19.k.0/24 and its own port range below 65536.
MAX_HOSTS_PER_ROUTER = 40
#: Highest host part a router's WAN address may take after :meth:`Lab.rebind` (.1 is the internet side).
MAX_WAN_ADDRESS = 254
#: Links on the internet: each needs its own 198.18.k.0/24 (198.18.0.0/24 is left unused).
MAX_LINKS = 250
#: Default receive timeout of lab sockets: generous, the lab often shares a loaded machine.
ARRIVAL_TIMEOUT_S = 1.5
#: Seconds a lab process gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 5.0

_lab_numbers = itertools.count()


class LabError(RuntimeError):
    """The lab could not be built or changed as asked."""


@dataclass(frozen=True)
class Router:
    """A NAT router: WAN side on the internet, one LAN link per host behind it."""

    name: str
    netns: str
    behaviour: NatBehaviour
    link: int
    wan_address: str
    wan_address6: str


@dataclass(frozen=True)
class Host:
    """An end host: public (on the internet) or behind a router."""

    name: str
    netns: str
    address: str
    address6: str
    router: Router | None = None

    @property
    def public(self) -> bool:
        return self.router is None


@dataclass
class _RouterState:
    router: Router
    hosts: int = 0


@dataclass
class Lab:
    """Builds namespaces on demand; use as a context manager so they are always removed."""

    prefix: str = DEFAULT_PREFIX
    tag: str = field(init=False)
    internet: str = field(init=False)
    routers: dict[str, Router] = field(init=False, default_factory=dict)
    hosts: dict[str, Host] = field(init=False, default_factory=dict)
    _namespaces: list[str] = field(init=False, default_factory=list)
    _processes: list[subprocess.Popen[Any]] = field(init=False, default_factory=list)
    _router_state: dict[str, _RouterState] = field(init=False, default_factory=dict)
    _links: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.tag = f"{self.prefix}{os.getpid()}x{next(_lab_numbers)}"
        self.internet = self._new_namespace("inet", forwarding=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building -------------------------------------------------------------

    def add_public_host(self, name: str) -> Host:
        """A host with a public address on the internet."""
        self._check_new_name(name)
        ns = self._new_namespace(name, forwarding=False)
        link = self._attach_to_internet(ns)
        host = Host(name, ns, f"198.18.{link}.2", _v6(f"fd00::{link:x}:0:0:0:2"))
        self.hosts[name] = host
        return host

    def add_nat(self, name: str, behaviour: NatBehaviour) -> Router:
        """A NAT router with ``behaviour`` (see :class:`NatBehaviour`)."""
        self._check_new_name(name)
        ns = self._new_namespace(name, forwarding=True)
        link = self._attach_to_internet(ns)
        router = Router(name, ns, behaviour, link, f"198.18.{link}.2", _v6(f"fd00::{link:x}:0:0:0:2"))
        self._nft(ns, router_ruleset(behaviour, UPLINK, router.wan_address))
        with NetNS(self.internet) as inet:
            inet.route("add", dst=f"fd00:1:{link:x}::/48", gateway=router.wan_address6)
        self.routers[name] = router
        self._router_state[name] = _RouterState(router)
        return router

    def add_host(self, name: str, behind: Router) -> Host:
        """A host on its own LAN link behind ``behind`` (several hosts may share a router)."""
        self._check_new_name(name)
        state = self._router_state[behind.name]
        index = state.hosts
        if index >= MAX_HOSTS_PER_ROUTER:
            raise LabError(f"router {behind.name} already has {MAX_HOSTS_PER_ROUTER} hosts")
        state.hosts += 1
        ns = self._new_namespace(name, forwarding=False)
        lan = f"lan{index}"
        net4 = f"198.19.{behind.link}.{4 * index}"
        gw4, addr4 = _offset(net4, 1), _offset(net4, 2)
        prefix6 = f"fd00:1:{behind.link:x}:{index:x}"
        gw6, addr6 = f"{prefix6}::1", f"{prefix6}::2"
        with NetNS(behind.netns) as router_ns:
            router_ns.link("add", ifname=lan, kind="veth", peer={"ifname": UPLINK, "net_ns_fd": ns})
            idx = router_ns.link_lookup(ifname=lan)[0]
            router_ns.addr("add", index=idx, address=gw4, prefixlen=30)
            router_ns.addr("add", index=idx, address=gw6, prefixlen=64)
            router_ns.link("set", index=idx, state="up")
        with NetNS(ns) as host_ns:
            idx = host_ns.link_lookup(ifname=UPLINK)[0]
            host_ns.addr("add", index=idx, address=addr4, prefixlen=30)
            host_ns.addr("add", index=idx, address=addr6, prefixlen=64)
            host_ns.link("set", index=idx, state="up")
            host_ns.route("add", dst="0.0.0.0/0", gateway=gw4)
            host_ns.route("add", dst="::/0", gateway=gw6)
        first = EPHEMERAL_BASE + index * PORTS_PER_HOST
        self._sysctl(ns, "net/ipv4/ip_local_port_range", f"{first} {first + PORTS_PER_HOST - 1}")
        host = Host(name, ns, addr4, _v6(addr6), behind)
        self.hosts[name] = host
        return host

    def set_link(self, node: Host | Router, *, delay_ms: float = 0.0, loss_percent: float = 0.0) -> None:
        """Shape ``node``'s uplink in both directions: one-way delay (netem) and random loss (nftables)."""
        if not 0.0 <= loss_percent <= 100.0:
            raise LabError(f"loss must be a percentage, got {loss_percent}")
        peer_ns, peer_if = self._uplink_peer(node)
        for ns, ifname in ((node.netns, UPLINK), (peer_ns, peer_if)):
            self._set_delay(ns, ifname, delay_ms)
            self._set_loss(ns, ifname, loss_percent)

    def rebind(self, router: Router) -> Router:
        """Give ``router`` a new public IPv4 address, as when an ISP renumbers a line or a laptop moves.

        The WAN link gets the next free address of its /24, the old one is removed, the NAT
        translates to the new one and every connection-tracking entry is forgotten: each
        mapping is made afresh, from the new address, by the next outbound packet. The
        returned :class:`Router` (and the hosts behind it, in :attr:`hosts`) carry the new
        address. IPv6 is routed, not translated, and stays as it was.
        """
        current = self.routers.get(router.name)
        if current is None:
            raise LabError(f"the lab has no router called {router.name!r}")
        last = int(current.wan_address.rsplit(".", 1)[1])
        if last + 1 > MAX_WAN_ADDRESS:
            raise LabError(f"router {router.name} has used every WAN address of its link")
        new_address = f"198.18.{current.link}.{last + 1}"
        with NetNS(current.netns) as ns:
            idx = ns.link_lookup(ifname=UPLINK)[0]
            # the old address goes first: added second, the new one would be a secondary, deleted with it
            ns.addr("del", index=idx, address=current.wan_address, prefixlen=24)
            ns.addr("add", index=idx, address=new_address, prefixlen=24)
            # the default route went with the old address's subnet route; it comes back through the new one
            with contextlib.suppress(NetlinkError):
                ns.route("add", dst="0.0.0.0/0", gateway=f"198.18.{current.link}.1")
        self._nft(current.netns, f"delete table ip {TABLE4}\n")
        self._nft(current.netns, ipv4_ruleset(current.behaviour, UPLINK, new_address))
        rebound = dataclasses.replace(current, wan_address=new_address)
        self.routers[rebound.name] = rebound
        self._router_state[rebound.name].router = rebound
        for name, host in self.hosts.items():
            if host.router is not None and host.router.name == rebound.name:
                self.hosts[name] = dataclasses.replace(host, router=rebound)
        self.flush_conntrack(rebound)
        return rebound

    def cut(self, router: Router, *others: Host | Router) -> None:
        """Partition: ``router`` forwards nothing more between its hosts and ``others`` (either way).

        Flows already set up are cut too; the NAT's mappings stay as they were. The addresses are
        the ones ``others`` have on the internet (a router's WAN address stands for every host
        behind it). A second cut of the same router replaces the first; :meth:`mend` undoes it.
        """
        current = self.routers.get(router.name)
        if current is None:
            raise LabError(f"the lab has no router called {router.name!r}")
        if not others:
            raise LabError("a cut needs something to cut the router from")
        addresses = [self._internet_address(o) for o in others]
        self.mend(current)
        self._nft(current.netns, cut_ruleset([a for a, _ in addresses], [a6 for _, a6 in addresses]))

    def mend(self, router: Router) -> None:
        """Undo :meth:`cut` on ``router`` (nothing happens when it has none)."""
        subprocess.run(["ip", "netns", "exec", router.netns, "nft", "delete", "table", "inet", CUT_TABLE],
                       capture_output=True, check=False)  # fmt: skip

    # -- using ----------------------------------------------------------------

    def command(self, node: Host | Router | str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside ``node``'s namespace."""
        return ["ip", "netns", "exec", _ns_name(node), *argv]

    def run(self, node: Host | Router | str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command to completion inside ``node``'s namespace."""
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(node, argv), **kwargs)  # noqa: PLW1510 - check set above

    def popen(self, node: Host | Router | str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside ``node``'s namespace; :meth:`close` stops it."""
        kwargs.setdefault("start_new_session", True)
        process = subprocess.Popen(self.command(node, argv), **kwargs)
        self._processes.append(process)
        return process

    @contextlib.contextmanager
    def inside(self, node: Host | Router | str) -> Iterator[None]:
        """Run the body with this thread in ``node``'s namespace (sockets made there stay there)."""
        netns.pushns(_ns_name(node))
        try:
            yield
        finally:
            netns.popns()

    def open_socket(
        self, node: Host | Router | str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
    ) -> socket.socket:
        """A socket created inside ``node``'s namespace, usable from this process."""
        with self.inside(node):
            return socket.socket(family, kind)

    def udp_socket(
        self, node: Host, *, port: int = 0, family: int = socket.AF_INET, timeout: float = ARRIVAL_TIMEOUT_S
    ) -> socket.socket:
        """A UDP socket inside ``node``, bound to all its addresses on ``port``, with a receive timeout."""
        sock = self.open_socket(node, family)
        sock.bind(("0.0.0.0" if family == socket.AF_INET else "::", port))
        sock.settimeout(timeout)
        return sock

    def reflector(self, host: Host, port: int, family: int = socket.AF_INET) -> Reflector:
        """A :class:`Reflector` on ``host``'s address and ``port``; close it when done."""
        sock = self.open_socket(host, family)
        sock.bind((host.address if family == socket.AF_INET else host.address6, port))
        return Reflector(sock)

    def flush_conntrack(self, node: Router | Host) -> None:
        """Forget every connection-tracking entry (and so every NAT mapping) in ``node``."""
        with self.inside(node):
            from pyroute2 import Conntrack  # noqa: PLC0415 - opened inside the namespace

            with Conntrack() as conntrack:
                conntrack.flush()

    def stop_process(self, process: subprocess.Popen[Any]) -> None:
        """Stop a process started with :meth:`popen`: SIGTERM, then SIGKILL after a grace period."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def close(self) -> None:
        """Stop the lab's processes and remove its namespaces (and with them every link and rule)."""
        while self._processes:
            self.stop_process(self._processes.pop())
        while self._namespaces:
            name = self._namespaces.pop()
            with contextlib.suppress(OSError, NetlinkError):
                netns.remove(name)

    # -- internals ------------------------------------------------------------

    def _check_new_name(self, name: str) -> None:
        if name in self.hosts or name in self.routers or name == "inet":
            raise LabError(f"the lab already has a node called {name!r}")
        if not name.isidentifier():
            raise LabError(f"node names are identifiers, got {name!r}")

    def _new_namespace(self, node: str, *, forwarding: bool) -> str:
        name = f"{self.tag}-{node}"
        netns.create(name)
        self._namespaces.append(name)
        self._sysctl(name, "net/ipv6/conf/all/accept_dad", "0")
        self._sysctl(name, "net/ipv6/conf/default/accept_dad", "0")
        if forwarding:
            self._sysctl(name, "net/ipv4/ip_forward", "1")
            self._sysctl(name, "net/ipv6/conf/all/forwarding", "1")
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        return name

    def _attach_to_internet(self, ns: str) -> int:
        self._links += 1
        link = self._links
        if link > MAX_LINKS:
            raise LabError(f"the lab's internet has room for {MAX_LINKS} links")
        with NetNS(self.internet) as inet:
            inet.link("add", ifname=f"l{link}", kind="veth", peer={"ifname": UPLINK, "net_ns_fd": ns})
            idx = inet.link_lookup(ifname=f"l{link}")[0]
            inet.addr("add", index=idx, address=f"198.18.{link}.1", prefixlen=24)
            inet.addr("add", index=idx, address=f"fd00::{link:x}:0:0:0:1", prefixlen=64)
            inet.link("set", index=idx, state="up")
        with NetNS(ns) as node:
            idx = node.link_lookup(ifname=UPLINK)[0]
            node.addr("add", index=idx, address=f"198.18.{link}.2", prefixlen=24)
            node.addr("add", index=idx, address=f"fd00::{link:x}:0:0:0:2", prefixlen=64)
            node.link("set", index=idx, state="up")
            node.route("add", dst="0.0.0.0/0", gateway=f"198.18.{link}.1")
            node.route("add", dst="::/0", gateway=f"fd00::{link:x}:0:0:0:1")
        return link

    def _internet_address(self, node: Host | Router) -> tuple[str, str]:
        """The IPv4 and IPv6 address ``node``'s packets carry on the internet."""
        if isinstance(node, Host):
            node = node.router or node
        if isinstance(node, Router):
            current = self.routers.get(node.name, node)
            return current.wan_address, current.wan_address6
        return node.address, node.address6

    def _uplink_peer(self, node: Host | Router) -> tuple[str, str]:
        """The namespace and interface at the other end of ``node``'s uplink."""
        if isinstance(node, Host) and node.router is not None:
            index = int(node.address.rsplit(".", 1)[1]) // 4
            return node.router.netns, f"lan{index}"
        link = node.link if isinstance(node, Router) else int(node.address.split(".")[2])
        return self.internet, f"l{link}"

    def _set_delay(self, ns: str, ifname: str, delay_ms: float) -> None:
        with NetNS(ns) as handle:
            idx = handle.link_lookup(ifname=ifname)[0]
            with contextlib.suppress(NetlinkError):
                handle.tc("del", index=idx)
            if delay_ms <= 0:
                return
            try:
                handle.tc("add", kind="netem", index=idx, delay=int(delay_ms * 1000))
            except NetlinkError as exc:
                raise LabError(
                    f"cannot add netem delay on {ifname}: {exc}; the kernel needs CONFIG_NET_SCH_NETEM"
                ) from exc

    def _set_loss(self, ns: str, ifname: str, loss_percent: float) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", loss_table(ifname)],
            capture_output=True,
            check=False,
        )
        if loss_percent > 0:
            self._nft(ns, loss_ruleset(ifname, loss_percent))

    def _nft(self, ns: str, ruleset: str) -> None:
        result = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise LabError(f"nft refused the ruleset in {ns}: {result.stderr.strip()}")

    def _sysctl(self, ns: str, key: str, value: str) -> None:
        with self.inside(ns), open(f"/proc/sys/{key}", "w") as handle:
            handle.write(value)


def _offset(address: str, by: int) -> str:
    return str(ipaddress.ip_address(address) + by)


def _v6(address: str) -> str:
    """The canonical (compressed) text of an IPv6 address, as sockets report it."""
    return str(ipaddress.IPv6Address(address))


def _ns_name(node: Host | Router | str) -> str:
    return node if isinstance(node, str) else node.netns


def remove_stale_namespaces(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove namespaces left by labs whose process has died (a crashed run) and kill what still runs in them."""
    removed = []
    for name in netns.listnetns():
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].split("x", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
        for pid in pids.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(OSError, NetlinkError):
            netns.remove(name)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
