"""A local demo network: several ``omerta node`` processes on loopback, on embedded defaults.

Creates a network on the first node, invites the others with a signed link that names the first
node as bootstrap, starts every node with the udp, gossip, omt and rental plugins, waits until gossip
has converged, sends encrypted messages between peers, plays the escrow-lock spec with the `.omt`
player, funds a consumer and a provider, and then (where libvirt runs, the provider also running the
kvm plugin) rents a VM end to end: the consumer finds the provider's offer, requests a VM, is
admitted, locks escrow with five witnesses, gets the VM, releases it; the VM is deleted and the
escrow settles for the seconds used, and every node agrees on every balance. Stops every node it
started, also on Ctrl-C. Touches its own directory (``--dir``, default a fresh temporary
directory), the test-guest cache in ``.cache/omerta``, libvirt (through the kvm plugin) and loopback.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerta_core.control import client
from omerta_core.errors import OmertaError

BASE_PORT = 47700
NETWORK = "demo"
PLUGINS = "udp,gossip,omt,rental"
START_TIMEOUT_S = 60.0
CONVERGE_TIMEOUT_S = 60.0
#: Identities count as mature after about 9 s, so the demo's fresh identities earn trust quickly.
MATURITY_DAYS = 0.0001
FUNDING = 1000
WITNESS_FEE = 100
#: Per hour (10 a second): the consumer locks LEASE_HOURS' worth and pays for the seconds it used.
PRICE = 36_000
LEASE_HOURS = "0.02"
PROVIDER = 2
CONSUMER = 1
GUEST_IMAGE = "omk-test"
#: Where the test guest (a Debian cloud kernel and a busybox initramfs) is built once and reused.
GUEST_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "omerta"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def omerta(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "omerta_core", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise SystemExit(f"demo: `omerta {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class DemoNode:
    index: int
    state_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    peer_id: str = ""

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        return client.call(self.state_dir, method, params, timeout=timeout)


def prepare(nodes: list[DemoNode]) -> None:
    for node in nodes:
        node.peer_id = omerta("id", "--state-dir", str(node.state_dir)).strip()
    first = nodes[0]
    omerta("network", "create", NETWORK, "--state-dir", str(first.state_dir))
    link = omerta(
        "network", "invite", NETWORK, "--bootstrap", f"127.0.0.1:{first.port}", "--state-dir", str(first.state_dir)
    ).strip()
    for node in nodes[1:]:
        omerta("network", "join", link, "--state-dir", str(node.state_dir))
    print(f"invite link: {link[:72]}...")


def start(node: DemoNode, log_dir: Path, mint_authority: str, images: Path | None) -> None:
    log = (log_dir / f"node{node.index}.log").open("wb")
    plugins = PLUGINS
    extra: list[str] = []
    if images is not None and node.index == PROVIDER:
        plugins += ",kvm"
        settings = [f'plugins.kvm.images_dir="{images}"', f'plugins.rental.images=["{GUEST_IMAGE}"]',
                    "plugins.rental.memory_mib=512", f"plugins.rental.price_per_hour={PRICE}"]  # fmt: skip
        extra = [arg for setting in settings for arg in ("--set", setting)]
    node.process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omerta_core",
            "node",
            "--plugins",
            plugins,
            "--state-dir",
            str(node.state_dir),
            "--log-json",
            "--set",
            f"plugins.udp.port={node.port}",
            "--set",
            'plugins.udp.host="127.0.0.1"',
            "--set",
            "plugins.gossip.probe_interval_s=0.5",
            "--set",
            "plugins.gossip.probe_timeout_s=0.2",
            "--set",
            f'plugins.omt.ledger_mint_authorities=["{mint_authority}"]',
            "--set",
            f"plugins.omt.ledger_age_maturity_days={MATURITY_DAYS}",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_started(nodes: list[DemoNode]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    for node in nodes:
        while True:
            with contextlib.suppress(OmertaError):
                node.call("status")
                break
            if node.process is not None and node.process.poll() is not None:
                raise SystemExit(f"demo: node{node.index} exited; see its log")
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: node{node.index} did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)


def wait_converged(nodes: list[DemoNode]) -> float:
    started = time.monotonic()
    everyone = {n.peer_id for n in nodes}
    while time.monotonic() - started < CONVERGE_TIMEOUT_S:
        views = [{p["peer"] for p in node.call("gossip.peers")} | {node.peer_id} for node in nodes]
        if all(view >= everyone for view in views):
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit("demo: gossip did not converge; see the node logs")


def exchange_messages(nodes: list[DemoNode]) -> None:
    for node in nodes:
        node.call("udp.subscribe", {"channel": "demo.chat"})
    for sender in nodes:
        for receiver in nodes:
            if sender is not receiver:
                sender.call(
                    "udp.send",
                    {"peer": receiver.peer_id, "channel": "demo.chat", "text": f"hi from node{sender.index}"},
                )
    deadline = time.monotonic() + 20
    expected = len(nodes) - 1
    while time.monotonic() < deadline:
        counts = [node.call("udp.received", {"channel": "demo.chat", "count_only": True})["count"] for node in nodes]
        if all(c >= expected for c in counts):
            break
        time.sleep(0.1)
    for node in nodes:
        got = node.call("udp.received", {"channel": "demo.chat"})["messages"]
        texts = sorted(base64.b64decode(m["data_b64"]).decode() for m in got)
        print(f"node{node.index} received {len(got)} encrypted messages: {', '.join(texts)}")


def sync_all(nodes: list[DemoNode]) -> None:
    for node in nodes:
        node.call("ledger.sync", {"peers": [n.peer_id for n in nodes if n is not node], "timeout": 30})


def fund(nodes: list[DemoNode]) -> None:
    """The mint authority funds the consumer and the provider; the provider pays every other node once."""
    authority, consumer, provider, *others = nodes
    for funded in (consumer, provider):
        authority.call("ledger.run", {"name": "mint", "params": {"to": funded.peer_id, "amount": FUNDING}})
    sync_all(nodes)
    for witness in [authority, *others]:
        provider.call("ledger.run", {"name": "transfer", "params": {"to": witness.peer_id, "amount": WITNESS_FEE}})
    sync_all(nodes)
    print(f"node0 minted {FUNDING} to node1 (consumer) and node2 (provider); node2 paid each other node {WITNESS_FEE}")
    time.sleep(MATURITY_DAYS * 86400)


def balances(nodes: list[DemoNode], who: list[DemoNode]) -> dict[str, dict[str, int]]:
    view = nodes[0].call("ledger.balance", {})["balances"]
    return {f"node{n.index}": view.get(n.peer_id, {"balance": 0, "locked": 0}) for n in who}


def stamp(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)


def rental_tour(nodes: list[DemoNode]) -> None:
    """Find the provider's offer, rent a VM, run a command, release it, and show the settlement on every chain."""
    _, consumer, provider, *_ = nodes
    started = time.monotonic()
    before = balances(nodes, [consumer, provider])
    deadline = time.monotonic() + 60
    while not consumer.call("rental.offers", {"image": GUEST_IMAGE}) and time.monotonic() < deadline:
        time.sleep(0.3)
    stamp(started, "omerta offers --image omk-test (on node1, the consumer):")
    print(omerta("offers", "--image", GUEST_IMAGE, "--state-dir", str(consumer.state_dir)), end="")
    stamp(started, f'omerta vm request --image omk-test --mem 128 --hours {LEASE_HOURS} --activity "demo: uname"')
    request = subprocess.Popen(
        [sys.executable, "-m", "omerta_core", "vm", "request", "--image", GUEST_IMAGE, "--mem", "128", "--hours",
         LEASE_HOURS, "--activity", "demo: uname", "--state-dir", str(consumer.state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert request.stdout is not None
    output = []
    for line in request.stdout:
        output.append(line)
        print("    " + line, end="", flush=True)
    if request.wait() != 0:
        raise SystemExit("demo: the rental failed (see above)")
    rental = output[0].split()[1]
    shown = consumer.call("rental.show", {"rental": rental})
    stamp(started, f"VM {shown['vm_id']} ready for node1 at {shown['address']}; on node2 `vm.list` shows "
                   f"{len(provider.call('vm.list'))} VM")  # fmt: skip
    argv = [sys.executable, "-m", "omerta_core", "vm", "exec", rental, "--state-dir", str(consumer.state_dir), "--",
            "uname", "-a"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    stamp(started, f"omerta vm exec {rental[:12]} -- uname -a: {(done.stdout or done.stderr).strip()}")
    stamp(started, f"omerta vm release {rental[:12]}")
    print(omerta("vm", "release", rental, "--state-dir", str(consumer.state_dir)), end="")
    vms = provider.call("vm.list")
    own = consumer.call("ledger.balance", {})["balances"][consumer.peer_id]
    stamp(started, f"VMs left on node2: {len(vms)}; escrow node1 still has locked: {own['locked']}")
    sync_all(nodes)
    sync_all(nodes)
    views = [node.call("ledger.balance", {})["balances"] for node in nodes]
    after = balances(nodes, [consumer, provider])
    stamp(started, f"after sync all {len(nodes)} nodes agree on every balance: {all(v == views[0] for v in views)}")
    for name in after:
        print(f"  {name}  balance {before[name]['balance']:>6} -> {after[name]['balance']:>6}  "
              f"locked {after[name]['locked']}")  # fmt: skip


def summary(node: DemoNode) -> str:
    services = node.call("status")["services"]
    udp = services["transport"]["udp"]["counters"]
    gossip = next(iter(services["discovery"]["gossip"]["networks"].values()))
    ledger = services["ledger"]["omt"]
    return (
        f"node{node.index}  udp sent {udp['sent_packets']:>4} pkts recv {udp['received_packets']:>4} pkts "
        f"dropped {udp.get('dropped', 0)}  gossip alive {gossip['alive']}  "
        f"ledger chains {ledger['chains']} blocks {ledger['blocks']}"
    )


def guest_images() -> Path | None:
    """Build (once) the test guest when the kvm plugin can run here; ``None`` when it cannot."""
    usable = {p["name"]: p["usable"] for p in json.loads(omerta("plugins", "--json"))}
    if not usable.get("kvm") or not Path("/run/libvirt/libvirt-sock").exists():
        print("kvm plugin not usable here (libvirt not running?): no provider can offer VMs, the rental is skipped")
        return None
    subprocess.run([sys.executable, "-m", "omerta_vm_kvm.guest_builder", str(GUEST_CACHE)], check=True, timeout=600)
    return GUEST_CACHE / "images"


@contextlib.contextmanager
def network(base: Path, count: int) -> Iterator[list[DemoNode]]:
    nodes = [DemoNode(i, base / f"node{i}", BASE_PORT + i) for i in range(count)]
    try:
        yield nodes
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    node.process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=7, help="how many nodes, at least 7 (default 7)")
    parser.add_argument("--dir", type=Path, help="where to keep the nodes' state (default: a fresh temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep running until Ctrl-C after the tour")
    args = parser.parse_args()
    if args.nodes < 7:
        parser.error("the escrow tour needs a consumer, a provider and five witnesses: --nodes 7 or more")
    base = args.dir or Path(tempfile.mkdtemp(prefix="omerta-demo-"))
    if args.dir and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)

    step("installed plugins")
    print(omerta("plugins"))
    with network(base, args.nodes) as nodes:
        step(f"identities and the '{NETWORK}' network")
        prepare(nodes)
        for node in nodes:
            print(f"node{node.index}  {node.peer_id}  udp 127.0.0.1:{node.port}")

        images = guest_images()
        step(f"starting {len(nodes)} nodes with --plugins {PLUGINS}" + (f" (+kvm on node{PROVIDER})" if images else ""))
        for node in nodes:
            start(node, base, mint_authority=nodes[0].peer_id, images=images)
        wait_started(nodes)
        took = wait_converged(nodes)
        print(f"gossip converged: every node sees all {len(nodes)} peers after {took:.1f} s")
        print(omerta("peers", "--state-dir", str(nodes[-1].state_dir)))

        step("end-to-end encrypted messages between every pair")
        exchange_messages(nodes)

        step("the escrow-lock spec, played with all its actors by `omerta omt run`")
        trace = omerta("omt", "run", "00_escrow_lock").splitlines()
        sends = sum(" -> " in line and ":" in line and "(" not in line for line in trace)
        print(f"{len(trace)} trace lines, {sends} messages; full trace: `omerta omt run 00_escrow_lock`")
        print("\n".join(line for line in trace if line.startswith("#")))

        step("funds: a mint, and payments that give the witnesses trust edges")
        fund(nodes)

        if images is not None:
            step("renting a VM: offer, admission, escrow with five witnesses, VM, release, settlement")
            rental_tour(nodes)

        step("what each node reports (omerta status)")
        for node in nodes:
            print(summary(node))

        if args.keep:
            step(f"running; state in {base}; Ctrl-C stops every node")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    step(f"all nodes stopped; logs and state in {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
