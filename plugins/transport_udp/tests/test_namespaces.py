"""Nodes in two network namespaces: a lossy, reordering, duplicating link, and an address swap."""

from __future__ import annotations

import subprocess
import time

import pytest

pytestmark = pytest.mark.timeout(900)

PORT = ["plugins.udp.port=7700"]


def udp_status(node) -> dict:
    return node.call("status")["services"]["transport"]["udp"]


#: How long the last acks may take over the impaired link (several retransmit rounds of 100 ms each way).
ACK_SETTLE_S = 30.0

NETEM = {"loss": 0.10, "duplicate": 0.10, "reorder": 0.25, "delay_s": 0.100}


def netem_available(lab, run) -> bool:
    try:
        run("ip", "netns", "exec", lab.a, "tc", "qdisc", "add", "dev", lab.dev_a, "root", "netem", "delay", "1ms")
    except subprocess.CalledProcessError as exc:
        if b"unknown" in (exc.stderr or b""):
            return False
        raise
    run("ip", "netns", "exec", lab.a, "tc", "qdisc", "del", "dev", lab.dev_a, "root")
    return True


def test_reliable_exactly_once_in_order_over_impaired_link(lab, nodes, collect, run, impair) -> None:
    """10% loss, 25% reordering, 10% duplication, 100 ms delay, each way.

    With `tc netem` between two namespaces when the kernel has sch_netem; otherwise
    through a userspace forwarder applying the same impairments on loopback.
    """
    if netem_available(lab, run):
        for ns, dev in ((lab.a, lab.dev_a), (lab.b, lab.dev_b)):
            run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "netem",
                "delay", "100ms", "loss", "10%", "duplicate", "10%", "reorder", "25%", "50%")  # fmt: skip
        a = nodes("a", lab.a).start(*PORT)
        b = nodes("b", lab.b).start(*PORT, f'plugins.udp.peers=["{a.peer_id}@198.18.1.1:7700"]')
    else:
        local = ["plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"']
        a = nodes("a").start(*local)
        link = impair(("127.0.0.1", a.port), **NETEM)
        b = nodes("b").start(*local, f'plugins.udp.peers=["{a.peer_id}@127.0.0.1:{link.front[1]}"]')
    b.call("udp.subscribe", {"channel": "r"})
    expected: list[bytes] = []
    for i in range(300):
        text = f"m{i}-" + "x" * (i * 37 % 3000)
        if i == 150:
            text = "big-" + "y" * 200_000
        a.call("udp.send", {"peer": b.peer_id, "channel": "r", "text": text})
        expected.append(text.encode())
    got = collect(b, "r", len(expected), timeout=300)
    assert got == expected
    assert udp_status(b)["counters"].get("dropped_replay", 0) > 0  # the duplicates were caught
    # the receiver has everything; the sender learns so once the last acks cross the lossy link
    deadline = time.monotonic() + ACK_SETTLE_S
    while True:
        (row,) = [p for p in udp_status(a)["peers"] if p["peer"] == b.peer_id]
        if row["unacked"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row["retransmits"] > 0 and row["unacked"] == 0


def test_address_swap_mid_stream(lab, nodes, collect, run) -> None:
    a = nodes("a", lab.a).start(*PORT)
    b = nodes("b", lab.b).start(*PORT, f'plugins.udp.peers=["{a.peer_id}@198.18.1.1:7700"]')
    a.call("udp.subscribe", {"channel": "s"})
    b.call("udp.subscribe", {"channel": "back"})
    b.call("udp.send", {"peer": a.peer_id, "channel": "s", "text": "one-", "count": 500})
    # keep the new address when the old (primary) one goes, as a DHCP renumbering would
    run("ip", "netns", "exec", lab.b, "sysctl", "-qw", f"net.ipv4.conf.{lab.dev_b}.promote_secondaries=1")
    run("ip", "-n", lab.b, "addr", "add", "198.18.1.3/24", "dev", lab.dev_b)
    run("ip", "-n", lab.b, "addr", "del", "198.18.1.2/24", "dev", lab.dev_b)
    b.call("udp.send", {"peer": a.peer_id, "channel": "s", "text": "two-", "count": 500})
    got = collect(a, "s", 1000)
    assert got == [f"one-{i}".encode() for i in range(500)] + [f"two-{i}".encode() for i in range(500)]
    (row,) = [p for p in udp_status(a)["peers"] if p["peer"] == b.peer_id]
    assert row["route"] == "198.18.1.3:7700"
    assert udp_status(a)["counters"]["roamed"] >= 1
    a.call("udp.send", {"peer": b.peer_id, "channel": "back", "text": "reply-", "count": 50})
    assert collect(b, "back", 50) == [f"reply-{i}".encode() for i in range(50)]
