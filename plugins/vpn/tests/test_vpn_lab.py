"""Acceptance in the NAT lab with a real guest under TCG: the VM's only network is its consumer's.

One lab per module: a relay and a web server on the lab internet, a provider
(``udp,relay,kvm,vpn``, as root for libvirt) with a LAN neighbour behind one
NAT, and a consumer (``udp,relay,vpn``, run as ``nobody``) behind another. The
first guest serves every path test, read from inside the guest through the
consumer's gateway, then sends a spoofed frame and is killed; a second guest
serves the consumer crash. A capture on the provider's uplink runs for the
whole module. Everything is removed on exit, also on failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab import NobodyLabNode, prepare_for_nobody, wait_until
from omerta_netlab import Host, Lab, NatBehaviour
from omerta_netlab.nodes import LabNode
from omerta_vm_kvm.cli import sweep_offline
from omerta_vm_kvm.guest_builder import LEASE_MARKER, build_test_guest
from omerta_vm_kvm.testing import SYSTEM_PYTHON, GuestShellError, guest_shell
from scapy.all import IP, Ether, rdpcap

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

SUBNET_GATEWAY, VM_ADDRESS = "198.18.255.1", "198.18.255.2"
GUEST_MTU = 1229
WEB_PORT = 8080
GATEWAY_WEB_PORT = 8000
BLOB_BYTES = 2 * 1024 * 1024
#: The consumer-gone timings for the crash test: paused after 6 s, deleted 6 s later.
GRACE_S = 6.0
#: From the spoofed frame to the teardown starting, and to the VM and all its artefacts being gone, libvirt's
#: record included (it goes once the killed QEMU is reaped: at once, since libvirtd runs under a subreaper).
ROGUE_REACTION_S = 0.5
ROGUE_GONE_S = 2.0
SMALL_VM = {"image": "omk-test", "memory_mib": 128, "disk_gib": 1, "lease_seconds": 600}

SNIFFER = """
import pathlib, sys, time
from scapy.all import AsyncSniffer, wrpcap
out, ready, stop = (pathlib.Path(a) for a in sys.argv[1:4])
sniffer = AsyncSniffer(iface="eth0", started_callback=ready.touch)
sniffer.start()
deadline = time.monotonic() + 900
while not stop.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
wrpcap(str(out), sniffer.stop())
"""


@dataclass
class Rig:
    lab: Lab
    workdir: Path
    provider: LabNode
    consumer: NobodyLabNode
    provider_host: Host
    neighbour: Host
    consumer_host: Host
    web: Host
    web_log: Path
    capture: Path
    stop_capture: Path
    sniffer: subprocess.Popen[bytes]
    #: The provider's ``--set`` overrides (a restart uses them again).
    provider_sets: tuple[str, ...]

    def rent(self) -> tuple[str, dict[str, Any]]:
        """A VM for the consumer and its gateway; returns the VM id and the gateway."""
        info = self.provider.call("vm.create", {**SMALL_VM, "consumer": self.consumer.peer_id}, timeout=600)
        gateway = self.consumer.call("vpn.gateway.attach", {"vm_id": info["vm_id"], "provider": self.provider.peer_id})
        return info["vm_id"], gateway

    def console_path(self, vm_id: str) -> Path:
        return self.provider.state_dir / "plugins" / "kvm" / "vms" / vm_id / "console.log"

    def console(self, vm_id: str) -> str:
        return self.console_path(vm_id).read_text(errors="replace")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    cache = os.environ.get("OMERTA_KVM_TEST_CACHE")
    images_dir = build_test_guest(Path(cache) if cache else tmp_path_factory.mktemp("guest")).parent
    workdir = prepare_for_nobody(Path(tmp_path_factory.mktemp("vpnlab", numbered=True)))
    with Lab(prefix="onvp") as lab:
        relay_host, web = lab.add_public_host("relay"), lab.add_public_host("www")
        provider_nat = lab.add_nat("pnat", NatBehaviour.PORT_RESTRICTED)
        consumer_nat = lab.add_nat("cnat", NatBehaviour.PORT_RESTRICTED)
        provider_host, neighbour = lab.add_host("provider", provider_nat), lab.add_host("neighbour", provider_nat)
        consumer_host = lab.add_host("consumer", consumer_nat)
        capture, ready, stop = workdir / "provider-uplink.pcap", workdir / "capture-ready", workdir / "capture-stop"
        sniffer = lab.popen(provider_host, [sys.executable, "-c", SNIFFER, str(capture), str(ready), str(stop)])
        web_root = workdir / "www"
        web_root.mkdir()
        (web_root / "hello").write_text("hello from the lab internet\n")
        web_log = workdir / "www.log"
        with web_log.open("wb") as log:
            lab.popen(web, [SYSTEM_PYTHON, "-m", "http.server", str(WEB_PORT), "-d", str(web_root)], stderr=log)
        relay = LabNode(lab, relay_host, workdir / "relay")
        relay.start("plugins.udp.port=7700", 'plugins.udp.host="0.0.0.0"', "plugins.relay.serve=true")
        relays = f'plugins.relay.relays=["{relay.peer_id}@{relay_host.address}:7700"]'
        provider = LabNode(lab, provider_host, workdir / "provider", "udp,relay,kvm,vpn")
        consumer = NobodyLabNode(lab, consumer_host, prepare_for_nobody(workdir / "consumer"), "udp,relay,vpn")
        provider_sets = (
            'plugins.udp.host="0.0.0.0"',
            relays,
            f'plugins.kvm.images_dir="{images_dir}"',
            'plugins.kvm.domain_type="qemu"',
            f'plugins.kvm.libvirt_netns="{libvirt_netns()}"',
            f"plugins.vpn.lease_grace_s={GRACE_S}",
            f"plugins.vpn.delete_after_s={GRACE_S}",
            "node.shutdown_timeout_s=20",
        )
        try:
            provider.start(*provider_sets)
            consumer.start('plugins.udp.host="0.0.0.0"', relays, "plugins.vpn.upstream_dns=false")
            for node, other in ((consumer, provider), (provider, consumer)):
                node.call("udp.add_peer", {"peer": other.peer_id, "endpoints": []})
            assert wait_until(ready.exists, 60), "the capture on the provider's uplink did not start"
            yield Rig(
                lab,
                workdir,
                provider,
                consumer,
                provider_host,
                neighbour,
                consumer_host,
                web,
                web_log,
                capture,
                stop,
                sniffer,
                provider_sets,
            )
        finally:
            stop.touch()
            sniffer.wait(timeout=120)
            for node in (consumer, provider, relay):
                node.stop()
            sweep_offline(provider.state_dir)


@pytest.fixture(scope="module")
def rented(rig: Rig) -> Iterator[tuple[str, dict[str, Any]]]:
    """The first guest, with a DHCP lease from the consumer's dnsmasq."""
    vm_id, gateway = rig.rent()
    try:
        lease = wait_until(lambda: LEASE_MARKER in rig.console(vm_id), 120)
        assert lease, f"no DHCP lease in the guest's console:\n{rig.console(vm_id)[-2000:]}"
        yield vm_id, gateway
    finally:
        if rig.consumer.running:
            rig.consumer.call("vpn.gateway.detach", {"vm_id": vm_id})
        if any(vm["vm_id"] == vm_id for vm in rig.provider.call("vm.list")):
            rig.provider.call("vm.destroy", {"vm_id": vm_id}, timeout=120)


def libvirt_netns() -> str:
    """The network namespace libvirt's QEMU runs in (the provider node runs in a lab namespace)."""
    pid = subprocess.run(["pgrep", "-o", "-x", "libvirtd"], capture_output=True, text=True, check=True).stdout.split()[
        0
    ]
    return f"/proc/{pid}/ns/net"


def lifecycle(rig: Rig) -> list[dict[str, Any]]:
    """The provider's VM lifecycle steps (``lifecycle.jsonl``)."""
    path = rig.provider.state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def lan_gateway(host: Host) -> str:
    """The router's address on ``host``'s LAN link (the host is .2 of its /30, the router .1)."""
    return str(ipaddress.IPv4Address(host.address) - 1)


def shell(gateway: dict[str, Any], command: str, timeout: float = 60.0) -> tuple[int, str]:
    return guest_shell(gateway["enter"], gateway["vm_address"], command, timeout)


def test_the_guest_gets_its_lease_with_the_mtu_from_the_consumers_dnsmasq(rig: Rig, rented: Any) -> None:
    vm_id, gateway = rented
    assert gateway["vm_address"] == VM_ADDRESS and gateway["mtu"] == GUEST_MTU
    # The fixture saw the marker; the rest of the line may still be on its way through the serial console.
    line = f"{LEASE_MARKER} ip={VM_ADDRESS} mtu={GUEST_MTU} router={SUBNET_GATEWAY}"
    assert wait_until(lambda: line in rig.console(vm_id), 30), rig.console(vm_id)[-2000:]
    rc, out = shell(gateway, "cat /sys/class/net/eth0/mtu; ip -4 -o addr show dev eth0; ip route")
    assert rc == 0 and out.split()[0] == str(GUEST_MTU)
    assert f"{VM_ADDRESS}/24" in out and f"default via {SUBNET_GATEWAY}" in out


@contextlib.contextmanager
def blob_server(rig: Rig, gateway: dict[str, Any], size: int) -> Iterator[str]:
    """A web server in the gateway namespace serving ``size`` random bytes; yields their MD5."""
    blob = secrets.token_bytes(size)
    root = rig.workdir / f"gateway-www-{secrets.token_hex(3)}"
    root.mkdir()
    (root / "blob").write_bytes(blob)
    argv = [*gateway["enter"], SYSTEM_PYTHON, "-m", "http.server", str(GATEWAY_WEB_PORT), "-d", str(root)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = [
            *gateway["enter"],
            SYSTEM_PYTHON,
            "-c",
            f"import socket; socket.create_connection(('{SUBNET_GATEWAY}', {GATEWAY_WEB_PORT}), 1)",
        ]
        assert wait_until(lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0, 30)
        yield hashlib.md5(blob).hexdigest()
    finally:
        server.terminate()
        server.wait(timeout=30)


FETCH = f"wget -q -O - http://{SUBNET_GATEWAY}:{GATEWAY_WEB_PORT}/blob | md5sum"


def test_ping_and_a_tcp_transfer_to_the_consumers_gateway(rig: Rig, rented: Any) -> None:
    _, gateway = rented
    rc, out = shell(gateway, f"ping -c 3 -W 2 {SUBNET_GATEWAY}")
    assert rc == 0, out
    with blob_server(rig, gateway, BLOB_BYTES) as md5:
        rc, out = shell(gateway, FETCH, 120)
    assert rc == 0 and md5 in out


#: Counts what one TCP connection brings until its end; says when it listens.
SINK = """
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("listening", flush=True)
connection, _ = server.accept()
received = 0
while chunk := connection.recv(1 << 20):
    received += len(chunk)
print(received, flush=True)
"""
SINK_PORT = 9000


def tunnel_counters(rig: Rig, vm_id: str) -> dict[str, int]:
    """The provider's counters of the VM's tunnel: its frame port's and the tunnel core's."""
    return dict(next(t["counters"] for t in rig.provider.call("vpn.tunnels") if t["vm_id"] == vm_id))


def gateway_counters(rig: Rig, vm_id: str) -> dict[str, int]:
    """The consumer's counters of the VM's gateway: its TAP port's and the tunnel end's."""
    return dict(next(g["counters"] for g in rig.consumer.call("vpn.gateways") if g["vm_id"] == vm_id))


def test_the_guests_tcp_bursts_travel_as_super_frames_both_ways(rig: Rig, rented: Any) -> None:
    """The guest's NIC offloads TCP segmentation: its burst is read as one super-frame on the provider's
    frame port, carried in OFFLOAD pieces and written whole into the consumer's TAP; a download from the
    gateway travels the same way back (the consumer's TAP hands over super-frames once the provider has
    sent it an offloaded frame). No header was refused on the way."""
    vm_id, gateway = rented
    provider_before, consumer_before = tunnel_counters(rig, vm_id), gateway_counters(rig, vm_id)
    sink = subprocess.Popen(
        [*gateway["enter"], SYSTEM_PYTHON, "-c", SINK, str(SINK_PORT)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "listening"
        upload = f"dd if=/dev/zero bs=65536 count=32 2>/dev/null | nc {SUBNET_GATEWAY} {SINK_PORT}"
        rc, out = shell(gateway, upload, 120)
        assert rc == 0, out
        assert sink.communicate(timeout=60)[0].strip() == str(32 * 65536)
    finally:
        sink.kill()
        sink.wait()
    with blob_server(rig, gateway, BLOB_BYTES) as md5:
        rc, out = shell(gateway, FETCH, 120)
    assert rc == 0 and md5 in out
    provider, consumer = tunnel_counters(rig, vm_id), gateway_counters(rig, vm_id)

    def grew(now: dict[str, int], before: dict[str, int], name: str) -> int:
        return now.get(name, 0) - before.get(name, 0)

    # the upload: super-frames from the guest, whole into the consumer's TAP
    assert grew(provider, provider_before, "from_vm_super_frames") > 0, provider
    assert grew(consumer, consumer_before, "sent_super_frames") > 0, consumer
    # the download: the gateway's super-frames, whole to the guest
    assert grew(consumer, consumer_before, "received_offloaded") > 0, consumer
    assert grew(provider, provider_before, "to_vm_offloaded") > 0, provider
    for counters, refused in (
        (provider, "dropped_bad_vnet"),
        (provider, "dropped_bad_offload"),
        (consumer, "dropped_bad_offload"),
    ):
        assert counters.get(refused, 0) == 0, (refused, counters)


def test_the_internet_is_reached_only_through_the_consumer(rig: Rig, rented: Any) -> None:
    _, gateway = rented
    rc, out = shell(gateway, f"wget -q -O - http://{rig.web.address}:{WEB_PORT}/hello")
    assert rc == 0 and "hello from the lab internet" in out
    consumer_router = rig.lab.hosts[rig.consumer_host.name].router  # the lab's current one (rebinding moves it)
    consumer_public = consumer_router.wan_address if consumer_router else ""
    provider_public = rig.provider_host.router.wan_address if rig.provider_host.router else ""
    requests = [line for line in rig.web_log.read_text().splitlines() if "GET /hello" in line]
    assert requests and all(line.startswith(consumer_public + " ") for line in requests), requests
    assert not any(provider_public in line for line in requests)


@pytest.mark.parametrize(
    "target",
    ["provider-host", "provider-gateway", "provider-neighbour"],
)
def test_the_providers_side_is_unreachable_from_the_guest(rig: Rig, rented: Any, target: str) -> None:
    _, gateway = rented
    address = {
        "provider-host": rig.provider_host.address,
        "provider-gateway": lan_gateway(rig.provider_host),
        "provider-neighbour": rig.neighbour.address,
    }[target]
    rc, out = shell(gateway, f"ping -c 2 -W 1 {address}; nc -w 2 {address} 22 < /dev/null")
    assert rc != 0, out
    assert " 0% packet loss" not in out


def test_link_local_multicast_and_ipv6_tricks_reach_nothing(rig: Rig, rented: Any) -> None:
    _, gateway = rented
    probes = {
        "link-local": "ping -c 2 -W 1 169.254.169.254",
        "multicast": "ping -c 2 -W 1 224.0.0.1",
        "ipv6-link-local-all-nodes": "ping6 -c 2 -W 1 ff02::1%eth0",
        "ipv6-global": "ping6 -c 2 -W 1 fd00::1",
        # no router advertisement ever reached the guest: it has no global IPv6 address
        "ipv6-router-advertisement": "ip -6 addr show dev eth0 scope global | grep inet6",
    }
    for name, probe in probes.items():
        rc, out = shell(gateway, probe)
        assert rc != 0 and "bytes from" not in out, (name, out)


def forget_every_mapping(rig: Rig) -> None:
    for host in (rig.consumer_host, rig.provider_host):
        router = rig.lab.hosts[host.name].router
        assert router is not None
        rig.lab.flush_conntrack(router)


def test_a_transfer_survives_both_nats_forgetting_their_mappings(rig: Rig, rented: Any) -> None:
    """Mid-transfer both routers drop every mapping, so the session's path is lost and found again
    (relayed or punched anew); the guest's TCP only sees a pause."""
    _, gateway = rented
    with blob_server(rig, gateway, 4 * BLOB_BYTES) as md5, ThreadPoolExecutor(1) as pool:
        transfer = pool.submit(shell, gateway, FETCH, 300)
        time.sleep(2)
        forget_every_mapping(rig)
        rc, out = transfer.result(timeout=330)
    assert rc == 0 and md5 in out


def test_an_idle_tunnel_survives_both_nats_forgetting_their_mappings(rig: Rig, rented: Any) -> None:
    """The regression of the deadline-driven transport's first days: with the guest idle, the provider sent
    nothing while it did not hear its consumer, so its NAT never made its mapping again and the VM was
    paused, then deleted, seconds after the flush. Both tunnel ends keep alive now."""
    vm_id, gateway = rented
    forget_every_mapping(rig)
    flushed = time.time()
    time.sleep(3 * GRACE_S)  # the consumer-gone grace would have paused and deleted the VM by now
    rc, out = shell(gateway, f"ping -c 3 -W 2 {SUBNET_GATEWAY}")
    assert rc == 0, out
    assert rig.provider.call("vm.show", {"vm_id": vm_id})["state"] == "ready"
    paused = [e for e in lifecycle(rig) if e.get("vm_id") == vm_id and e["step"] == "pause" and e["ts"] >= flushed]
    assert paused == []


def test_a_transfer_survives_the_consumers_address_changing(rig: Rig, rented: Any) -> None:
    """Roaming: mid-transfer the consumer's router gets a new public address (every mapping gone, the old
    address dead, the provider's filtering NAT closed to the new one); the tunnel finds its way again
    (a new handshake over the relay, then a punch) and the guest's TCP only sees a pause."""
    _, gateway = rented
    router = rig.lab.hosts[rig.consumer_host.name].router
    assert router is not None
    with blob_server(rig, gateway, 4 * BLOB_BYTES) as md5, ThreadPoolExecutor(1) as pool:
        transfer = pool.submit(shell, gateway, FETCH, 300)
        time.sleep(2)
        moved = rig.lab.rebind(router)
        rc, out = transfer.result(timeout=330)
    assert rc == 0 and md5 in out
    assert wait_until(lambda: rig.provider.call("udp.peers")["peers"][0]["route"].startswith(moved.wan_address), 60)


@pytest.mark.parametrize("side", ["consumer", "provider"])
def test_a_transfer_survives_a_transport_restart(rig: Rig, rented: Any, side: str) -> None:
    """Roaming by restart: mid-transfer one side's transport closes its socket and opens another on a new
    port, as a laptop's network stack does after sleep. Its NAT maps the new port anew and the other side's
    filtering NAT drops what comes from it, so the session resumes through the relay, then a punch; the
    guest's TCP only sees a pause, not a reset, and the node's session with its peer is the same one."""
    _, gateway = rented
    node, other = (rig.consumer, rig.provider) if side == "consumer" else (rig.provider, rig.consumer)

    def handshakes() -> int:
        return int(node.status()["services"]["transport"]["udp"]["counters"].get("handshakes_completed", 0))

    peer_restarts = other.status()["services"]["transport"]["udp"]["counters"].get("peer_restarts", 0)
    with blob_server(rig, gateway, 4 * BLOB_BYTES) as md5, ThreadPoolExecutor(1) as pool:
        transfer = pool.submit(shell, gateway, FETCH, 300)
        time.sleep(2)
        before = handshakes()
        restarted_at = time.monotonic()
        result = node.call("transport.restart", {"new_port": True})
        assert wait_until(lambda: handshakes() > before, 60), "the session was not resumed"
        resumed_s = time.monotonic() - restarted_at
        rc, out = transfer.result(timeout=330)
    assert rc == 0 and md5 in out
    assert result["moved"] and result["resumed"] >= 1 and result["after"] != result["before"]
    print(
        f"{side} transport restarted: session resumed {resumed_s:.2f} s later ({result['before']} -> {result['after']})"
    )
    # the peer saw the same node come back, not a new incarnation (which would have reset the reliable channels)
    assert other.status()["services"]["transport"]["udp"]["counters"].get("peer_restarts", 0) == peer_restarts
    # and a punch found the new socket's mapping: the peer reaches it directly again, not through the relay
    assert wait_until(lambda: not (other.route_to(node.peer_id) or "via relay").startswith("via"), 60)
    print(f"{side}: direct again {time.monotonic() - restarted_at:.1f} s after the restart")
    rc, out = shell(gateway, f"ping -c 2 -W 2 {SUBNET_GATEWAY}")
    assert rc == 0, out


def test_a_spoofed_source_mac_is_counted_reported_and_kills_the_vm(rig: Rig, rented: Any) -> None:
    vm_id, gateway = rented
    # the agent connection itself carries the spoofed frames; its answer never comes back
    spoof = f"ip link set eth0 address 02:00:00:00:be:ef; ping -c 3 -W 1 {SUBNET_GATEWAY}"
    with pytest.raises((GuestShellError, subprocess.TimeoutExpired)):
        shell(gateway, spoof, timeout=5)
    events = wait_until(lambda: rig.provider.call("vpn.rogue_events"), 30)
    assert events and events[0]["vm_id"] == vm_id and events[0]["reason"] == "foreign-source-mac"
    assert events[0]["count"] == 1 and events[0]["action"] == "kill"
    assert wait_until(lambda: not any(vm["vm_id"] == vm_id for vm in rig.provider.call("vm.list")), 30)
    steps = {e["step"]: e["ts"] for e in lifecycle(rig) if e.get("vm_id") == vm_id}
    # the tunnel acts at once; QEMU is killed, the TAP, namespace and files deleted within a few hundred ms,
    # and libvirt forgets the domain as soon as the dead QEMU is reaped
    assert steps["release"] - events[0]["at"] <= ROGUE_REACTION_S, (steps, events)
    assert steps["stopped"] - events[0]["at"] <= ROGUE_GONE_S, (steps, events)
    assert steps["delete"] - events[0]["at"] <= ROGUE_GONE_S, (steps, events)
    stopped_s, deleted_s = steps["stopped"] - events[0]["at"], steps["delete"] - events[0]["at"]
    print(f"spoofed frame -> stopped {stopped_s:.3f} s, libvirt's record gone {deleted_s:.3f} s")
    assert not Path(f"/run/netns/omk-{vm_id}").exists() and not Path(rig.console_path(vm_id)).parent.exists()
    reported = wait_until(lambda: rig.consumer.call("vpn.rogue_events"), 30)
    assert reported and reported[0]["vm_id"] == vm_id and reported[0]["reason"] == "foreign-source-mac"


def test_kill_9_of_the_consumer_pauses_then_deletes_the_vm(rig: Rig) -> None:
    vm_id, gateway = rig.rent()
    try:
        assert wait_until(lambda: LEASE_MARKER in rig.console(vm_id), 120)
        rc, _ = shell(gateway, f"ping -c 1 -W 2 {SUBNET_GATEWAY}")
        assert rc == 0
        rig.consumer.kill9()
        paused = wait_until(lambda: rig.provider.call("vm.show", {"vm_id": vm_id})["state"] == "paused", 30)
        assert paused, "the VM was not paused once the consumer was gone"
        assert wait_until(lambda: not any(vm["vm_id"] == vm_id for vm in rig.provider.call("vm.list")), 60)
    finally:
        if any(vm["vm_id"] == vm_id for vm in rig.provider.call("vm.list")):
            rig.provider.call("vm.destroy", {"vm_id": vm_id}, timeout=120)


def test_the_providers_uplink_never_saw_a_frame_of_the_guest(rig: Rig, rented: Any) -> None:
    vm_id, _ = rented
    rig.stop_capture.touch()
    rig.sniffer.wait(timeout=120)  # it writes the capture as it exits
    mac = ":".join(vm_id[i : i + 2] for i in range(0, 6, 2))
    packets = rdpcap(str(rig.capture))
    assert len(packets) > 0
    leaked = [
        p
        for p in packets
        if (Ether in p and p[Ether].src.endswith(mac)) or (IP in p and p[IP].src.startswith("198.18.255."))
    ]
    assert leaked == []


def test_kill_9_of_the_provider_with_the_vpn_running_is_reclaimed_at_restart(rig: Rig) -> None:
    """A provider crash leaves a VM with its tunnel running; the restarted node's registry removes it all."""
    info = rig.provider.call("vm.create", {**SMALL_VM, "consumer": rig.consumer.peer_id}, timeout=600)
    vm_id = info["vm_id"]
    domain, netns = f"omk-{vm_id}", f"omk-{vm_id}"
    assert wait_until(lambda: any(t["vm_id"] == vm_id for t in rig.provider.call("vpn.status")["tunnels"]), 60)
    assert Path(f"/run/netns/{netns}").exists()
    rig.provider.kill9()
    rig.provider.start(*rig.provider_sets)
    assert not any(vm["vm_id"] == vm_id for vm in rig.provider.call("vm.list"))
    kvm = rig.provider.status()["services"]["hypervisor"]["kvm"]
    assert kvm["reclaimed_at_start"] >= 1
    assert not Path(f"/run/netns/{netns}").exists()
    listed = subprocess.run(["virsh", "-q", "list", "--all", "--name"], capture_output=True, text=True, check=True)
    assert domain not in listed.stdout.split()
    assert rig.provider.call("vpn.status")["tunnels"] == []
    assert any(e["step"] == "delete" and e["reason"] == "reclaim" and e["vm_id"] == vm_id for e in lifecycle(rig))
