"""The asyncio adapter of the rental protocol: runs both cores of one node against real services.

It carries messages on the transport channel ``rental``, sleeps until the cores' next deadline,
and performs their actions through core interfaces only: the ledger's typed escrow API
(lock, top up, VM session, attest, settle), the hypervisor (create, destroy, list), discovery
(offers in the signed peer record) and the VPN seam (:mod:`.vpn`). Once a rented VM is attached to the
VPN it logs in over SSH (:mod:`.ssh`) until the guest answers, the ``ssh`` step. Every step is logged
with the rental and the peer bound, and kept per rental for ``omerta vm show``. Touches the transport,
the consumer's SSH key and pinned host keys, the journals (:mod:`.journal`: the consumer's open rentals, the
provider's pending claims), runs ``ssh``, and through the interfaces the ledger, the hypervisor and discovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from omerta_core.errors import OmertaError
from omerta_core.interfaces.common import PeerId, Service
from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.hypervisor import Hypervisor, VmInfo, VmRequest, VmState
from omerta_core.interfaces.ledger import INSUFFICIENT_FUNDS, Ledger
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext
from omerta_rental import admission, billing, messages, ssh
from omerta_rental.core import (
    Action,
    Admit,
    AttachVpn,
    CheckTopUp,
    ClaimEscrow,
    ConfirmLock,
    ConsumerCore,
    ConsumerState,
    CreateVm,
    DeleteVm,
    DetachVpn,
    Finished,
    LockEscrow,
    ProviderCore,
    ReachVm,
    Report,
    Send,
    Settle,
    StartVmSession,
    TopUpEscrow,
)
from omerta_rental.journal import WRITE_EVERY_S, ClaimEntry, ClaimJournal, Entry, Journal, JournalError
from omerta_rental.offers import CAPABILITY, Offer, OfferError, SeenOffer, Want, matching, remaining
from omerta_rental.settings import Settings
from omerta_rental.vpn import Attachment, VpnSeam

#: Seconds between "booting" progress messages while the provider waits for the guest.
PROGRESS_EVERY_S = 3.0
#: Finished rentals kept for ``vm list``/``vm show``.
HISTORY = 64


class RentalError(OmertaError):
    """A rental command that cannot be carried out (one line for the CLI)."""


@dataclass
class RentalRecord:
    """What ``omerta vm show`` prints about one rental, on either side."""

    rental: str
    role: str
    peer: str
    image: str
    started: float
    events: list[tuple[float, str, str]] = field(default_factory=list)
    outcome: str | None = None
    vm_id: str = ""
    address: str = ""
    session: str = ""
    host_key: str = ""
    settlement: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rental": self.rental,
            "role": self.role,
            "peer": self.peer,
            "image": self.image,
            "vm_id": self.vm_id,
            "address": self.address,
            "session": self.session,
            "host_key": self.host_key,
            "state": self.events[-1][1] if self.events else "new",
            "outcome": self.outcome,
            "settlement": self.settlement,
            "started": self.started,
            "events": [{"t": round(t - self.started, 3), "step": s, "text": x} for t, s, x in self.events],
        }


@runtime_checkable
class Rentals(Service, Protocol):
    """The rental service kind (this plugin's own): what the ``rental.*`` control methods drive."""

    def offers(self, want: Want) -> list[SeenOffer]:
        """Offers seen in discovery that fit ``want``, cheapest first."""

    def request(self, want: Want, disk_gib: int, lease_s: int, activity: str, ssh_public_key: str,
                provider: str | None) -> str:  # fmt: skip
        """Start renting; return the rental id."""


class RentalService:
    """One node's rental protocol: its provider side (with a hypervisor) and its consumer side."""

    def __init__(self, node: NodeContext, settings: Settings, vpn: VpnSeam) -> None:
        self.node = node
        self.settings = settings
        self.vpn = vpn
        self.log = node.log.bind(component="rental")
        self.provider = ProviderCore(settings.timing)
        self.consumer = ConsumerCore(settings.timing)
        self.records: dict[str, RentalRecord] = {}
        self.transport = node.service(Transport)
        self.ledger = node.service(Ledger)
        self.discovery = node.find(Discovery)
        self.hypervisor = node.find(Hypervisor)
        self.state_dir = node.plugin_state_dir("rental")
        self.journal = Journal(self.state_dir)
        #: Provider: its pending claims, so a restart between a lease's end and its claim still claims it.
        self.claim_journal = ClaimJournal(self.state_dir)
        self.admission_hook: Callable[[admission.Candidate], list[str | None]] | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Consumer: each rental's gateway, being built or built (None: it could not be built).
        self._gateways: dict[str, asyncio.Task[Attachment | None]] = {}
        self._timer: asyncio.Task[None] | None = None
        #: Provider: each admitted lease's VM, made while the consumer locks and held until the lock is confirmed.
        self._held: dict[str, tuple[asyncio.Future[bool], asyncio.Task[VmInfo]]] = {}
        self.dropped = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.transport.on_message(messages.CHANNEL, self._on_message)
        self._timer = asyncio.create_task(self._timer_loop())
        self.publish_offer()
        self._resume()

    def _resume(self) -> None:
        """Rentals whose escrow was open when this node last stopped (a crash) end and settle now, and the claims
        it was to make are made when due."""
        self._resume_claims()
        try:
            entries = self.journal.load()
        except JournalError as exc:
            self.log.error("rental journal damaged", reason=str(exc))
            return
        for rental, entry in entries.items():
            request = entry.as_request()
            heard = entry.last_heard_wall or entry.ready_wall or 0.0
            billable = billing.billable_ms(entry.ready_wall, heard, entry.paid_ms)
            self.records[rental] = RentalRecord(rental, "consumer", entry.provider, request.image, time.time(),
                                                session=entry.session)  # fmt: skip
            self._run(self.consumer.resume(PeerId(entry.provider), request, entry.session, entry.price_per_hour,
                                           billable, self._now()))  # fmt: skip

    def _resume_claims(self) -> None:
        """Provider: the claims pending when this node last stopped, each made at its wall-clock time (at once if
        that passed). One already paid (by a previous claim, or the consumer's settlement) is found paid in the
        ledger without asking a witness, and leaves the journal."""
        try:
            entries = self.claim_journal.load()
        except JournalError as exc:
            self.log.error("rental claim journal damaged", reason=str(exc))
            return
        wall, now = time.time(), self._now()
        for rental, entry in entries.items():
            wait = max(0.0, entry.due_wall - wall)
            self.records[rental] = RentalRecord(rental, "provider", entry.consumer, entry.image, wall,
                                                outcome=entry.outcome or None, session=entry.session)  # fmt: skip
            self.provider.resume_claim(rental, entry.session, now + wait, entry.attempts)
            self.log.info("pending claim resumed", rental=rental[:12], session=entry.session[:12],
                          peer=entry.consumer[:12], due_in_s=round(wait, 1), attempts=entry.attempts)  # fmt: skip
        self._wake.set()

    def _journal_claim(self, rental: str) -> None:
        """Provider: keep ``rental``'s pending claim on disk as the core holds it now, or drop it once it is done."""
        claim = self.provider.claims.get(rental)
        wall = time.time()
        if claim is None:
            self.claim_journal.drop(rental, wall)
            return
        record = self.records.get(rental)
        due_wall = wall + max(0.0, claim.due - self._now())
        entry = ClaimEntry(claim.session, record.peer if record else "", due_wall, claim.attempts,
                           record.image if record else "", (record.outcome or "") if record else "")  # fmt: skip
        self.claim_journal.put(rental, entry, wall)

    async def stop(self) -> None:
        timer = [self._timer] if self._timer else []
        held = [making for _, making in self._held.values()]
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._gateways.values(), *held, *timer]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._gateways.clear()
        self._held.clear()
        self._timer = None

    def status(self) -> dict[str, Any]:
        offer = self.offer()
        return {
            "providing": len(self.provider.leases),
            "renting": len(self.consumer.rentals),
            "offer": offer.encode() if offer else None,
            "dropped": self.dropped,
        }

    # -- offers ----------------------------------------------------------------------------

    def offer(self, excluding: str | None = None) -> Offer | None:
        """This node's offer with its free capacity now (not counting lease ``excluding``, the one being
        admitted); ``None`` without a hypervisor or images."""
        s = self.settings
        if self.hypervisor is None or not s.images:
            return None
        full = Offer(s.vcpus, s.memory_mib, s.disk_gib, s.images, s.price_per_hour, s.max_lease_h, s.region,
                     s.vcpus, s.memory_mib)  # fmt: skip
        used = [(lease.request.vcpus, lease.request.memory_mib) for lease in self.provider.leases.values()
                if lease.rental != excluding]  # fmt: skip
        return remaining(full, used)

    def publish_offer(self) -> None:
        offer = self.offer()
        if self.discovery is not None and offer is not None:
            self.discovery.publish(CAPABILITY, offer.encode())

    def offers(self, want: Want) -> list[SeenOffer]:
        if self.discovery is None:
            raise RentalError("finding offers needs a discovery plugin (e.g. --plugins udp,gossip,omt,rental)")
        return matching(self._seen().values(), want)

    def _seen(self) -> dict[str, SeenOffer]:
        """Every live peer's offer that discovery holds, by peer."""
        seen: dict[str, SeenOffer] = {}
        for info in self.discovery.peers() if self.discovery is not None else []:
            raw = info.capabilities.get(CAPABILITY)
            if raw is None or info.liveness.value == "dead":
                continue
            try:
                seen[str(info.peer)] = SeenOffer(info.peer, Offer.decode(raw))
            except OfferError:
                self.dropped += 1
        return seen

    # -- consumer commands -------------------------------------------------------------------

    def request(self, want: Want, disk_gib: int, lease_s: int, activity: str, ssh_public_key: str,
                provider: str | None) -> str:  # fmt: skip
        """Start a rental; return its id at once (``rental.show`` follows it)."""
        if provider is None:
            found = self.offers(want)
            if not found:
                raise RentalError("no offer matches (see `omerta offers`; widen --cpu/--mem/--image/--max-price)")
            chosen, offer = found[0].provider, found[0].offer
        else:
            chosen = PeerId(provider)
            seen = self._seen().get(provider)
            offer = seen.offer if seen is not None else None
        max_price = want.max_price if want.max_price is not None else 2**40
        if offer is not None:
            self._affordable(offer, replace(want, lease_s=lease_s, max_price=max_price))
        ssh_public_key = ssh_public_key or ssh.public_key(self.state_dir)
        rental = secrets.token_hex(16)
        request = messages.Request(rental, want.vcpus or 1, want.memory_mib or 128, disk_gib, want.image or "",
                                   lease_s, activity, ssh_public_key, max_price)  # fmt: skip
        self.records[rental] = RentalRecord(rental, "consumer", str(chosen), request.image, time.time())
        self._run(self.consumer.request(chosen, request, self._now()))
        return rental

    def _affordable(self, offer: Offer, want: Want) -> None:
        """Refuse, before the provider hears of it (and makes a VM for it), a request whose lock would fail.

        A request the offer does not fit otherwise goes on: the provider refuses it at admission, with its own
        reason, before making anything."""
        if replace(want, max_price=None).why_not(offer) is not None:
            return
        if want.max_price is not None and offer.price_per_hour > want.max_price:
            raise RentalError(f"this provider asks {offer.price_per_hour}/h, above your maximum {want.max_price}/h "
                              "(see `omerta offers`; raise --max-price or pick another --provider)")  # fmt: skip
        amount = billing.escrow_for(want.lease_s or 0, offer.price_per_hour)
        available = self.ledger.balance(self.node.peer_id)
        if amount > available:
            raise RentalError(f"not enough funds: this node holds {available} available, less than the {amount} "
                              f"this lease locks at {offer.price_per_hour}/h "
                              "(see `omerta ledger balance`; ask for fewer --hours)")  # fmt: skip

    def release(self, rental: str) -> None:
        self._known(rental)
        self._run(self.consumer.release(rental, self._now()))

    def top_up(self, rental: str, seconds: int) -> None:
        self._known(rental)
        self._run(self.consumer.top_up(rental, seconds, self._now()))

    def preempt(self, rental: str) -> None:
        if rental not in self.provider.leases:
            raise RentalError(f"no lease {rental[:12]} is held here")
        self._run(self.provider.preempt(rental, self._now()))

    def _known(self, rental: str) -> None:
        if rental not in self.consumer.rentals:
            raise RentalError(f"no running rental {rental[:12]} here (see `omerta vm list`)")

    def resolve(self, prefix: str) -> RentalRecord:
        """A rental by id, id prefix or VM id."""
        found = [r for r in self.records.values() if r.rental.startswith(prefix) or (r.vm_id and r.vm_id == prefix)]
        if len(found) != 1:
            raise RentalError(f"{'no' if not found else 'more than one'} rental matches {prefix!r}")
        return found[0]

    # -- the cores' I/O ---------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic()

    async def _on_message(self, peer: PeerId, data: bytes) -> None:
        try:
            message = messages.decode(data)
        except messages.MessageError as exc:
            self.dropped += 1
            self.log.info("rental message dropped", peer=peer[:12], reason=str(exc))
            return
        now = self._now()
        if isinstance(message, (messages.Request, messages.Locked, messages.ToppedUp, messages.Release)):
            self._run(self.provider.receive(peer, message, now))
        elif isinstance(message, messages.Heartbeat):
            self._run(self.provider.receive(peer, message, now) + self.consumer.receive(peer, message, now))
        else:
            self._run(self.consumer.receive(peer, message, now))

    async def _timer_loop(self) -> None:
        while True:
            deadlines = [d for d in (self.provider.next_deadline(), self.consumer.next_deadline()) if d is not None]
            wait = max(0.0, min(deadlines) - self._now()) if deadlines else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            now = self._now()
            self._run(self.provider.tick(now) + self.consumer.tick(now))
            self._journal_heartbeats(now)

    def _journal_heartbeats(self, now: float) -> None:
        wall = time.time()
        if wall - self.journal.written_at < WRITE_EVERY_S:
            return
        changed = False
        for rental in self.consumer.rentals.values():
            entry = self.journal.entries.get(rental.rental)
            if entry is not None and rental.ready_at is not None:
                entry.last_heard_wall, entry.paid_ms = wall - (now - rental.last_heard), rental.paid_ms
                changed = True
        if changed:
            self.journal.save(wall)

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            self._perform(action)
        self._wake.set()

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                self.log.exception("rental action failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _perform(self, action: Action) -> None:
        if isinstance(action, Send):
            self._spawn(self.transport.send(action.peer, messages.CHANNEL, messages.encode(action.message)))
        elif isinstance(action, Report):
            self._report(action)
        elif isinstance(action, Admit):
            self._admit(action)
        elif isinstance(action, ConfirmLock):
            self._spawn(self._confirm_lock(action))
        elif isinstance(action, CreateVm):
            self._spawn(self._create_vm(action))
        elif isinstance(action, StartVmSession):
            self._spawn(self._start_vm_session(action))
        elif isinstance(action, DeleteVm):
            self._spawn(self._delete_vm(action))
        elif isinstance(action, LockEscrow):
            self._spawn(self._lock(action))
        elif isinstance(action, TopUpEscrow):
            self._spawn(self._top_up(action))
        elif isinstance(action, AttachVpn):
            self._gateways[action.rental] = asyncio.create_task(self._attach(action, self._gateways.get(action.rental)))
        elif isinstance(action, ReachVm):
            self._spawn(self._reach(action, self._gateways.get(action.rental)))
        elif isinstance(action, DetachVpn):
            self._spawn(self._detach(action.rental, self._gateways.pop(action.rental, None)))
        elif isinstance(action, Settle):
            self._spawn(self._settle(action))
        elif isinstance(action, CheckTopUp):
            self._spawn(self._check_topup(action))
        elif isinstance(action, ClaimEscrow):
            self._spawn(self._claim(action))
        elif isinstance(action, Finished):
            if (held := self._held.pop(action.rental, None)) is not None:  # never confirmed: delete it unstarted
                self._spawn(self._withdraw(*held))
            record = self.records.get(action.rental)
            if record is not None:
                record.outcome = action.outcome
            self.publish_offer()
            self._trim()

    def _report(self, report: Report) -> None:
        record = self.records.get(report.rental)
        if record is not None:
            record.events.append((time.time(), report.step, report.text))
            if report.step == "ready" and record.role == "consumer":
                rental = self.consumer.rentals.get(report.rental)
                entry = self.journal.entries.get(report.rental)
                if rental is not None:
                    record.vm_id, record.address = rental.vm_id, rental.address
                if rental is not None and entry is not None:
                    entry.ready_wall = entry.last_heard_wall = time.time()
                    entry.paid_ms = rental.paid_ms
                    self.journal.save(time.time())
        peer = record.peer[:12] if record else "?"
        self.log.info("rental step", rental=report.rental[:12], peer=peer, step=report.step, detail=report.text)

    def _trim(self) -> None:
        done = [r for r in self.records.values() if r.outcome is not None]
        for record in sorted(done, key=lambda r: r.started)[:-HISTORY]:
            self.records.pop(record.rental, None)

    # -- provider actions ----------------------------------------------------------------------

    def _admit(self, action: Admit) -> None:
        request, consumer = action.request, action.consumer
        self.records[action.rental] = RentalRecord(action.rental, "provider", str(consumer), request.image, time.time())
        # the VM's id, chosen now so that the consumer builds its gateway while the lock is confirmed and it boots
        vm_id = uuid.uuid4().hex
        self.log.info("rental requested", rental=action.rental[:12], peer=str(consumer), activity=request.activity,
                      image=request.image, vcpus=request.vcpus, memory_mib=request.memory_mib,
                      lease_s=request.lease_s)  # fmt: skip
        offer = self.offer(excluding=action.rental)
        if offer is None:
            self._run(self.provider.decided(action.rental, False, "refused: this node offers no VMs", 0, 0,
                                            self._now()))  # fmt: skip
            return
        networks = frozenset(
            info.network for info in (self.discovery.peers() if self.discovery else []) if info.peer == consumer
        )
        leases = [
            admission.Lease(lease.rental, str(lease.consumer), admission.tier_of(self.settings.policy,
                            str(lease.consumer), frozenset()), lease.request.vcpus, lease.request.memory_mib)
            for lease in self.provider.leases.values() if lease.rental != action.rental
        ]  # fmt: skip
        want = Want(request.vcpus, request.memory_mib, request.image, None, request.lease_s)
        candidate = admission.Candidate(consumer, want, request.activity, networks, self.ledger.trust(consumer),
                                        self._local_hour(), tuple(leases))  # fmt: skip
        decision = admission.admit(self.settings.policy, offer, candidate)
        reason = decision.reason
        if decision.admitted and self.admission_hook is not None:
            reason = next((r for r in self.admission_hook(candidate) if r), "")
        if decision.admitted and request.disk_gib > offer.disk_gib:
            reason = f"refused: this provider offers at most {offer.disk_gib} GiB of disk"
        admitted = decision.admitted and not reason
        if admitted:
            for rental in decision.preempt:
                self._run(self.provider.preempt(rental, self._now()))
        max_lease_ms = self.settings.max_lease_h * billing.MS_PER_HOUR
        self._run(self.provider.decided(action.rental, admitted, reason, offer.price_per_hour, max_lease_ms,
                                        self._now(), vm_id))  # fmt: skip
        if admitted and self.hypervisor is not None:
            self._hold(action.rental, consumer, request, vm_id)
        self.publish_offer()

    def _vm_request(self, consumer: PeerId, request: messages.Request, vm_id: str) -> VmRequest:
        return VmRequest(
            consumer=consumer,
            image=request.image,
            vcpus=request.vcpus,
            memory_mib=request.memory_mib,
            disk_gib=request.disk_gib,
            lease_seconds=self.settings.max_lease_h * 3600,
            ssh_public_key=request.ssh_public_key or None,
            vm_id=vm_id or None,
        )

    def _hold(self, rental: str, consumer: PeerId, request: messages.Request, vm_id: str) -> None:
        """Make the admitted lease's VM while the consumer locks its escrow (disk, NIC, QEMU: most of a create),
        held before its first instruction: it boots only at ``CreateVm``, once the lock's witnesses confirmed the
        lock; any other end of the lease (``Finished`` first) deletes it unstarted."""
        assert self.hypervisor is not None
        gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def go() -> bool:
            return await gate

        making = asyncio.create_task(self.hypervisor.create(self._vm_request(consumer, request, vm_id), go))
        self._held[rental] = (gate, making)

    async def _withdraw(self, gate: asyncio.Future[bool], making: asyncio.Task[VmInfo]) -> None:
        if not gate.done():
            gate.set_result(False)
        with contextlib.suppress(Exception):  # the hypervisor deleted what it had made and says so
            await making

    def _local_hour(self) -> int:
        """The hour on the provider's clock (``timezone``, else the host's local time), for quiet hours."""
        return datetime.datetime.now(self.settings.timezone).hour

    async def _confirm_lock(self, action: ConfirmLock) -> None:
        # spec 00's service phase: normally reached before the consumer's ``locked`` arrives
        confirmed = await self.ledger.confirm_escrow(action.session, timeout=self.settings.timing.confirm_timeout_s)
        if not confirmed.confirmed:
            self.log.warning("escrow not confirmed; no VM", rental=action.rental[:12], session=action.session[:12],
                             reason=confirmed.failure_reason)  # fmt: skip
        self._run(self.provider.lock_confirmed(action.rental, confirmed.confirmed, confirmed.consumer,
                                               confirmed.amount, confirmed.hourly_rate, self._now()))  # fmt: skip

    async def _create_vm(self, action: CreateVm) -> None:
        assert self.hypervisor is not None
        record = self.records.get(action.rental)
        if record is not None:
            record.session = action.session
        held = self._held.pop(action.rental, None)
        # The consumer's chain, which the witnesses' VM session needs at ready, is fetched while the VM boots.
        syncing = asyncio.create_task(self._sync_consumer(action.consumer))
        progress = asyncio.create_task(self._booting(action))
        try:
            if held is not None:  # made while the consumer locked: boot it now
                gate, making = held
                gate.set_result(True)
                info = await making
            else:
                info = await self.hypervisor.create(self._vm_request(action.consumer, action.request, action.vm_id))
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._run(self.provider.vm_failed(action.rental, reason, self._now()))
            return
        finally:
            progress.cancel()
            await syncing
        if record is not None:
            record.vm_id = info.vm_id
            record.address = self.vpn.guest_address
        self._run(self.provider.vm_created(action.rental, info.vm_id, self.vpn.guest_address, self._now(),
                                           info.ssh_host_key or ""))  # fmt: skip

    async def _sync_consumer(self, consumer: PeerId) -> None:
        try:
            await asyncio.wait_for(self.ledger.sync([consumer]), self.settings.sync_timeout_s)
        except Exception as exc:  # best effort: the payment is claimed at a later sync
            self.log.info(
                "syncing the consumer's chain failed", peer=consumer[:12], reason=str(exc) or type(exc).__name__
            )

    async def _booting(self, action: CreateVm) -> None:
        started = self._now()
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            text = f"booting the VM, {self._now() - started:.0f} s"
            await self.transport.send(action.consumer, messages.CHANNEL,
                                      messages.encode(messages.Progress(action.rental, "booting", text)))  # fmt: skip

    def _vm_runs(self, vm_id: str) -> bool:
        if self.hypervisor is None:
            return False
        return any(info.vm_id == vm_id and info.state is VmState.READY for info in self.hypervisor.list())

    async def _start_vm_session(self, action: StartVmSession) -> None:
        lease = self.provider.leases.get(action.rental)
        vm_id = lease.vm_id if lease else ""
        result = await self.ledger.start_vm_session(action.session, lambda: self._vm_runs(vm_id))
        self.log.info("witnesses checked the VM", rental=action.rental[:12], verified=result.verified,
                      state=result.state)  # fmt: skip

    async def _delete_vm(self, action: DeleteVm) -> None:
        assert self.hypervisor is not None
        # the session ends for the witnesses now, so the attested duration does not include the deletion
        attesting = asyncio.create_task(self.ledger.attest_vm_session(action.session, unbilled_ms=action.unbilled_ms))
        try:
            await self.hypervisor.destroy(action.vm_id)
        except Exception as exc:
            self.log.warning("VM deletion failed; the reconciler retries", vm=action.vm_id, reason=str(exc))
        attested = await attesting
        self.log.info("VM session attested", rental=action.rental[:12], attested=attested.attested,
                      duration_ms=attested.duration_ms, reason=attested.reason)  # fmt: skip
        self._run(self.provider.vm_deleted(action.rental, attested.duration_ms, self._now()))
        self._journal_claim(action.rental)

    async def _check_topup(self, action: CheckTopUp) -> None:
        """Read the lock's total from the consumer's chain before extending the lease (never its word alone)."""
        try:
            total = await self.ledger.escrow_total(action.session, action.consumer)
        except Exception as exc:  # the ledger could not fetch the chain: the lease stays as it is
            self.log.info("reading the topped-up lock failed", rental=action.rental[:12], reason=str(exc))
            total = None
        self._run(self.provider.topup_checked(action.rental, total, self._now()))

    async def _claim(self, action: ClaimEscrow) -> None:
        """Claim the payment of a session whose consumer never settled (spec 02's provider path)."""
        result = await self.ledger.claim_escrow(action.session)
        self.log.info("escrow claim", rental=action.rental[:12], session=action.session[:12], settled=result.settled,
                      reason=result.failure_reason, provider_payment=result.provider_payment)  # fmt: skip
        record = self.records.get(action.rental)
        if record is not None and result.settled:
            record.settlement = {
                "settled": True,
                "claimed": True,
                "duration_ms": result.duration_ms,
                "provider_payment": result.provider_payment,
                "burn": result.burn,
                "refund": result.refund,
            }
        text = (
            f"{result.duration_ms} ms: provider {result.provider_payment}, burned {result.burn}, refund {result.refund}"
            if result.settled
            else str(result.failure_reason)
        )
        self._run(self.provider.claim_done(action.rental, result.settled, text, self._now()))
        self._journal_claim(action.rental)

    # -- consumer actions ----------------------------------------------------------------------

    async def _lock(self, action: LockEscrow) -> None:
        result = await self.ledger.lock_escrow(action.provider, action.amount, hourly_rate=action.price_per_hour)
        reason = result.failure_reason
        if result.failure_code == INSUFFICIENT_FUNDS:  # refused by the ledger before any witness was asked
            reason = f"{reason} (see `omerta ledger balance`; ask for fewer --hours)"
        record = self.records.get(action.rental)
        if record is not None:
            record.session = result.session if result.locked else ""
        rental = self.consumer.rentals.get(action.rental)
        if result.locked and rental is not None:
            entry = Entry(str(action.provider), result.session, rental.price_per_hour, asdict(rental.request))
            self.journal.put(action.rental, entry, time.time())
        self._run(self.consumer.lock_done(action.rental, result.locked, result.session, reason, self._now()))

    async def _top_up(self, action: TopUpEscrow) -> None:
        result = await self.ledger.top_up_escrow(action.session, action.amount)
        self._run(self.consumer.topup_done(action.rental, result.topped_up, result.total, result.failure_reason,
                                           self._now()))  # fmt: skip

    async def _attach(self, action: AttachVpn, previous: asyncio.Task[Attachment | None] | None) -> Attachment | None:
        """Build the rental's gateway for ``action.vm_id`` (after removing one ``previous`` built for another)."""
        if previous is not None:
            old = await previous
            if old is not None and old.vm_id == action.vm_id:
                return old
            if old is not None:
                await self.vpn.detach(action.rental)
        try:
            attachment = await self.vpn.attach(action.rental, action.provider, action.vm_id, self.vpn.guest_address)
        except OmertaError as exc:
            self._report(Report(action.rental, "vpn failed", str(exc)))
            return None
        except Exception as exc:
            self.log.exception("building the VM's gateway failed", rental=action.rental[:12])
            self._report(Report(action.rental, "vpn failed", str(exc) or type(exc).__name__))
            return None
        if self.vpn.available:
            self._report(Report(action.rental, "vpn", f"gateway for VM {action.vm_id[:12]} up: the VM is reachable "
                                                      f"at {attachment.address} through this node's VPN"))  # fmt: skip
        return attachment

    async def _reach(self, action: ReachVm, gateway: asyncio.Task[Attachment | None] | None) -> None:
        """The VM is ready: once its gateway is up, pin its host key and log in until SSH answers."""
        attachment = await gateway if gateway is not None else None
        if attachment is None:  # "vpn failed" was reported
            return
        record = self.records.get(action.rental)
        if record is not None:
            record.address, record.host_key = attachment.address, action.host_key
        ssh.pin(self.state_dir, action.rental, attachment.address, action.host_key)
        if self.vpn.available:
            await self._wait_for_ssh(action.rental, attachment, bool(action.host_key))

    async def _detach(self, rental: str, gateway: asyncio.Task[Attachment | None] | None) -> None:
        """Remove the rental's gateway, once it is built if it is being built, and its pinned host key."""
        ssh.unpin(self.state_dir, rental)
        if gateway is not None:
            await gateway
        await self.vpn.detach(rental)

    async def _wait_for_ssh(self, rental: str, attachment: Attachment, pinned: bool) -> None:
        """Log in to the guest with this node's key until it answers: the rental's ``ssh`` step."""
        current = self.consumer.rentals.get(rental)
        if current is None or current.request.ssh_public_key != ssh.public_key(self.state_dir):
            self._report(Report(rental, "ssh skipped", "the request carried another SSH key; not probing"))
            return
        argv = ssh.ssh_argv(attachment.enter, ssh.key_path(self.state_dir), ssh.known_hosts(self.state_dir, rental),
                            attachment.address, pinned, batch=True)  # fmt: skip
        started = self._now()

        def wanted() -> bool:
            current = self.consumer.rentals.get(rental)
            return current is not None and current.state is ConsumerState.READY

        works, why = await ssh.first_answer(argv, self.settings.timing.ready_timeout_s, wanted)
        if works:
            trust = "host key pinned from the provider" if pinned else "host key learned on first use"
            self._report(Report(rental, "ssh", f"SSH answers at {attachment.address} after "
                                               f"{self._now() - started:.1f} s ({trust})"))  # fmt: skip
        elif wanted():
            self._report(Report(rental, "ssh failed", f"SSH did not answer: {why}"))

    async def _settle(self, action: Settle) -> None:
        result = await self.ledger.settle_escrow(action.session, action.billable_ms, action.price_per_hour)
        record = self.records.get(action.rental)
        if record is not None:
            record.settlement = {
                "settled": result.settled,
                "duration_ms": result.duration_ms,
                "provider_payment": result.provider_payment,
                "burn": result.burn,
                "refund": result.refund,
            }
        if result.settled:
            self.journal.drop(action.rental, time.time())
        text = (
            f"{result.duration_ms} ms: provider {result.provider_payment}, burned {result.burn}, refund {result.refund}"
            if result.settled
            else str(result.failure_reason)
        )
        self._run(self.consumer.settled(action.rental, result.settled, text, self._now(), result.failure_reason))
