"""The main job in the NAT lab: a consumer behind one NAT rents a VM from a provider behind another.

Builds a NAT lab (``omerta_netlab``: network namespaces, NAT by nftables) with a public bootstrap
node that serves a relay and mints the demo's money, five public witnesses, a provider behind a
port-restricted NAT and a consumer behind an address-restricted one; every node is a real ``omerta
node`` process in its own namespace. Then the rental, each step printed with its time: the consumer
finds the provider's offer, requests a VM (admission, escrow with the witnesses, a real guest under
TCG, the consumer's VPN), runs a command in the guest over SSH, and releases it; the demo shows both
parties' balances before and after, that every node's view of the chains agrees on the settlement,
and that the VM is gone (libvirt domain, artefacts, namespace, the consumer's gateway).

The scene (:class:`RentalLab`) and the tour (:func:`tour`) are also what the NAT-lab rental test
(``tests/integration/test_rental_lab.py``) runs. Touches the lab's namespaces (named
``omdemo<pid>x<n>-*``), the node processes it starts, their state directories (``--dir``, default a
fresh temporary directory), the test-guest cache ``.cache/omerta`` and libvirt (through the
provider's kvm plugin); all of it is removed on exit, on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from omerta_netlab import Host, Lab, NatBehaviour
from omerta_netlab.lab import LabError, remove_stale_namespaces
from omerta_netlab.nobody import RUN_OMERTA, NobodyLabNode, nobody_can_import, prepare_for_nobody, python_as_nobody
from omerta_netlab.nodes import LabNode
from omerta_rental import testing as rental_testing
from omerta_vm_kvm.cli import sweep_offline
from omerta_vm_kvm.guest_builder import build_test_guest
from omerta_vm_kvm.network import link_exists as tap_exists
from omerta_vm_kvm.network import tap_artefact
from omerta_vm_kvm.service import tap_name

from omerta_core.errors import OmertaError
from omerta_core.testing import NodeStartError

#: Namespace prefix of the demo's labs (the pid follows, so runs side by side never collide).
PREFIX = "omdemo"
GUEST_IMAGE = "omk-test"
#: Where the test guest (a Debian cloud kernel and a busybox initramfs) is built once and reused.
GUEST_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "omerta"
RELAY_PORT = 7700
WITNESSES = 5
BASE = "udp,relay,gossip,omt"
#: Identities count as mature after about 9 s, so the demo's fresh identities earn trust quickly.
MATURITY_DAYS = 0.0001
FUNDING = 100_000
WITNESS_FEE = 100
#: Per hour: one unit a second, so settled amounts read as seconds.
PRICE = 3600
#: The lease paid up front (the unused part is refunded at release).
LEASE_HOURS = "0.25"
COMMAND = ["uname", "-a"]
CONVERGE_TIMEOUT_S = 120.0
OFFER_TIMEOUT_S = 60.0
GONE_TIMEOUT_S = 60.0


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something true (the rental tests' helper); a timeout is a demo error."""
    try:
        return rental_testing.wait_for(what, check, timeout, every)
    except AssertionError as exc:  # how that helper reports the deadline
        raise DemoError(str(exc)) from exc


class DemoError(RuntimeError):
    """A step of the demo failed (one line; the node logs say more)."""


@dataclass
class Timeline:
    """Prints each step as it starts and as it ends, with the time since the start and its duration."""

    say: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    started: float = field(default_factory=time.monotonic)
    steps: dict[str, float] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.1f} s] {text}")

    @contextlib.contextmanager
    def step(self, name: str, text: str) -> Iterator[None]:
        began = time.monotonic()
        self.note(f"{text} ...")
        yield
        self.steps[name] = time.monotonic() - began
        self.note(f"  {name}: done in {self.steps[name]:.1f} s")


def libvirt_netns() -> str:
    """The network namespace libvirt's QEMU runs in (the provider itself runs in a lab namespace)."""
    done = subprocess.run(["pgrep", "-o", "-x", "libvirtd"], capture_output=True, text=True, check=False)
    if not done.stdout.split():
        raise DemoError("libvirtd is not running (scripts/setup-system starts it)")
    return f"/proc/{done.stdout.split()[0]}/ns/net"


class RentalLab:
    """The lab, its eight nodes and their configuration; a context manager that removes everything."""

    def __init__(self, workdir: Path, images_dir: Path, prefix: str = PREFIX,
                 settings: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:  # fmt: skip
        self.workdir = workdir
        self.images_dir = images_dir
        self.prefix = prefix
        #: Per node, per section, settings over the demo's (e.g. shorter timers for the failure tests).
        self.settings = settings or {}
        self.lab: Lab | None = None
        self.nodes: dict[str, LabNode] = {}
        self.hosts: dict[str, Host] = {}
        self.ids: dict[str, str] = {}
        self.tag = ""

    def __enter__(self) -> RentalLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def witnesses(self) -> list[str]:
        return [f"w{i}" for i in range(1, WITNESSES + 1)]

    def node(self, name: str) -> LabNode:
        return self.nodes[name]

    def build(self) -> None:
        """Namespaces: the lab internet, the bootstrap and witnesses on it, two NATs, provider and consumer."""
        remove_stale_namespaces(self.prefix)
        self.lab = lab = Lab(prefix=self.prefix)
        self.tag = lab.tag
        self.hosts["boot"] = lab.add_public_host("boot")
        for name in self.witnesses:
            self.hosts[name] = lab.add_public_host(name)
        self.hosts["provider"] = lab.add_host("provider", lab.add_nat("pnat", NatBehaviour.PORT_RESTRICTED))
        self.hosts["consumer"] = lab.add_host("consumer", lab.add_nat("cnat", NatBehaviour.ADDRESS_RESTRICTED))

    def plugins(self, name: str) -> str:
        return {"provider": f"{BASE},kvm,vpn,rental", "consumer": f"{BASE},vpn,rental"}.get(name, BASE)

    def config(self, name: str) -> dict[str, dict[str, Any]]:
        boot = self.hosts["boot"].address
        sections: dict[str, dict[str, Any]] = {
            "plugins.udp": {"host": "0.0.0.0", "port": RELAY_PORT if name == "boot" else 0},
            "plugins.relay": {"relays": [f"{self.ids['boot']}@{boot}:{RELAY_PORT}"], "serve": name == "boot"},
            "plugins.gossip": {"probe_interval_s": 0.5, "probe_timeout_s": 0.3},
            "plugins.omt": {
                "ledger_mint_authorities": [self.ids["boot"]],
                "ledger_sync_interval_s": 0,
                "ledger_age_maturity_days": MATURITY_DAYS,
            },
        }
        if name == "boot":
            del sections["plugins.relay"]["relays"]
        if name in ("provider", "consumer"):
            sections["plugins.rental"] = {"heartbeat_s": 1.0, "grace_s": 10.0}
        if name == "consumer":
            sections["plugins.vpn"] = {"upstream_dns": False}
        if name == "provider":
            sections["plugins.kvm"] = {
                "images_dir": str(self.images_dir),
                "domain_type": "qemu",
                "libvirt_netns": libvirt_netns(),
                "reconcile_interval_s": 0.5,
            }
            sections["plugins.rental"].update(
                {"images": [GUEST_IMAGE], "vcpus": 1, "memory_mib": 256, "disk_gib": 1, "price_per_hour": PRICE}
            )
        for section, values in self.settings.get(name, {}).items():
            sections.setdefault(section, {}).update(values)
        return sections

    def start(self, ready: Callable[[str], None] = lambda name: None) -> None:
        """Identities, configuration files, then every node (the bootstrap first); ``ready(name)`` as each answers."""
        assert self.lab is not None
        for name in ["boot", *self.witnesses, "provider", "consumer"]:
            # the consumer runs as nobody, as on a laptop: its VPN gateway needs no root
            kind = NobodyLabNode if name == "consumer" else LabNode
            node = kind(self.lab, self.hosts[name], self.workdir / name, self.plugins(name))
            if name == "consumer":
                prepare_for_nobody(node.state_dir).chmod(0o700)
            node.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.nodes[name] = node
            self.ids[name] = self.omerta(name, "id").stdout.strip()
        for name, node in self.nodes.items():
            lines = []
            for section, values in self.config(name).items():
                lines += [f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
            node.config_path.write_text("\n".join(lines) + "\n")
        for name, node in self.nodes.items():
            node.spawn(args=self.node_args(name))
        for name, node in self.nodes.items():
            node.wait_ready()
            ready(name)

    def node_args(self, name: str) -> list[str]:
        """``omerta node`` arguments of ``name``: every node but the bootstrap names it."""
        return [] if name == "boot" else ["--bootstrap", f"{self.hosts['boot'].address}:{RELAY_PORT}"]

    def restart(self, name: str) -> None:
        """Start ``name`` again with its state and configuration (after :meth:`LabNode.kill9`, a crash) and
        wait until it and every other node know each other again."""
        node = self.node(name)
        node.stop()
        node.spawn(args=self.node_args(name)).wait_ready()
        wait_for(f"{name} to rejoin", self.converged, CONVERGE_TIMEOUT_S, every=0.5)

    def converged(self) -> bool:
        everyone = set(self.ids.values())
        for node in self.nodes.values():
            if {p["peer"] for p in node.call("gossip.peers")} | {node.peer_id} < everyone:
                return False
        return True

    def sync(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            for name, node in self.nodes.items():
                others = [peer for other, peer in self.ids.items() if other != name]
                node.call("ledger.sync", {"peers": others, "timeout": 30}, timeout=90)

    def fund(self, progress: Callable[[str], None] = lambda text: None) -> None:
        """The bootstrap mints to both parties; the provider pays each witness once (trust edges, known chains)."""
        for name in ("consumer", "provider"):
            self.run(self.node("boot"), "mint", {"to": self.ids[name], "amount": FUNDING})
        self.sync()
        progress("minted and synced")
        for name in ("boot", *self.witnesses):
            self.run(self.node("provider"), "transfer", {"to": self.ids[name], "amount": WITNESS_FEE})
        self.sync(rounds=2)
        progress(f"witnesses paid and synced; waiting {MATURITY_DAYS * 86400:.0f} s for the new identities to mature")
        time.sleep(MATURITY_DAYS * 86400)

    @staticmethod
    def run(node: LabNode, transaction: str, params: dict[str, Any]) -> None:
        node.call("ledger.run", {"name": transaction, "params": params}, timeout=120)

    def views(self) -> dict[str, dict[str, Any]]:
        """Every node's view of every balance."""
        return {name: node.call("ledger.balance", {})["balances"] for name, node in self.nodes.items()}

    def omerta(self, name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run the ``omerta`` CLI against a node (its control socket is a file: no namespace needed)."""
        return subprocess.run(self.cli(name, *args), capture_output=True, text=True, check=False, timeout=timeout,
                              env=self.cli_env(name))  # fmt: skip

    def cli(self, name: str, *args: str) -> list[str]:
        """argv of ``omerta ARGS`` for node ``name``, as the user the node runs as."""
        head = python_as_nobody(RUN_OMERTA) if name == "consumer" else [sys.executable, "-m", "omerta_core"]
        return [*head, *args]

    def cli_env(self, name: str) -> dict[str, str]:
        """The environment of the ``omerta`` command line for node ``name`` (its state directory)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
        # unbuffered: `vm request` prints its steps as they happen, also into the demo's pipe
        return {**env, "OMERTA_STATE_DIR": str(self.workdir / name), "PYTHONUNBUFFERED": "1"}

    def route(self, source: str, target: str) -> str:
        """How ``source``'s transport reaches ``target`` now (an address after hole punching, or the relay)."""
        rows = self.node(source).call("udp.peers")["peers"]
        return next((str(row.get("route")) for row in rows if row.get("peer") == self.ids[target]), "none")

    def leftovers(self, vm_id: str) -> list[str]:
        """What is left of the VM anywhere: its domain, artefacts, namespace and TAP, the consumer's gateway, and
        any process naming it (QEMU, the gateway's helpers); a stopped node's own list is not asked."""
        left = []
        provider = self.node("provider")
        if provider.running and any(vm["vm_id"] == vm_id for vm in provider.call("vm.list")):
            left.append("provider's vm.list")
        if (self.workdir / "provider" / "plugins" / "kvm" / "vms" / vm_id).exists():
            left.append("artefact directory")
        if Path(f"/run/netns/omk-{vm_id}").exists():
            left.append(f"namespace omk-{vm_id}")
        domains = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                                 capture_output=True, text=True, check=False).stdout  # fmt: skip
        left += [f"libvirt domain {d}" for d in domains.split() if vm_id in d]
        if tap_exists(tap_artefact(tap_name(vm_id), libvirt_netns())):
            left.append(f"TAP {tap_name(vm_id)}")
        if self.node("consumer").running:
            gateways = self.node("consumer").call("vpn.gateways")
            left += [f"consumer gateway for {g['vm_id']}" for g in gateways if g.get("vm_id") == vm_id]
        left += [f"process {pid}: {line[:80]}" for pid, line in processes_naming(vm_id)]
        return left

    def remains(self) -> list[str]:
        """Namespaces of this lab, and VM namespaces of its provider, that still exist (after :meth:`close`)."""
        names = os.listdir("/run/netns") if Path("/run/netns").is_dir() else []
        vms = {p.name for p in (self.workdir / "provider" / "plugins" / "kvm" / "vms").glob("*")}
        return [n for n in names if (self.tag and n.startswith(self.tag + "-")) or n.removeprefix("omk-") in vms]

    def close(self) -> None:
        """Stop every node (the parties first), delete any VM the provider left, remove the namespaces."""
        for name in ["consumer", "provider", *(n for n in self.nodes if n not in ("consumer", "provider"))]:
            if name in self.nodes:
                self.nodes[name].stop()
        if "provider" in self.nodes:
            try:
                swept = sweep_offline(self.nodes["provider"].state_dir)
            except OmertaError as exc:  # the cleanup goes on; what is left is reported by remains()
                print(f"demo: could not sweep the provider's VMs: {exc}", file=sys.stderr, flush=True)
            else:
                if swept:
                    print(f"demo: deleted {swept} VM artefacts the provider left", file=sys.stderr, flush=True)
        if self.lab is not None:
            self.lab.close()
            self.lab = None


def processes_naming(text: str) -> list[tuple[int, str]]:
    """Every process whose command line holds ``text`` (a VM's QEMU, its consumer's gateway helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        line = " ".join(a.decode(errors="replace") for a in argv if a)
        if text in line:
            found.append((int(entry.name), line))
    return found


@dataclass
class TourResult:
    """What the tour saw, for the demo's summary and the test's assertions."""

    rental: str = ""
    vm_id: str = ""
    request_output: str = ""
    exec_returncode: int | None = None
    exec_output: str = ""
    leftovers: list[str] = field(default_factory=list)
    settlement: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)


def setup(scene: RentalLab, timeline: Timeline) -> None:
    """The lab, the nodes, gossip and the money: everything before the rental."""
    with timeline.step("lab", "building the NAT lab: internet, 2 NAT routers, 8 hosts"):
        scene.build()
    for name, host in scene.hosts.items():
        behind = f"behind {host.router.behaviour.value} NAT {host.router.wan_address}" if host.router else "public"
        timeline.say(f"    {name:<9} {host.address:<15} {behind}")
    with timeline.step("nodes", "starting 8 nodes (bootstrap+relay, 5 witnesses, provider, consumer)"):
        scene.start(lambda name: timeline.note(f"  {name:<9} {scene.ids[name][:16]}  --plugins {scene.plugins(name)}"))
    with timeline.step("gossip", "waiting until every node has found every other through the bootstrap"):
        wait_for("gossip to converge (see the node logs)", scene.converged, CONVERGE_TIMEOUT_S, every=0.5)
    with timeline.step("funds", f"minting {FUNDING} to each party; the provider pays each witness {WITNESS_FEE}"):
        scene.fund(lambda text: timeline.note(f"  {text}"))


def tour(scene: RentalLab, timeline: Timeline) -> TourResult:
    """Offer, request, exec, release, then what is left and what every node's ledger says."""
    result = TourResult()
    consumer, provider = scene.ids["consumer"], scene.ids["provider"]
    result.before = scene.node("boot").call("ledger.balance", {})["balances"]
    with timeline.step("offer", "the consumer looks for the provider's offer in discovery"):
        wait_for("the provider's offer", lambda: scene.node("consumer").call("rental.offers", {}), OFFER_TIMEOUT_S)
        offers = scene.omerta("consumer", "offers", "--image", GUEST_IMAGE)
    timeline.say(indent(offers.stdout))
    activity = f"demo: {' '.join(COMMAND)}"
    with timeline.step("request", f"omerta vm request --image {GUEST_IMAGE} --hours {LEASE_HOURS}"):
        result.request_output = request(scene, ["--image", GUEST_IMAGE, "--mem", "128", "--hours", LEASE_HOURS,
                                                "--activity", activity], timeline.say)  # fmt: skip
    result.rental = result.request_output.split()[1]
    shown = scene.node("consumer").call("rental.show", {"rental": result.rental})
    result.vm_id = shown["vm_id"]
    result.routes = {"consumer->provider": scene.route("consumer", "provider")}
    timeline.note(f"VM {result.vm_id} is ready at {shown['address']}; the consumer reaches the provider "
                  f"{describe_route(result.routes['consumer->provider'])}")  # fmt: skip
    with timeline.step("exec", f"omerta vm exec {result.rental[:12]} -- {' '.join(COMMAND)}"):
        done = scene.omerta("consumer", "vm", "exec", result.rental, "--", *COMMAND, timeout=120)
    result.exec_returncode, result.exec_output = done.returncode, (done.stdout + done.stderr).strip()
    timeline.say(indent(result.exec_output or "(no output)") + f"\n    (exit status {done.returncode})")
    with timeline.step("release", f"omerta vm release {result.rental[:12]}"):
        released = scene.omerta("consumer", "vm", "release", result.rental)
        if released.returncode != 0:
            raise DemoError(f"release failed: {released.stderr.strip()}")
        wait_for("the VM to be gone", lambda: not scene.leftovers(result.vm_id), GONE_TIMEOUT_S)
    timeline.say(indent(released.stdout))
    result.leftovers = scene.leftovers(result.vm_id)
    result.settlement = scene.node("consumer").call("rental.show", {"rental": result.rental})["settlement"]
    with timeline.step("settled", "syncing every chain and comparing every node's view"):
        scene.sync(rounds=2)
        result.views = scene.views()
    after = result.views["boot"]
    for role, peer in (("consumer", consumer), ("provider", provider)):
        was, now = result.before[peer], after[peer]
        timeline.say(f"    {role:<9} balance {was['balance']:>7} -> {now['balance']:>7}   "
                     f"locked {was['locked']} -> {now['locked']}")  # fmt: skip
    return result


def request(scene: RentalLab, args: list[str], say: Callable[[str], None]) -> str:
    """``omerta vm request`` on the consumer, its steps printed as they come; its whole output."""
    argv = scene.cli("consumer", "vm", "request", *args)
    env = scene.cli_env("consumer")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            say("    " + line.rstrip())
        if process.wait() != 0:
            raise DemoError(f"the request failed: {lines[-1].strip() if lines else 'no output'}")
    return "".join(lines)


def describe_route(route: str) -> str:
    return "through the relay" if "relay" in route else f"directly at {route} (hole punched through both NATs)"


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def summary(scene: RentalLab, result: TourResult, timeline: Timeline) -> bool:
    """Print the verdicts; true when the rental did everything it should."""
    split = result.settlement
    agree = all(view == result.views["boot"] for view in result.views.values())
    ran = result.exec_returncode == 0
    timeline.say(f"    settlement: provider paid {split.get('provider_payment')}, burnt {split.get('burn')}, "
                 f"refunded {split.get('refund')} for {split.get('duration_ms', 0) / 1000:.1f} s attested")  # fmt: skip
    timeline.say(f"    every node ({len(result.views)}) agrees on every balance: {'yes' if agree else 'NO'}")
    timeline.say(f"    the VM is gone (domain, artefacts, namespace, gateway): "
                 f"{'yes' if not result.leftovers else 'NO: ' + ', '.join(result.leftovers)}")  # fmt: skip
    timeline.say(f"    the command ran in the guest: {'yes' if ran else 'no (see its output above)'}")
    figures = "  ".join(f"{name} {seconds:.1f} s" for name, seconds in timeline.steps.items())
    timeline.say(f"    step times: {figures}")
    return ran and agree and not result.leftovers and bool(split.get("settled"))


def guest_images() -> Path:
    print("building the test guest (once; cached in .cache/omerta) ...", flush=True)
    return build_test_guest(GUEST_CACHE).parent


def check_nobody_can_run_omerta() -> None:
    """The consumer runs as ``nobody``: it must be able to import this checkout's packages."""
    if not nobody_can_import("omerta_core", "omerta_rental", "omerta_vpn"):
        dirs = ", ".join(d for d in site.getsitepackages() if Path(d).is_dir())
        raise DemoError(f"the consumer runs as nobody but nobody cannot import the packages in {dirs} nor what "
                        "they point to: make those directories' parents traversable (chmod o+x) or put the "
                        "checkout outside a private home")  # fmt: skip


#: What a step may fail with: each is reported as one line (the cleanup still runs).
FAILURES = (DemoError, OmertaError, LabError, NodeStartError, subprocess.TimeoutExpired)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs root, nftables, passt and a running libvirtd (scripts/demo sets them up). "
        "Takes two to four minutes, plus building the test guest once.",
    )
    parser.add_argument("--dir", type=Path, help="keep the nodes' state and logs here (default: a temporary "
                        "directory, removed after a successful run)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="after the tour, keep the lab running until Ctrl-C")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, nftables, libvirt): run it with sudo")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="omerta-demo-"))
    if args.dir and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    owner = os.getpid()

    def terminate(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a child pyroute2 forked to make a namespace: it must not clean up
            os._exit(128 + signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    timeline = Timeline()
    scene = RentalLab(workdir, Path())
    ok = False
    try:
        check_nobody_can_run_omerta()
        scene.images_dir = guest_images()
        setup(scene, timeline)
        result = tour(scene, timeline)
        ok = summary(scene, result, timeline)
        if args.keep:
            timeline.note(f"the lab keeps running; state and logs in {workdir}; Ctrl-C removes it")
            signal.pause()
    except KeyboardInterrupt:
        timeline.note("interrupted")
    except FAILURES as exc:
        timeline.note(f"demo: {exc}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        timeline.note("removing everything the demo made (nodes, VMs, namespaces) ...")
        scene.close()
        left = scene.remains()
        timeline.note(f"namespaces left behind: {', '.join(left) if left else 'none'}")
        ok = ok and not left
        if ok and not args.dir:
            shutil.rmtree(workdir)
        else:
            timeline.note(f"state and node logs kept in {workdir}")
    timeline.note(f"{'done' if ok else 'FAILED'} in {time.monotonic() - timeline.started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
