"""Benchmark of renting a VM end to end, against a plain local VM create on the same host.

Seven real node processes on loopback (``omerta_rental.testing.Cluster(vpn=True)``: mint authority,
consumer with the vpn plugin (isolated gateway), provider with the kvm and vpn plugins and the test guest
under TCG, four more witnesses). Measured in one run:

* **rental SSH-ready**: ``rental.request`` → the guest's SSH server answers the consumer over its VPN
  (admission, spec 00 escrow lock with five witnesses, the witnesses' confirmation, VM creation and boot,
  ``ready``, the VPN attach, the guest's dropbear answering: the consumer's ``ssh`` step), for
  10 sequential rentals (the time of the consumer's ``ssh`` step as its node recorded it, since just before the
  request call); the baseline is the strongest fair one: ``vm.create`` on the provider's own
  control socket → console-ready, 10 times, on the same node and image (no mesh, no escrow), each
  run right before a rental so that the shared host's load weighs on both alike;
* **release → settled**: ``rental.release`` → the VM and its artefacts are gone, the consumer's lock is
  settled on its chain and the provider's chain holds the payment;
* **concurrent**: as many rentals at once as the provider's memory allows (its offer's memory over the
  request's), from one consumer; how many reach ready (console; each attaches the VPN too).

It also prints where a rental's time goes: the p50 of every step's time since the request, on both sides
(the consumer's and the provider's rental steps, the provider's hypervisor lifecycle), the phases between
them, and the timeline of one more traced rental (not counted; skipped when the run is already long) down
to the frames: when the guest's first frame reached the provider's tunnel and the consumer's gateway, when
the gateway's DHCP leased the guest its address and the guest applied it, from polling both nodes' VPN
counters, the guest's console and the gateway's lease file every 20 ms. Last, how long each part of the run
took; progress goes to stderr.

The rental side ends at SSH-ready, the local side at console-ready (a local ``vm.create`` has no VPN or
consumer key to log in with): the ratio is the whole overhead a consumer sees. Needs root, libvirtd and QEMU
(scripts/setup-system). The test guest is cached in $OMERTA_KVM_BENCH_CACHE (default
/tmp/omk-bench-cache). Headlines last.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from omerta_rental.testing import PRICE, Cluster, RentalNode, wait_for
from omerta_vm_kvm.guest_builder import build_test_guest

from omerta_core.errors import ControlError

RUNS = 10
#: How often the benchmark asks whether a rental is SSH-ready. Its time is read from the consumer's own record of
#: the ``ssh`` step, so polling seldom loses no precision and takes little CPU from the booting guest.
READY_POLL_S = 0.25
#: The traced rental runs only if the run so far took less than this (so the whole stays under 5 min under load).
TRACE_BUDGET_S = 180.0
CONCURRENT_MEMORY_MIB = 128
PROVIDER_MEMORY_MIB = 512
REQUEST = {"image": "omk-test", "vcpus": 1, "memory_mib": CONCURRENT_MEMORY_MIB, "disk_gib": 1, "lease_s": 3600,
           "activity": "benchmark"}  # fmt: skip


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def shown(cluster: Cluster, rental: str) -> dict[str, Any]:
    return dict(cluster["consumer"].call("rental.show", {"rental": rental}))


class RentalFailedError(Exception):
    """A rental ended before ready (counted, and the run goes on)."""


def ready(cluster: Cluster, rental: str, step: str = "ssh") -> bool:
    """Whether the rental reached ``step`` (``ssh``: the guest's SSH answers over the VPN; ``ready``: console)."""
    state = shown(cluster, rental)
    if state["outcome"] is not None:
        raise RentalFailedError(str(state["outcome"]))
    failed = [e for e in state["events"] if e["step"] in ("ssh failed", "ssh skipped", "vpn failed")]
    if step == "ssh" and failed:
        raise RentalFailedError(f"{failed[0]['step']}: {failed[0]['text']}")
    return any(e["step"] == step for e in state["events"])


def provider_balance(cluster: Cluster) -> int:
    mine = cluster["provider"].call("ledger.balance", {})["balances"]
    return int(mine.get(cluster.ids["provider"], {}).get("balance", 0))


#: Phases of a rental between two steps of its timeline (:func:`timeline`); the gateway's overlaps the boot.
PHASES = [
    ("admission", "consumer requested", "consumer admitted"),
    ("escrow lock (spec 00, 5 witnesses)", "consumer admitted", "consumer locked"),
    ("locked -> the provider has the lock confirmed by its witnesses", "consumer locked", "provider confirmed"),
    ("the consumer's VPN gateway built (during the boot)", "consumer locked", "consumer vpn"),
    ("the VM made during the lock, held before its first instruction", "hypervisor request", "hypervisor held"),
    ("confirmed -> the held VM boots", "provider confirmed", "hypervisor boot"),
    ("boot + ready message", "hypervisor boot", "consumer ready"),
    ("  of which the hypervisor's boot -> console ready", "hypervisor boot", "hypervisor ready"),
    ("ready -> the guest's SSH answers", "consumer ready", "consumer ssh"),
    ("release -> VM deleted and its duration attested (spec 01)", "consumer releasing", "consumer ended"),
    ("ended -> settled on the consumer's chain (spec 02)", "consumer ended", "consumer settled"),
]


def timeline(cluster: Cluster, rental: str, since: float) -> dict[str, float]:
    """When each step of ``rental`` first happened, seconds after ``since`` (wall clock): the consumer's and the
    provider's rental steps and the provider's hypervisor lifecycle of its VM."""
    times: dict[str, float] = {}
    for side in ("consumer", "provider"):
        state = cluster[side].call("rental.show", {"rental": rental})
        for event in state["events"]:
            times.setdefault(f"{side} {event['step']}", state["started"] + float(event["t"]) - since)
    vm_id = shown(cluster, rental)["vm_id"]
    lifecycle = cluster["provider"].state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    for line in lifecycle.read_text().splitlines() if vm_id and lifecycle.exists() else []:
        event = json.loads(line)
        if event["vm_id"] == vm_id:
            times.setdefault(f"hypervisor {event['step']}", float(event["ts"]) - since)
    return times


class FrameTrace:
    """What one rental's first frames did, by polling both nodes every :data:`EVERY_S` (for the traced rental)."""

    EVERY_S = 0.02

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.marks: dict[str, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> FrameTrace:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()

    def _mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())

    def _poll(self) -> None:
        provider, consumer = self.cluster["provider"], self.cluster["consumer"]
        while not self.done.wait(self.EVERY_S):
            try:
                self._look(provider, consumer)
            except (ControlError, OSError) as exc:  # a node busy or a file just removed: the next poll sees it
                print(f"frame trace: {exc}", file=sys.stderr, flush=True)

    def _look(self, provider: RentalNode, consumer: RentalNode) -> None:
        for tunnel in provider.call("vpn.tunnels"):
            counters = tunnel["counters"]
            self._mark("provider tunnel started")
            if tunnel["state"] == "up":
                self._mark("provider tunnel up (has heard the consumer)")
            if counters.get("dropped_no_session"):
                self._mark("provider tunnel dropped a guest frame (consumer not heard yet)")
            if counters.get("frames_to_consumer"):
                self._mark("provider tunnel carried the guest's first frame")
        for gateway in consumer.call("vpn.gateways"):  # the traced rental's only (earlier ones left files)
            self._mark("consumer gateway listed")
            if gateway["counters"].get("frames_from_vm"):
                self._mark("consumer gateway got the guest's first frame")
            leases = consumer.state_dir / "plugins" / "vpn" / "gateways" / gateway["vm_id"] / "dnsmasq.leases"
            if leases.exists() and leases.read_text().strip():
                self._mark("consumer gateway's dnsmasq leased the guest its address")
            console = provider.state_dir / "plugins" / "kvm" / "vms" / gateway["vm_id"] / "console.log"
            text = console.read_bytes() if console.exists() else b""
            for marker, name in ((b"omerta-guest-lease", "guest applied its lease (console)"),
                     (b"omerta-guest-ready", "guest printed its ready marker (console)")):  # fmt: skip
                if marker in text:
                    self._mark(name)


def rent_once(cluster: Cluster, phases: dict[str, list[float]], steps: dict[str, list[float]],
              trace: dict[str, float] | None = None) -> tuple[float, float] | None:  # fmt: skip
    since = time.time()
    rental = cluster["consumer"].call("rental.request", REQUEST)["rental"]
    try:
        wait_for("ready", lambda: ready(cluster, rental), 600, every=READY_POLL_S)
    except RentalFailedError as exc:
        print(f"rental failed: {exc}", file=sys.stderr, flush=True)
        if shown(cluster, rental)["outcome"] is None:
            cluster["consumer"].call("rental.release", {"rental": rental})
        wait_for("the failed rental to settle", lambda: bool(shown(cluster, rental)["settlement"]), 300)
        return None
    state = shown(cluster, rental)
    to_ready = state["started"] + next(e["t"] for e in state["events"] if e["step"] == "ssh") - since
    paid_before = provider_balance(cluster)
    started = time.monotonic()
    cluster["consumer"].call("rental.release", {"rental": rental})

    def settled() -> bool:
        state = shown(cluster, rental)
        return (
            bool(state["settlement"].get("settled"))
            and cluster["provider"].call("vm.list") == []
            and (state["settlement"]["provider_payment"] == 0 or provider_balance(cluster) > paid_before)
        )

    wait_for("settled on both chains", settled, 300, every=0.05)
    to_settled = time.monotonic() - started
    times = timeline(cluster, rental, since)
    if trace is not None:
        trace.update(times)
    for name, start, end in PHASES:
        if start in times and end in times:
            phases.setdefault(name, []).append(times[end] - times[start])
    for step, at in times.items():
        steps.setdefault(step, []).append(at)
    return to_ready, to_settled


def traced_rental(cluster: Cluster) -> dict[str, float]:
    """One more rental with its frames traced: every step's time since the request."""
    since = time.time()
    trace: dict[str, float] = {}
    with FrameTrace(cluster) as frames:
        done = rent_once(cluster, {}, {}, trace)
    if done is None:
        return {}
    return {**trace, **{name: at - since for name, at in frames.marks.items()}}


def boot_seconds(cluster: Cluster) -> dict[str, list[float]]:
    """The hypervisor's own boot time (domain started -> console ready) of every VM so far: ``local`` (the
    provider's own, no SSH key) and ``rented`` (the consumer's key: the guest makes its host key too)."""
    consumers: dict[str, str] = {}
    boots: dict[str, list[float]] = {"local": [], "rented": []}
    lifecycle = cluster["provider"].state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    for event in map(json.loads, lifecycle.read_text().splitlines()):
        if event["step"] == "request":
            consumers[event["vm_id"]] = event["consumer"]
        elif event["step"] == "ready" and "boot_s" in event:
            own = consumers.get(event["vm_id"]) == cluster.ids["provider"]
            boots["local" if own else "rented"].append(float(event["boot_s"]))
    return boots


def local_boot(cluster: Cluster) -> float:
    started = time.monotonic()
    vm = cluster["provider"].call("vm.create", {"image": "omk-test", "memory_mib": CONCURRENT_MEMORY_MIB,
                                                "disk_gib": 1, "lease_seconds": 600}, timeout=600)  # fmt: skip
    took = time.monotonic() - started
    cluster["provider"].call("vm.destroy", {"vm_id": vm["vm_id"]}, timeout=120)
    return took


def concurrent(cluster: Cluster) -> tuple[int, int]:
    wanted = PROVIDER_MEMORY_MIB // CONCURRENT_MEMORY_MIB
    rentals = [cluster["consumer"].call("rental.request", REQUEST)["rental"] for _ in range(wanted)]

    def all_done() -> bool:
        states = [shown(cluster, r) for r in rentals]
        return all(s["outcome"] is not None or any(e["step"] == "ready" for e in s["events"]) for s in states)

    wait_for("the concurrent rentals", all_done, 900)
    ok = sum(1 for r in rentals if shown(cluster, r)["outcome"] is None)
    for rental in rentals:
        if (failed := shown(cluster, rental)["outcome"]) is not None:
            print(f"concurrent rental {rental[:12]} failed: {failed}", file=sys.stderr, flush=True)
    for rental in rentals:
        if shown(cluster, rental)["outcome"] is None:
            cluster["consumer"].call("rental.release", {"rental": rental})
    locked = [r for r in rentals if shown(cluster, r)["session"]]
    wait_for("every concurrent rental settled", lambda: all(shown(cluster, r)["settlement"] for r in locked), 600)
    return ok, wanted


def main() -> int:
    if os.geteuid() != 0:
        print("rental benchmark: needs root (libvirt, namespaces)", file=sys.stderr)
        return 1
    cache = Path(os.environ.get("OMERTA_KVM_BENCH_CACHE", "/tmp/omk-bench-cache"))
    images = build_test_guest(cache).parent
    settings = {"memory_mib": PROVIDER_MEMORY_MIB, "max_total": 8, "max_per_consumer": 8, "vcpus": 8}
    took: dict[str, float] = {}
    phases: dict[str, list[float]] = {}
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="omerta-rental-bench-") as tmp:
        mark = time.monotonic()
        cluster = Cluster(Path(tmp), images, provider=settings, vpn=True)
        try:
            cluster.start_all()
            cluster.fund(wait_mature=False)  # the identities mature during the first local boot
            wait_for("the offer", lambda: cluster["consumer"].call("rental.offers", {}), 60)
            took["seven nodes started and funded"], mark = time.monotonic() - mark, time.monotonic()
            local: list[float] = []
            attempts = []
            for run in range(RUNS):  # interleaved, so the shared host's load weighs on both alike
                local.append(local_boot(cluster))
                cluster.wait_mature()
                attempts.append(rent_once(cluster, phases, steps))
                done = attempts[-1]
                rented = f"rental SSH-ready {done[0]:.1f} s, settled {done[1]:.1f} s" if done else "rental failed"
                print(f"[{run + 1}/{RUNS}] local ready {local[-1]:.1f} s, {rented}", file=sys.stderr, flush=True)
            took[f"{RUNS} local boots and {RUNS} rentals"], mark = time.monotonic() - mark, time.monotonic()
            traced: dict[str, float] = {}
            if (elapsed := sum(took.values())) < TRACE_BUDGET_S:
                print(f"[{RUNS}/{RUNS}] one more rental, its frames traced", file=sys.stderr, flush=True)
                traced = traced_rental(cluster)
            else:
                print(f"[{RUNS}/{RUNS}] no traced rental: {elapsed:.0f} s so far (a loaded host)", file=sys.stderr,
                      flush=True)  # fmt: skip
            took["the traced rental"], mark = time.monotonic() - mark, time.monotonic()
            boots = boot_seconds(cluster)
            print(f"[{RUNS}/{RUNS}] now renting concurrently", file=sys.stderr, flush=True)
            ok, wanted = concurrent(cluster)
            took["concurrent rentals"], mark = time.monotonic() - mark, time.monotonic()
        finally:
            cluster.stop()
            took["stopping the nodes"] = time.monotonic() - mark
    rentals = [a for a in attempts if a is not None]
    if not rentals:
        print("rental benchmark: every rental failed", file=sys.stderr)
        return 1
    ready_s = [r for r, _ in rentals]
    release_s = [s for _, s in rentals]
    print(
        f"local vm.create -> console ready: p50 {statistics.median(local):.2f} s, p95 {percentile(local, 0.95):.2f} s"
    )
    print(f"rental request -> SSH-ready: p50 {statistics.median(ready_s):.2f} s, p95 {percentile(ready_s, 0.95):.2f} s")
    print(f"release -> gone and settled on both chains: p50 {statistics.median(release_s):.2f} s")
    print(f"sequential rentals: {len(rentals)} of {RUNS} reached SSH-ready")
    print(f"concurrent rentals ready on one provider: {ok} of {wanted} (its memory allows {wanted})")
    print(f"escrow per rental: {PRICE} units locked, settled pro rata")
    print("a rental's timeline, p50 over the rentals of each step's time since the request:")
    for step, samples in sorted(steps.items(), key=lambda item: statistics.median(item[1])):
        if len(samples) * 2 > len(rentals):  # steps of most rentals (not a failure's or a straggler's)
            print(f"  {statistics.median(samples):7.2f} s  {step}")
    print("where a rental's time goes (p50 over the rentals):")
    for name, _start, _end in PHASES:
        if name in phases:
            print(f"  {name}: {statistics.median(phases[name]):.2f} s")
    print(f"  (local vm.create -> console ready, the baseline: {statistics.median(local):.2f} s)")
    if boots["local"] and boots["rented"]:
        own, rented = statistics.median(boots["local"]), statistics.median(boots["rented"])
        print(
            f"  (the hypervisor's boot, domain started -> console ready, p50: local {own:.2f} s, rented {rented:.2f} s)"
        )
    print("timeline of one traced rental (not counted above), seconds since the request:")
    for step, at in sorted(traced.items(), key=lambda item: item[1]):
        print(f"  {at:7.2f} s  {step}")
    print("benchmark time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items()))
    print(f"rental_ready_p50_s: {statistics.median(ready_s):.2f}")
    print(f"rental_ready_vs_local_ratio: {statistics.median(ready_s) / statistics.median(local):.2f}")
    print(f"rental_release_settled_p95_s: {percentile(release_s, 0.95):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
