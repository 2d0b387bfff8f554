"""Renting a VM between real node processes on loopback: offers, refusals, request → ready → SSH over the VPN →
exec → release → settle, the failure paths, and two consumers at once.

One cluster (seven nodes, the provider with the kvm and vpn plugins and the test guest under TCG, two consumers
with the vpn plugin in isolated mode) serves every test of the module, in order. Everything the nodes made is
removed at the end.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from omerta_rental import ssh
from omerta_rental.testing import CLAIM_MARGIN_S, FUNDING, PRICE, SUBNETS, Cluster, wait_for
from omerta_vm_kvm.guest_builder import build_test_guest

from omerta_core.identity import Identity

pytestmark = [pytest.mark.timeout(1500), pytest.mark.root, pytest.mark.slow]

#: The witnesses' abandon timeout in this cluster: a provider claims an abandoned session this long after its end.
ABANDON_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cache = os.environ.get("OMERTA_KVM_TEST_CACHE")
    images = build_test_guest(Path(cache) if cache else tmp_path_factory.mktemp("guest")).parent
    nodes = Cluster(tmp_path_factory.mktemp("rental"), images, vpn=True, abandon_s=ABANDON_S)
    try:
        nodes.start_all()
        nodes.fund()
        yield nodes
    finally:
        nodes.stop()
        vms = nodes.root / "provider" / "plugins" / "kvm" / "vms"
        assert not vms.exists() or not any(vms.iterdir()), "the provider left VM artefacts behind"


def locked(cluster: Cluster, name: str) -> int:
    return int(cluster.balances(name).get(cluster.ids[name], {}).get("locked", 0))


def test_the_consumer_sees_the_providers_offer(cluster: Cluster) -> None:
    offers = wait_for("the provider's offer", lambda: cluster["consumer"].call("rental.offers", {}), 60)
    assert [o["provider"] for o in offers] == [cluster.ids["provider"]]
    assert offers[0]["price"] == PRICE and offers[0]["img"] == ["omk-test"]
    shown = cluster["consumer"].omerta("offers", "--image", "omk-test", "--max-price", str(PRICE), "--json")
    assert json.loads(shown.stdout)[0]["provider"] == cluster.ids["provider"]
    assert cluster["consumer"].call("rental.offers", {"max_price": PRICE - 1}) == []


@pytest.mark.parametrize(
    ("who", "args", "reason"),
    [
        ("consumer", ["--image", "nope"], "refused: this provider has no image 'nope'"),
        ("consumer", ["--image", "omk-test", "--cpu", "8"], "refused: this provider offers 2 free vCPUs, not 8"),
        ("consumer", ["--image", "omk-test", "--activity", "x"], "refused: describe what you will run"),
        ("w4", ["--image", "omk-test", "--hours", "0.02"], "blocklisted"),  # 72 of its 100: affordable
        ("w3", ["--image", "omk-test"], "not enough funds: this node holds 100 available, less than the 3600"),
    ],
)
def test_a_refusal_is_one_line_and_leaves_no_lock_and_no_vm(cluster: Cluster, who: str, args: list[str],
                                                            reason: str) -> None:  # fmt: skip
    refused(cluster, who, args, reason)


def refused(cluster: Cluster, who: str, args: list[str], reason: str) -> None:
    """``who`` asks the provider and sees one line containing ``reason``; no lock opened, no VM made."""
    if "--activity" not in args:
        args = [*args, "--activity", "run the test suite"]
    vms_before, locked_before = [v["vm_id"] for v in cluster["provider"].call("vm.list")], locked(cluster, who)
    lifecycle = cluster["provider"].state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    steps_before = len(lifecycle.read_text().splitlines()) if lifecycle.exists() else 0
    done = cluster[who].omerta("vm", "request", "--provider", cluster.ids["provider"], *args)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and reason in error[0], done.stderr
    assert locked(cluster, who) == locked_before
    # refused at admission, or by the consumer itself before asking: the hypervisor never heard of a VM for it
    assert [v["vm_id"] for v in cluster["provider"].call("vm.list")] == vms_before
    lines = lifecycle.read_text().splitlines()[steps_before:] if lifecycle.exists() else []
    assert not lines, lines


@contextlib.contextmanager
def provider_configured(cluster: Cluster, **rental: Any) -> Iterator[None]:
    """The provider restarted with these admission settings, and with the cluster's again afterwards."""
    cluster.restart("provider", **rental)
    try:
        yield
    finally:
        cluster.restart("provider")


def network_of(cluster: Cluster, name: str) -> str:
    """The network the provider's discovery has ``name`` in (every node of the cluster shares it)."""
    rows = cluster["provider"].call("gossip.peers")
    return str(next(r["network"] for r in rows if r["peer"] == cluster.ids[name]))


def test_a_provider_for_its_owner_and_trusted_networks_refuses_others(cluster: Cluster) -> None:
    with provider_configured(cluster, admit_others=False):
        refused(cluster, "consumer", ["--image", "omk-test"],
                "refused: this provider rents only to its owner and trusted networks")  # fmt: skip


def test_quiet_hours_on_the_providers_clock_refuse_even_a_trusted_network(cluster: Cluster) -> None:
    # the provider's clock is UTC by setting; its quiet hours hold "now" with an hour to spare either side
    hour = datetime.datetime.now(datetime.UTC).hour
    quiet = [(hour - 1) % 24, (hour + 2) % 24]
    with provider_configured(cluster, timezone="UTC", quiet_hours=quiet, admit_others=False,
                             trusted_networks=[network_of(cluster, "consumer")]):  # fmt: skip
        refused(cluster, "consumer", ["--image", "omk-test"],
                f"refused: quiet hours ({quiet[0]:02d}:00-{quiet[1]:02d}:00 provider time), owner only")  # fmt: skip


def test_trust_below_the_providers_minimum_is_refused(cluster: Cluster) -> None:
    # the consumer is in a trusted network, so the trust rule (after the tier rule) is what refuses it
    with provider_configured(cluster, min_trust=0.99, admit_others=False,
                             trusted_networks=[network_of(cluster, "consumer")]):  # fmt: skip
        refused(cluster, "consumer", ["--image", "omk-test"], "below the minimum 0.990")


@pytest.mark.parametrize(
    ("provider", "reason"),
    [("w2", "refused: this node offers no VMs"), (None, "the provider did not answer within 20 s (gone?)")],
)
def test_a_node_without_vms_or_a_vanished_provider_is_a_clear_error(cluster: Cluster, provider: str | None,
                                                                    reason: str) -> None:  # fmt: skip
    peer = cluster.ids[provider] if provider else Identity.generate().peer_id
    done = cluster["consumer"].omerta("vm", "request", "--provider", peer, "--image", "omk-test", "--activity", "ci")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"Error: {reason}"], done.stderr
    assert locked(cluster, "consumer") == 0


def test_request_ready_release_settle(cluster: Cluster) -> None:
    consumer, provider = cluster["consumer"], cluster["provider"]
    before = cluster.balances("authority")
    done = consumer.omerta("vm", "request", "--image", "omk-test", "--mem", "128", "--hours", "1",
                           "--activity", "rental acceptance test")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = re.findall(r"\]\s+(\S+)", done.stdout)
    for step in ("requested", "admitted", "locked", "creating", "ready", "vpn", "ssh"):
        assert step in steps, done.stdout
    # the gateway was built while the VM booted (the provider named the VM in "admitted"), not after ready
    assert steps.index("locked") < steps.index("vpn") < steps.index("ready"), done.stdout
    assert "host key pinned from the provider" in done.stdout
    rental = done.stdout.split()[1]
    shown = consumer.call("rental.show", {"rental": rental})
    assert shown["vm_id"] and shown["vpn"] and shown["address"] == "198.18.255.2"
    assert shown["host_key"].startswith("ssh-ed25519 ")

    ran = consumer.omerta("vm", "exec", rental, "--", "cat /proc/cmdline; uname -n; id -un")
    assert ran.returncode == 0, ran.stderr
    assert f"omerta.vm={shown['vm_id']}" in ran.stdout  # the output came from this rental's guest
    assert ran.stdout.split()[-2:] == [f"omerta-{shown['vm_id'][:8]}", "omerta"]
    assert consumer.omerta("vm", "exec", rental, "--", "exit 7").returncode == 7
    session = consumer.omerta("vm", "ssh", rental, stdin="uname -n\nexit 3\n", timeout=120)  # a login shell
    assert session.returncode == 3 and f"omerta-{shown['vm_id'][:8]}" in session.stdout, session.stderr
    assert_only_the_consumers_key_and_the_pinned_host_key(cluster, shown)
    vms = provider.call("vm.list")
    assert [v["vm_id"] for v in vms] == [shown["vm_id"]] and vms[0]["consumer"] == cluster.ids["consumer"]
    assert "rental acceptance test" in provider.log_path.read_text() and cluster.ids["consumer"] in provider.log_tail(
        10**7
    )
    assert locked(cluster, "consumer") == PRICE

    released = consumer.omerta("vm", "release", rental)
    assert released.returncode == 0, released.stderr
    final = consumer.call("rental.show", {"rental": rental})
    assert final["outcome"] == "released"
    split = final["settlement"]
    assert split["settled"] and split["provider_payment"] + split["burn"] + split["refund"] == PRICE
    assert split["refund"] > 0 and split["duration_ms"] > 0
    assert provider.call("vm.list") == []
    assert locked(cluster, "consumer") == 0
    assert consumer.call("vpn.gateways") == [] and not known_hosts(cluster, "consumer", rental).exists()
    wait_for("the provider's tunnel to close", lambda: provider.call("vpn.tunnels") == [], 30)

    cluster.sync(rounds=2)
    views = {name: cluster.balances(name) for name in cluster.nodes}
    assert all(view == views["authority"] for view in views.values()), "the chains disagree on the settlement"
    after = views["authority"]
    consumer_id, provider_id = cluster.ids["consumer"], cluster.ids["provider"]
    assert after[consumer_id]["balance"] == before[consumer_id]["balance"] - split["provider_payment"] - split["burn"]
    assert after[provider_id]["balance"] == before[provider_id]["balance"] + split["provider_payment"]
    assert before[consumer_id]["balance"] == FUNDING


def test_two_consumers_at_once_each_reach_only_their_own_vm(cluster: Cluster) -> None:
    """Both rent from the one provider at once; from inside each guest, the other's VM and gateway are out of
    reach, routed and on the link alike, while its own gateway answers."""
    with ThreadPoolExecutor(len(SUBNETS)) as pool:
        running = {name: pool.submit(cluster[name].omerta, "vm", "request", "--image", "omk-test", "--mem", "128",
                                     "--activity", "isolation test") for name in SUBNETS}  # fmt: skip
    rentals = {}
    for name, future in running.items():
        done = future.result()
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
        rentals[name] = done.stdout.split()[1]
    try:
        shown = {name: cluster[name].call("rental.show", {"rental": rentals[name]}) for name in SUBNETS}
        hosted = {vm["vm_id"]: vm["consumer"] for vm in cluster["provider"].call("vm.list")}
        assert hosted == {shown[name]["vm_id"]: cluster.ids[name] for name in SUBNETS}
        for name, other in (("consumer", "w1"), ("w1", "consumer")):
            own, theirs = ipaddress.ip_network(SUBNETS[name]), ipaddress.ip_network(SUBNETS[other])
            assert shown[name]["address"] == str(own[2])
            targets = (str(theirs[2]), str(theirs[1]))
            script = (
                f"cat /proc/cmdline; ping -c 1 -W 5 {own[1]} >/dev/null && echo own-gateway-answers; "
                + "".join(f"ping -c 2 -W 1 {t} >/dev/null && echo reached-routed-{t}; " for t in targets)
                + f"ip addr add {theirs[9]}/{theirs.prefixlen} dev eth0; "
                + "".join(f"ping -c 2 -W 1 {t} >/dev/null && echo reached-on-link-{t}; " for t in targets)
                + f"ip addr del {theirs[9]}/{theirs.prefixlen} dev eth0; true"
            )
            ran = cluster[name].omerta("vm", "exec", rentals[name], "--", script)
            assert ran.returncode == 0, ran.stderr
            assert f"omerta.vm={shown[name]['vm_id']}" in ran.stdout, ran.stdout  # its own guest
            assert "own-gateway-answers" in ran.stdout and "reached-" not in ran.stdout, ran.stdout
    finally:
        for name, rental in rentals.items():
            cluster[name].omerta("vm", "release", rental)
    for name in SUBNETS:
        assert outcome(cluster, rentals[name], node=name)["settlement"]["settled"]
        assert locked(cluster, name) == 0 and cluster[name].call("vpn.gateways") == []
    assert_gone_and_agreed(cluster, PRICE)


def known_hosts(cluster: Cluster, name: str, rental: str) -> Path:
    return ssh.known_hosts(cluster[name].state_dir / "plugins" / "rental", rental)


def assert_only_the_consumers_key_and_the_pinned_host_key(cluster: Cluster, shown: dict[str, Any]) -> None:
    """Another key is refused by the guest; a host key other than the pinned one is refused by ssh."""
    consumer, rental = cluster["consumer"], shown["rental"]
    other = cluster.root / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = known_hosts(cluster, "consumer", rental)
    argv = ssh.ssh_argv(shown["enter"], other, known, shown["address"], pinned=True, batch=True)
    refused = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    pinned = known.read_text()
    assert pinned.split()[1:] == shown["host_key"].split()
    impostor = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"{shown['address']} {' '.join(impostor)}\n")
    try:
        spoofed = consumer.omerta("vm", "exec", rental, "--", "true")
    finally:
        known.write_text(pinned)
    assert spoofed.returncode == 255 and "Host key verification failed" in spoofed.stderr, spoofed.stderr


def rent(cluster: Cluster, hours: str = "1") -> str:
    """A rental, returned at ready (the failure paths time from there; the VPN and SSH come up meanwhile)."""
    done = cluster["consumer"].omerta("vm", "request", "--image", "omk-test", "--mem", "128", "--hours", hours,
                                      "--activity", "failure path test", "--wait", "ready")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[1]


def outcome(cluster: Cluster, rental: str, timeout: float = 240, node: str = "consumer") -> dict[str, Any]:
    """Wait until the consumer's rental has ended and settled; return it."""

    def settled() -> dict[str, Any] | None:
        shown = dict(cluster[node].call("rental.show", {"rental": rental}))
        return shown if shown["outcome"] is not None and shown["settlement"] else None

    return dict(wait_for(f"rental {rental[:12]} to settle", settled, timeout))


def assert_gone_and_agreed(cluster: Cluster, escrow: int) -> None:
    """The VM and its artefacts are gone, no lock is open, and every chain agrees after sync."""
    wait_for("the provider to hold no VM", lambda: cluster["provider"].call("vm.list") == [], 60)
    vms = cluster.root / "provider" / "plugins" / "kvm" / "vms"
    assert not vms.exists() or not any(vms.iterdir())
    assert locked(cluster, "consumer") == 0
    cluster.sync(rounds=2)
    views = {name: cluster.balances(name) for name in cluster.nodes}
    assert all(view == views["authority"] for view in views.values()), "the chains disagree on the settlement"


def test_a_top_up_extends_the_lease_and_then_it_runs_out(cluster: Cluster) -> None:
    rental = rent(cluster, hours="0.01")  # 36 s for 36 units
    topped = cluster["consumer"].omerta("vm", "topup", rental, "--hours", "0.01")
    assert topped.returncode == 0 and "escrow now 72" in topped.stdout, topped.stdout + topped.stderr

    def extended() -> bool:
        events = cluster["consumer"].call("rental.show", {"rental": rental})["events"]
        return any(e["step"] == "extended" for e in events)

    wait_for("the extension", extended, 30)
    final = outcome(cluster, rental)
    assert final["outcome"] == "expired"
    split = final["settlement"]
    # the witnesses' attested duration settles; it covers the whole paid time, so the escrow is spent
    assert split["settled"] and split["duration_ms"] >= 70_000 and split["refund"] == 0
    assert split["provider_payment"] + split["burn"] == 72
    assert_gone_and_agreed(cluster, 72)


def provider_claim(cluster: Cluster, rental: str, what: str) -> dict[str, Any]:
    """Wait for the provider's claim of ``rental`` (its consumer gone) to settle; return its split, checked: the
    seconds the lease ran before the consumer died, part of the escrow refunded, nothing created or lost."""

    def claimed() -> dict[str, Any] | None:
        split = cluster["provider"].call("rental.show", {"rental": rental})["settlement"]
        return split if split.get("claimed") else None

    split: dict[str, Any] = wait_for(what, claimed, ABANDON_S + CLAIM_MARGIN_S + 240)
    assert 1_000 <= split["duration_ms"] <= 30_000, split
    assert split["provider_payment"] + split["burn"] + split["refund"] == PRICE and split["refund"] > 0
    return split


def test_kill_9_of_the_consumer_mid_lease(cluster: Cluster) -> None:
    """The consumer dies mid-lease and stays away: the provider deletes the VM, the witnesses attest its duration,
    and after the abandon timeout the provider's claim (spec 02's provider path) settles the lock; every node
    agrees while the consumer is down, and the consumer, started again, records that same settlement."""
    rental = rent(cluster)
    time.sleep(3)
    cluster["consumer"].kill9()
    wait_for("the provider to delete the orphaned VM", lambda: cluster["provider"].call("vm.list") == [], 60)
    vms = cluster.root / "provider" / "plugins" / "kvm" / "vms"
    assert not vms.exists() or not any(vms.iterdir())

    split = provider_claim(cluster, rental, "the provider's claim to settle")
    cluster.sync(rounds=2)  # the consumer is still down: every other node holds its chain with the lock open
    consumer_id, provider_id = cluster.ids["consumer"], cluster.ids["provider"]
    views = {name: cluster.balances(name) for name, node in cluster.nodes.items() if node.running}
    assert all(view == views["authority"] for view in views.values()), "the chains disagree on the claim"
    assert views["authority"][consumer_id]["locked"] == 0, "the claim closes the lock for every observer"
    session = str(cluster["provider"].call("rental.show", {"rental": rental})["session"])
    [claim] = escrow_blocks(cluster, "provider", "escrow_payment", session)
    assert claim["payload"]["settlement"]["settlement"]["provider"] == provider_id

    cluster.start("consumer")  # comes back: resumes the rental and records the provider's settlement
    final = outcome(cluster, rental)
    assert {k: final["settlement"][k] for k in ("duration_ms", "provider_payment", "burn", "refund")} == {
        k: split[k] for k in ("duration_ms", "provider_payment", "burn", "refund")
    }, f"{final['settlement']} {final['events'][-3:]}"
    [settle] = escrow_blocks(cluster, "consumer", "escrow_settle", session)
    assert settle["payload"]["settlement"] == claim["payload"]["settlement"], "one settlement, not two"
    assert_gone_and_agreed(cluster, PRICE)


def pending_claims(cluster: Cluster) -> dict[str, Any]:
    """The provider's claim journal: its pending claims by rental."""
    path = cluster.root / "provider" / "plugins" / "rental" / "claims.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def test_a_provider_killed_before_its_claim_claims_once_after_a_restart(cluster: Cluster) -> None:
    """The consumer dies mid-lease and stays away; the lease ends and is attested, and the provider is killed
    (-9) before its claim is due. Started again, it makes the claim from its journal when due, once: one
    payment block, the journal empty, and every running node counts the lock closed."""
    rental = rent(cluster)
    time.sleep(3)
    cluster["consumer"].kill9()
    wait_for("the provider to delete the orphaned VM", lambda: cluster["provider"].call("vm.list") == [], 60)
    entry = wait_for("the provider to journal its claim", lambda: pending_claims(cluster).get(rental), 30)
    session = entry["session"]
    assert not cluster["provider"].call("rental.show", {"rental": rental})["settlement"], "claimed too early"
    assert escrow_blocks(cluster, "provider", "escrow_payment", session) == []
    cluster["provider"].kill9()
    assert time.time() < entry["due_wall"], "the provider was killed after its claim was due"

    cluster.start("provider")

    split = provider_claim(cluster, rental, "the restarted provider's claim to settle")
    wait_for("the claim to leave the journal", lambda: rental not in pending_claims(cluster), 30)
    [claim] = escrow_blocks(cluster, "provider", "escrow_payment", session)  # exactly once
    cluster.sync(rounds=2)
    consumer_id = cluster.ids["consumer"]
    views = {name: cluster.balances(name) for name, node in cluster.nodes.items() if node.running}
    assert all(view == views["authority"] for view in views.values()), "the chains disagree on the claim"
    assert all(view[consumer_id]["locked"] == 0 for view in views.values()), "the claim closes the lock everywhere"

    cluster.start("consumer")  # comes back: records the provider's settlement, not a second one
    final = outcome(cluster, rental)
    assert final["settlement"]["provider_payment"] == split["provider_payment"], final["settlement"]
    [settle] = escrow_blocks(cluster, "consumer", "escrow_settle", session)
    assert settle["payload"]["settlement"] == claim["payload"]["settlement"], "one settlement, not two"
    assert_gone_and_agreed(cluster, PRICE)


def escrow_blocks(cluster: Cluster, name: str, kind: str, session: str) -> list[dict[str, Any]]:
    """The ``kind`` blocks (``escrow_payment``, ``escrow_settle``) of ``session`` on ``name``'s own chain."""
    blocks = cluster[name].call("ledger.show", {"limit": 10_000})["blocks"]
    return [
        b for b in blocks if b["kind"] == kind and b["payload"]["settlement"]["settlement"]["session_id"] == session
    ]


def test_kill_9_of_the_provider_mid_lease(cluster: Cluster) -> None:
    rental = rent(cluster)
    time.sleep(3)
    cluster["provider"].kill9()
    final = outcome(cluster, rental)
    assert final["outcome"] == "lost heartbeats"
    split = final["settlement"]
    assert split["settled"] and split["duration_ms"] <= 10_000 and split["refund"] >= PRICE - 10
    cluster.start("provider")  # reclaims the VM its previous run left
    assert_gone_and_agreed(cluster, PRICE)


def test_a_partition_longer_than_the_grace(cluster: Cluster) -> None:
    rental = rent(cluster)
    time.sleep(2)
    provider = cluster["provider"]
    assert provider.process is not None
    provider.process.send_signal(signal.SIGSTOP)  # nothing in or out of the provider until the consumer gave up
    try:
        final = outcome(cluster, rental)
    finally:
        provider.process.send_signal(signal.SIGCONT)
    assert final["outcome"] == "lost heartbeats"
    assert final["settlement"]["duration_ms"] <= 6_000
    assert_gone_and_agreed(cluster, PRICE)


def test_owner_preemption_ends_the_lease_and_settles(cluster: Cluster) -> None:
    rental = rent(cluster)
    time.sleep(2)
    preempted = cluster["provider"].omerta("vm", "preempt", rental)
    assert preempted.returncode == 0, preempted.stderr
    assert "preempted" in preempted.stdout
    final = outcome(cluster, rental)
    assert final["outcome"] == "preempted"
    split = final["settlement"]
    assert split["settled"] and 0 < split["duration_ms"] <= 60_000
    assert_gone_and_agreed(cluster, PRICE)


def test_one_consumer_rents_two_vms_at_once(cluster: Cluster) -> None:
    """Both requests lock and get their VM: the consumer's node makes its escrow locks one after another, so the
    second names the head holding the first and the witnesses' attested balance (spec 03) agrees with it."""
    request = {"image": "omk-test", "memory_mib": 128, "lease_s": 3600, "activity": "two at once"}
    with provider_configured(cluster, max_per_consumer=2):
        rentals = [cluster["consumer"].call("rental.request", request)["rental"] for _ in range(2)]  # same instant

        def both_ready() -> bool:
            shown = [cluster["consumer"].call("rental.show", {"rental": r}) for r in rentals]
            assert all(s["outcome"] is None for s in shown), shown
            return all(any(e["step"] == "ready" for e in s["events"]) for s in shown)

        try:
            wait_for("both rentals to be ready", both_ready, 300)
            hosted = cluster["provider"].call("vm.list")
            assert len(set(rentals)) == 2 and [vm["consumer"] for vm in hosted] == [cluster.ids["consumer"]] * 2
        finally:
            for rental in rentals:
                cluster["consumer"].omerta("vm", "release", rental)
        for rental in rentals:
            assert outcome(cluster, rental)["settlement"]["settled"]
        assert_gone_and_agreed(cluster, PRICE)


def test_per_consumer_and_total_limits_with_a_lease_held(cluster: Cluster) -> None:
    with provider_configured(cluster, max_total=1, max_per_consumer=1):
        rental = rent(cluster)
        try:
            refused(cluster, "consumer", ["--image", "omk-test", "--mem", "128"],
                    "refused: you already hold 1 lease(s) here, the limit per consumer")  # fmt: skip
            refused(cluster, "w1", ["--image", "omk-test", "--mem", "128"], "refused: this provider is full (1 leases)")
        finally:
            released = cluster["consumer"].omerta("vm", "release", rental)
        assert released.returncode == 0, released.stderr
        assert outcome(cluster, rental)["outcome"] == "released"
        assert_gone_and_agreed(cluster, PRICE)
