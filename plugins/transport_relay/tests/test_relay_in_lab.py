"""Acceptance in the NAT lab: the relay reads nothing, fails over, survives conntrack flushes and throttles floods."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omerta_netlab.matrix import CHANNEL, NatMatrix, collect, wait_for
from omerta_netlab.nodes import LabNode
from scapy.all import UDP, rdpcap

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(600)]

#: The acceptance limit for moving a relayed session to the second relay.
FAILOVER_LIMIT_S = 10.0
NO_PUNCH = "plugins.relay.punch=false"


def relayed_pair(matrix: NatMatrix, source_kind: str, target_kind: str, *extra: str) -> tuple[LabNode, LabNode]:
    source = matrix.start_client(matrix.hosts[source_kind][0], *extra)
    target = matrix.start_client(matrix.hosts[target_kind][1], *extra)
    for node in (source, target):
        node.call("udp.subscribe", {"channel": CHANNEL})
    matrix.connect(source, target)
    source.call("udp.send", {"peer": target.peer_id, "channel": CHANNEL, "text": "hello"})
    assert collect(target, 1) == [b"hello"]
    return source, target


def exchange(source: LabNode, target: LabNode, text: str, count: int, timeout: float = 60.0) -> None:
    """Send ``count`` messages each way and check every one arrives, in order."""
    for sender, receiver in ((source, target), (target, source)):
        sender.call("udp.send", {"peer": receiver.peer_id, "channel": CHANNEL, "text": text, "count": count})
    for receiver in (target, source):
        assert collect(receiver, count, timeout) == [f"{text}{i}".encode() for i in range(count)]


SNIFFER = """
import pathlib, sys
from scapy.all import sniff, wrpcap
out, ready, stop = (pathlib.Path(a) for a in sys.argv[1:4])
packets = sniff(
    iface="eth0",
    started_callback=ready.touch,
    stop_filter=lambda _packet: stop.exists(),
    timeout=300,
)
wrpcap(str(out), packets)
"""


def test_plaintext_never_appears_on_the_relays_interface(matrix: NatMatrix, tmp_path: Path) -> None:
    source, target = relayed_pair(matrix, "symmetric", "symmetric")
    marker = f"PLAINTEXT-{secrets.token_hex(8)}-"
    pcap, ready, stop = tmp_path / "relay.pcap", tmp_path / "ready", tmp_path / "stop"
    argv = [sys.executable, "-c", SNIFFER, str(pcap), str(ready), str(stop)]
    sniffer = matrix.lab.popen(matrix.relay_hosts[0], argv)
    try:
        assert wait_for(ready.exists, 60), "the sniffer did not start"
        exchange(source, target, marker, 50)
    finally:
        stop.touch()
        sniffer.wait(timeout=60)
        source.stop()
        target.stop()
    packets = rdpcap(str(pcap))
    relay_data = [p for p in packets if UDP in p and bytes(p[UDP].payload)[:1] == b"\xa6"]
    # the capture must have seen the relayed session packets: all 100 messages' worth of bytes
    carried = sum(len(bytes(p[UDP].payload)) for p in relay_data)
    assert carried >= 2 * 50 * len(marker), "the capture did not see the relayed session"
    assert not any(marker.encode() in bytes(p) for p in packets)


def test_killing_the_relay_moves_the_session_to_the_second_relay(fresh_matrix: NatMatrix) -> None:
    source, target = relayed_pair(fresh_matrix, "symmetric", "symmetric")
    exchange(source, target, "before-", 10)
    first_relay, second_relay = fresh_matrix.relays
    carried_before = second_relay.relay_status()["server"]["counters"].get("forwarded_packets", 0)
    first_relay.kill9()
    killed_at = time.monotonic()
    for sender, receiver in ((source, target), (target, source)):
        sender.call("udp.send", {"peer": receiver.peer_id, "channel": CHANNEL, "text": "after-kill"})
    for receiver in (target, source):
        assert collect(receiver, 1, timeout=FAILOVER_LIMIT_S) == [b"after-kill"]
    print(f"failover: both directions delivered {time.monotonic() - killed_at:.2f} s after the kill")
    carried_after = second_relay.relay_status()["server"]["counters"].get("forwarded_packets", 0)
    assert carried_after > carried_before
    exchange(source, target, "after-", 10)


@pytest.mark.parametrize(("source_kind", "target_kind"), [("symmetric", "full-cone"), ("symmetric", "symmetric")])
def test_traffic_recovers_after_the_routers_forget_their_connections(
    fresh_matrix: NatMatrix, source_kind: str, target_kind: str
) -> None:
    source, target = relayed_pair(fresh_matrix, source_kind, target_kind)
    exchange(source, target, "before-", 10)
    for node in (source, target):
        assert node.host.router is not None
        fresh_matrix.lab.flush_conntrack(node.host.router)
    exchange(source, target, "after-", 10, timeout=90.0)


def test_a_flooding_client_is_throttled_and_others_are_unaffected(matrix: NatMatrix) -> None:
    flooder, sink = relayed_pair(matrix, "full-cone", "full-cone", NO_PUNCH)
    alice, bob = relayed_pair(matrix, "address-restricted", "address-restricted", NO_PUNCH)
    relay = matrix.relays[0]
    flood = {"peer": sink.peer_id, "channel": CHANNEL, "data_b64": "QUFB" * 333, "delivery": "datagram"}
    for _ in range(4):
        flooder.call("udp.send", {**flood, "count": 5000}, timeout=120.0)
        exchange(alice, bob, "meanwhile-", 5)
    clients = relay.relay_status()["server"]["clients"]
    assert clients[flooder.peer_id[:12]]["throttled"] > 0
    assert clients[alice.peer_id[:12]]["throttled"] == 0
    assert clients[bob.peer_id[:12]]["throttled"] == 0
    exchange(alice, bob, "after-", 20)
    for node in (flooder, sink, alice, bob):
        node.stop()


def test_ipv6_hole_punching_through_two_filtering_routers(matrix: NatMatrix) -> None:
    """IPv6 is filtered but not translated: punching opens both routers' filters for a direct v6 path."""
    v6_relays = ", ".join(f'"{r.peer_id}@[{r.host.address6}]:7700"' for r in matrix.relays)
    settings = ('plugins.udp.host="::"', f"plugins.relay.relays=[{v6_relays}]")
    source = matrix.start_client(matrix.hosts["port-restricted"][0], *settings)
    target = matrix.start_client(matrix.hosts["port-restricted"][1], *settings)
    try:
        assert source.relay_status()["observed"] == [f"[{source.host.address6}]:{source.port}"]
        for node in (source, target):
            node.call("udp.subscribe", {"channel": CHANNEL})
        matrix.connect(source, target)
        source.call("udp.send", {"peer": target.peer_id, "channel": CHANNEL, "text": "hello"})
        assert collect(target, 1) == [b"hello"]
        assert wait_for(lambda: source.route_to(target.peer_id) == f"[{target.host.address6}]:{target.port}", 30)
        assert wait_for(lambda: target.route_to(source.peer_id) == f"[{source.host.address6}]:{source.port}", 30)
        exchange(source, target, "v6-", 10)
    finally:
        source.stop()
        target.stop()


def test_explicit_punch_through_the_nat_traversal_interface(matrix: NatMatrix) -> None:
    """With automatic punching off the session stays relayed until ``nat.punch`` is asked for."""
    source, target = relayed_pair(matrix, "full-cone", "port-restricted", NO_PUNCH)
    try:
        assert source.route_to(target.peer_id) == "via relay"
        result = source.call("nat.punch", {"peer": target.peer_id}, timeout=60.0)
        assert target.host.router is not None
        assert result["direct"] == f"{target.host.router.wan_address}:{target.port}"
        assert source.route_to(target.peer_id) == result["direct"]
        exchange(source, target, "direct-", 10)
    finally:
        source.stop()
        target.stop()


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "from omerta_core.cli import run; run()", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_relay_commands_show_classification_and_clients(matrix: NatMatrix) -> None:
    node = matrix.start_client(matrix.hosts["port-restricted"][0])
    try:
        assert wait_for(lambda: node.relay_status()["filtering"] != "unknown", 30)
        shown = omerta("relay", "status", "--json", "--state-dir", str(node.state_dir))
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert (status["mapping"], status["filtering"]) == ("endpoint-independent", "address-and-port-dependent")
        assert status["observed"] == [f"{node.host.router.wan_address}:{node.port}"]  # type: ignore[union-attr]
        table = omerta("relay", "clients", "--state-dir", str(matrix.relays[0].state_dir))
        assert table.returncode == 0 and node.peer_id[:12] in table.stdout
        refused = omerta("relay", "clients", "--state-dir", str(node.state_dir))
        assert refused.returncode != 0
        assert "does not serve as a relay" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    finally:
        node.stop()


def test_pairs_still_connect_and_punch_over_lossy_links(fresh_matrix: NatMatrix) -> None:
    """10 % loss each way on both routers' uplinks: allocations, signalling and probes all retry."""
    for host in (fresh_matrix.hosts["port-restricted"][0], fresh_matrix.hosts["address-restricted"][1]):
        assert host.router is not None
        fresh_matrix.lab.set_link(host.router, loss_percent=10)
    result = fresh_matrix.run_pair("port-restricted", "address-restricted")
    assert result.connected
    assert result.path == "direct"
