"""Test and benchmark support: seven real ``omerta node`` processes on loopback renting VMs.

A mint authority that is also the gossip bootstrap, a consumer, a provider running the kvm plugin, and
four more witnesses; all with the udp, gossip, omt and rental plugins (which must be installed). With
``vpn=True`` the consumer, the provider and ``w1`` (a second consumer, funded like the first) also run
the vpn plugin; the consumers' gateways are ``isolated`` (a guest reaches its gateway and nothing
else, so no test traffic leaves the machine) and each has its own subnet (:data:`SUBNETS`). Used by
this plugin's tests and ``benchmarks/rental.py``. Touches what the nodes touch (loopback, libvirt
through the provider's kvm plugin, namespaces of the consumers' gateways, their state directories)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from omerta_core.identity import load_or_create
from omerta_core.testing import NodeProcess

#: Identities count as mature after ~9 s, so a fresh network has non-zero trust.
MATURITY_DAYS = 0.0001
NAMES = ["authority", "consumer", "provider", "w1", "w2", "w3", "w4"]
PRICE = 3600  # per hour: one unit per second, so billed amounts read as seconds
FUNDING = 100_000
#: Seconds a provider waits past the witnesses' abandon timeout before it claims (their clocks and its own differ).
CLAIM_MARGIN_S = 5.0
#: The consumers' gateway subnets with ``vpn=True``: the VM is ``.2``, the gateway ``.1``.
SUBNETS = {"consumer": "198.18.255.0/24", "w1": "198.18.254.0/24"}


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class RentalNode(NodeProcess):
    @property
    def port(self) -> int:
        """The UDP port the node's transport bound."""
        endpoint = self.status()["services"]["transport"]["udp"]["endpoints"][0]
        return int(endpoint.rsplit(":", 1)[1])

    def configure(self, sections: dict[str, dict[str, Any]]) -> None:
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join(lines) + "\n")

    def omerta(self, *args: str, timeout: float = 900, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``omerta`` CLI against this node (``--state-dir`` first: ``vm exec`` passes on what follows)."""
        argv = [sys.executable, "-m", "omerta_core", "--state-dir", str(self.state_dir), *args]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=timeout)

    def identity(self) -> str:
        """The node's peer id, its identity key made now if need be (as ``omerta id`` would, without a process)."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(load_or_create(self.state_dir).peer_id)


class Cluster:
    def __init__(self, root: Path, images_dir: Path, provider: dict[str, Any] | None = None,
                 vpn: bool = False, abandon_s: float | None = None) -> None:  # fmt: skip
        """``abandon_s``: the witnesses sign a provider's claim of an abandoned session this long after attesting its
        end, and the provider claims :data:`CLAIM_MARGIN_S` later (None: the defaults, an hour)."""
        self.root = root
        self.abandon_s = abandon_s
        self.images_dir = images_dir
        self.provider_settings = provider or {}
        self.vpn = vpn
        self.nodes = {name: RentalNode(root / name, self.plugins(name)) for name in NAMES}
        self.ids = {name: node.identity() for name, node in self.nodes.items()}
        self.mature_at = 0.0

    @staticmethod
    def _each(work: Callable[[Any], Any], items: Any) -> list[Any]:
        """``work`` on every item at once (each waits on a node process, not on this one)."""
        with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
            return list(pool.map(work, items))

    def __getitem__(self, name: str) -> RentalNode:
        return self.nodes[name]

    def plugins(self, name: str) -> str:
        plugins = "udp,gossip,omt,kvm,rental" if name == "provider" else "udp,gossip,omt,rental"
        return plugins + ",vpn" if self.vpn and (name == "provider" or name in SUBNETS) else plugins

    @property
    def consumers(self) -> tuple[str, ...]:
        """The nodes funded to rent: ``consumer``, and ``w1`` too with ``vpn=True``."""
        return tuple(SUBNETS) if self.vpn else ("consumer",)

    def config(self, name: str, rental: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {
            "plugins.udp": {"host": "127.0.0.1", "port": 0},
            "plugins.gossip": {"probe_interval_s": 0.5, "probe_timeout_s": 0.2},
            "plugins.omt": {
                "ledger_mint_authorities": [self.ids["authority"]],
                "ledger_sync_interval_s": 0,
                "ledger_age_maturity_days": MATURITY_DAYS,
            },
            "plugins.rental": {"heartbeat_s": 1.0, "grace_s": 6.0},
        }
        if self.abandon_s is not None:
            sections["plugins.omt"]["ledger_abandon_timeout_s"] = self.abandon_s
            sections["plugins.rental"]["abandon_timeout_s"] = self.abandon_s + CLAIM_MARGIN_S
        if name == "provider":
            sections["node"] = {"shutdown_timeout_s": 20}  # time to delete its VMs when stopped mid-rental
            sections["plugins.kvm"] = {"images_dir": str(self.images_dir), "domain_type": "qemu",
                                       "reconcile_interval_s": 0.5}  # fmt: skip
            sections["plugins.rental"].update(
                {"images": ["omk-test"], "vcpus": 2, "memory_mib": 512, "disk_gib": 2, "price_per_hour": PRICE,
                 "max_total": 2, "blocklist": [self.ids["w4"]], "owners": [self.ids["authority"]],
                 **self.provider_settings}
            )  # fmt: skip
        if self.vpn and name in SUBNETS:
            sections["plugins.vpn"] = {"gateway_mode": "isolated", "upstream_dns": False, "subnet": SUBNETS[name]}
        sections["plugins.rental"].update(rental or {})  # this start's settings win
        return sections

    def start(self, name: str, **rental: Any) -> RentalNode:
        return self.spawn(name, **rental).wait_ready()

    def spawn(self, name: str, **rental: Any) -> RentalNode:
        node = self.nodes[name]
        node.configure(self.config(name, rental))
        args = [] if name == "authority" else ["--bootstrap", f"127.0.0.1:{self.nodes['authority'].port}"]
        return node.spawn(args=args)

    def restart(self, name: str, **rental: Any) -> RentalNode:
        """Stop ``name`` and start it again with these ``[plugins.rental]`` settings (the cluster's otherwise);
        return once every other running node has a session with it again (its port changed) and holds it as
        alive (a consumer finds a restarted provider's offer only then)."""
        node = self.nodes[name]
        node.stop()
        self.start(name, **rental)
        wait_for(f"{name} to see every peer", functools.partial(self.converged, name), 60)
        wait_for(f"every node to hold {name} alive", functools.partial(self.alive_everywhere, name), 60)
        if name == "provider":
            wait_for("the consumers to see the provider's offer", self.offer_seen, 60)
        others = [self.ids[o] for o in self.nodes if o != name and self.nodes[o].running]
        node.call("ledger.sync", {"peers": others, "timeout": 30}, timeout=60)
        return node

    def start_all(self) -> None:
        self.start("authority")  # the others bootstrap from it, then start together
        self._each(RentalNode.wait_ready, [self.spawn(name) for name in NAMES[1:]])
        self._each(lambda name: wait_for(f"{name} to see every peer", functools.partial(self.converged, name), 60),
                   self.nodes)  # fmt: skip

    def converged(self, name: str) -> bool:
        node = self.nodes[name]
        seen = {p["peer"] for p in node.call("gossip.peers")} | {node.peer_id}
        return seen >= set(self.ids.values())

    def alive_everywhere(self, name: str) -> bool:
        """Every other running node's discovery holds ``name`` as not dead."""
        peer = self.ids[name]
        for other, node in self.nodes.items():
            if other != name and node.running:
                rows = [row for row in node.call("gossip.peers") if row["peer"] == peer]
                if not rows or all(row["liveness"] == "dead" for row in rows):
                    return False
        return True

    def offer_seen(self) -> bool:
        """Every running consumer lists the provider's offer."""
        provider = self.ids["provider"]
        return all(
            any(offer["provider"] == provider for offer in self.nodes[name].call("rental.offers", {}))
            for name in self.consumers
            if self.nodes[name].running
        )

    def sync(self, rounds: int = 1) -> None:
        """Every running node fetches every other's chain, all at once; ``rounds`` times (news spreads a hop each)."""

        def sync_one(name: str) -> None:
            others = [self.ids[o] for o in self.nodes if o != name and self.nodes[o].running]
            self.nodes[name].call("ledger.sync", {"peers": others, "timeout": 30}, timeout=60)

        for _ in range(rounds):
            self._each(sync_one, [name for name, node in self.nodes.items() if node.running])

    def fund(self, wait_mature: bool = True) -> None:
        """Mint to the consumer and provider; the provider pays every witness once (trust edges, known chains).

        The identities are mature (non-zero trust) :data:`MATURITY_DAYS` later: this waits for it unless
        ``wait_mature`` is false (then call :meth:`wait_mature` before what needs trust)."""
        authority = self.nodes["authority"]
        for name in (*self.consumers, "provider"):
            authority.call("ledger.run", {"name": "mint", "params": {"to": self.ids[name], "amount": FUNDING}})
        self.sync()
        for name in ("authority", "w1", "w2", "w3", "w4"):
            self.nodes["provider"].call("ledger.run", {"name": "transfer", "params": {"to": self.ids[name],
                                                                                        "amount": 100}})  # fmt: skip
        self.sync(rounds=2)
        self.mature_at = time.monotonic() + MATURITY_DAYS * 86400
        if wait_mature:
            self.wait_mature()

    def wait_mature(self) -> None:
        time.sleep(max(0.0, self.mature_at - time.monotonic()))

    def balances(self, name: str) -> dict[str, Any]:
        return dict(self.nodes[name].call("ledger.balance", {})["balances"])

    def stop(self) -> None:
        self._each(RentalNode.stop, self.nodes.values())
