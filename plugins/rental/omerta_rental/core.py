"""The rental protocol as two sans-IO state machines: :class:`ProviderCore` and :class:`ConsumerCore`.

Each takes messages, the results of the actions it asked for, and the current time, and returns
actions (send a message, lock escrow, create or delete a VM, attach the VPN, settle, report a step)
plus :meth:`next_deadline`. No I/O, no clock, no randomness inside: the asyncio adapter
(:mod:`.service`) and tests drive them.

One rental, consumer's view::

    REQUESTED ─admitted→ LOCKING ─locked→ WAITING_VM ─ready→ READY ─release/ended/lost→ SETTLING → DONE
        └─refused/timeout→ FAILED          └─refused/timeout→ SETTLING (billable 0: full refund)

Provider's view::

    ADMITTING ─decided→ ADMITTED ─locked→ CREATING ─vm_created→ READY ─release/expiry/lost/preempt→ ENDING → ENDED
                 └─refused→ gone   └─timeout→ gone   └─vm_failed→ ENDED (refused, billable 0)

In CREATING the provider first has the lock's witnesses confirm the escrow to it (``ConfirmLock`` →
:meth:`ProviderCore.lock_confirmed`): the consumer's own lock, for at least the admitted amount, used by no
other lease. Only then is the VM created (``CreateVm``; the adapter may have made it meanwhile, held before its
first instruction, and boots it now); otherwise the lease fails (billable 0, a full refund).

The provider names the VM's id in ``admitted`` (the adapter picks it and the hypervisor creates the VM under
it), so the consumer builds the VM's VPN gateway (``AttachVpn``) as soon as its lock holds, while the lock is
confirmed and the VM boots: the guest's first DHCP frame finds the gateway and its tunnel up. At ``ready`` the
consumer pins the guest's host key and logs in (``ReachVm``); a ``ready`` naming another VM id moves the
gateway to it.

The provider ends a lease by deleting the VM and having the witnesses attest its duration; only
then does it send ``ended`` with the billable time (:mod:`.billing`, the same rule in every path),
and the consumer settles the smaller of that and its own view of the rule. A consumer that never
settles (killed, never back) would leave its lock open: ``abandon_timeout_s`` after an attested end the
provider claims the payment itself (``ClaimEscrow``, spec 02's provider path, for the attested duration),
and asks again every ``claim_retry_s`` while the witnesses refuse (their own timeout not passed yet).
A session the consumer settled meanwhile is simply found paid.

A top-up reaches the provider as the consumer's ``topped_up``; the provider extends the lease only by
what the lock's total on the consumer's chain pays (``CheckTopUp``, then :meth:`ProviderCore.topup_checked`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from omerta_core.interfaces.common import PeerId
from omerta_rental import billing
from omerta_rental.messages import (
    Admitted,
    Ended,
    Extended,
    Heartbeat,
    Locked,
    Message,
    Progress,
    Ready,
    Refused,
    Release,
    Request,
    ToppedUp,
)


@dataclass(frozen=True)
class Timing:
    """Every timer of the protocol, in seconds."""

    #: Heartbeats both ways while the lease runs.
    heartbeat_s: float = 2.0
    #: Silence after which the other side is lost (several heartbeats, so one lost datagram is harmless).
    grace_s: float = 10.0
    #: Consumer: a request not answered (admitted or refused) within this is given up.
    answer_timeout_s: float = 20.0
    #: Provider: an admitted consumer that has not locked escrow within this is dropped (spec 00 takes ≤ 2 min).
    lock_timeout_s: float = 150.0
    #: Provider: the lock's witnesses must confirm it to this node within this of the consumer's ``locked``
    #: (normally they already have; a loaded host with several locks at once can lag by seconds).
    confirm_timeout_s: float = 60.0
    #: Consumer: after locking, the VM must be ready within this (TCG boots on a shared host are slow).
    ready_timeout_s: float = 420.0
    #: Consumer: after a release, the provider's ``ended`` must arrive within this; else settle alone.
    release_timeout_s: float = 120.0
    #: Provider: after an attested end with no settlement, claim the payment this long later (spec 02's provider
    #: path); a minute past the witnesses' default hour (``ledger_abandon_timeout_s``) for clock skew.
    abandon_timeout_s: float = 3660.0
    #: Provider: a refused or failed claim is asked again this much later, at most ``CLAIM_ATTEMPTS`` times.
    claim_retry_s: float = 60.0


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    peer: PeerId
    message: Message


@dataclass(frozen=True)
class Report:
    """A step worth telling the user (and the log)."""

    rental: str
    step: str
    text: str


@dataclass(frozen=True)
class Admit:
    """Provider: decide on this request (pure rules + hook) and call :meth:`ProviderCore.decided`."""

    rental: str
    consumer: PeerId
    request: Request


@dataclass(frozen=True)
class ConfirmLock:
    """Provider: have the lock's witnesses confirm escrow ``session`` to this node (spec 00); answer with
    lock_confirmed. No VM is created before."""

    rental: str
    session: str


@dataclass(frozen=True)
class CreateVm:
    """Provider: create the VM (the escrow session is ``session``) under ``vm_id`` (empty: the hypervisor's
    choice); answer with vm_created or vm_failed."""

    rental: str
    consumer: PeerId
    request: Request
    session: str
    vm_id: str = ""


@dataclass(frozen=True)
class StartVmSession:
    """Provider: announce the VM to the escrow's witnesses (spec 01)."""

    rental: str
    session: str


@dataclass(frozen=True)
class DeleteVm:
    """Provider: delete the VM, then attest the session's end (spec 01); answer with vm_deleted."""

    rental: str
    vm_id: str
    session: str
    #: The end of the session the witnesses do not attest: the consumer's silence before a lost lease.
    unbilled_ms: int = 0


@dataclass(frozen=True)
class LockEscrow:
    """Consumer: lock ``amount`` for ``provider`` at ``price_per_hour`` (spec 00, which signs the rate); answer
    with lock_done."""

    rental: str
    provider: PeerId
    amount: int
    price_per_hour: int


@dataclass(frozen=True)
class CheckTopUp:
    """Provider: read the total of lock ``session`` from ``consumer``'s chain; answer with topup_checked."""

    rental: str
    consumer: PeerId
    session: str


@dataclass(frozen=True)
class ClaimEscrow:
    """Provider: claim the payment of ``session``, which the consumer never settled (spec 02's provider path);
    answer with claim_done."""

    rental: str
    session: str


@dataclass(frozen=True)
class TopUpEscrow:
    rental: str
    session: str
    amount: int


@dataclass(frozen=True)
class AttachVpn:
    """Consumer: build this node's VPN gateway for VM ``vm_id`` (replacing one built for another id)."""

    rental: str
    provider: PeerId
    vm_id: str


@dataclass(frozen=True)
class ReachVm:
    """Consumer: the VM is ready; once its gateway is up, pin ``host_key`` and log in until SSH answers."""

    rental: str
    #: The guest's SSH host key from the provider's ``ready`` (empty: unknown), to pin.
    host_key: str = ""


@dataclass(frozen=True)
class DetachVpn:
    rental: str


@dataclass(frozen=True)
class Settle:
    """Consumer: settle the lock for ``billable_ms`` at ``price_per_hour`` (spec 02); answer with settled."""

    rental: str
    session: str
    billable_ms: int
    price_per_hour: int


@dataclass(frozen=True)
class Finished:
    """This rental is over in this core (forgotten after this action)."""

    rental: str
    outcome: str


Action = (
    Send | Report | Admit | ConfirmLock | CreateVm | StartVmSession | DeleteVm | LockEscrow | TopUpEscrow | AttachVpn
    | ReachVm | DetachVpn | Settle | Finished | CheckTopUp | ClaimEscrow
)  # fmt: skip


# -- provider -----------------------------------------------------------------------------------


class ProviderState(enum.Enum):
    ADMITTING = "admitting"
    ADMITTED = "admitted"
    CREATING = "creating"
    READY = "ready"
    ENDING = "ending"


@dataclass
class ProviderLease:
    rental: str
    consumer: PeerId
    request: Request
    state: ProviderState
    since: float
    price_per_hour: int = 0
    total: int = 0
    max_lease_ms: int = 0
    session: str = ""
    vm_id: str = ""
    ready_at: float | None = None
    paid_ms: int = 0
    last_heard: float = 0.0
    last_sent: float = 0.0
    end_reason: str = ""
    end_at: float = 0.0

    @property
    def expires_at(self) -> float | None:
        return None if self.ready_at is None else self.ready_at + self.paid_ms / 1000


#: The end of a lease whose other side fell silent for the grace.
LOST_HEARTBEATS = "lost heartbeats"
#: Ended leases a provider remembers, so a consumer that restarts after a crash learns what it owes.
ENDED_KEPT = 256
#: The settlement's failure when the witnesses attested another duration than the one asked for (spec 02).
DURATION_REFUSED = "duration_differs_from_attestation"
#: Times a provider asks for the claim of an abandoned session before it gives up (and says so).
CLAIM_ATTEMPTS = 10


@dataclass
class PendingClaim:
    """An ended lease whose payment the provider claims at ``due`` unless the consumer settled first."""

    rental: str
    session: str
    due: float
    attempts: int = 0
    asking: bool = False


class ProviderCore:
    """All leases of one provider."""

    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self.leases: dict[str, ProviderLease] = {}
        self.ended: dict[str, tuple[PeerId, Ended]] = {}
        self.claims: dict[str, PendingClaim] = {}

    def next_deadline(self) -> float | None:
        deadlines = [d for lease in self.leases.values() if (d := self._deadline(lease)) is not None]
        deadlines += [claim.due for claim in self.claims.values() if not claim.asking]
        return min(deadlines, default=None)

    def _deadline(self, lease: ProviderLease) -> float | None:
        t = self.timing
        if lease.state is ProviderState.ADMITTED:
            return lease.since + t.lock_timeout_s
        if lease.state is ProviderState.READY:
            expires = lease.expires_at
            assert expires is not None
            return min(lease.last_sent + t.heartbeat_s, lease.last_heard + t.grace_s, expires)
        if lease.state is ProviderState.ENDING and lease.ready_at is not None:
            return lease.last_sent + t.heartbeat_s  # the consumer waits for "ended" while the VM is deleted
        return None

    # -- events ---------------------------------------------------------------------------

    def receive(self, peer: PeerId, message: Message, now: float) -> list[Action]:
        lease = self.leases.get(message.rental)
        if isinstance(message, Request):
            if lease is not None:
                return []
            self.leases[message.rental] = ProviderLease(message.rental, peer, message, ProviderState.ADMITTING, now)
            return [Admit(message.rental, peer, message)]
        if lease is None and isinstance(message, Release) and message.rental in self.ended:
            consumer, ended = self.ended[message.rental]
            return [Send(peer, ended)] if consumer == peer else []  # a restarted consumer asks again
        if lease is None or lease.consumer != peer:
            return []
        if isinstance(message, Locked) and lease.state is ProviderState.ADMITTED:
            lease.state, lease.session, lease.since = ProviderState.CREATING, message.session, now
            return [ConfirmLock(lease.rental, message.session)]
        if isinstance(message, Heartbeat):
            lease.last_heard = max(lease.last_heard, now)
            return []
        if isinstance(message, ToppedUp) and lease.state is ProviderState.READY and message.total > lease.total:
            lease.last_heard = max(lease.last_heard, now)
            return [CheckTopUp(lease.rental, lease.consumer, lease.session)]
        if isinstance(message, Release):
            return self._end(lease, "released", now, now)
        return []

    def topup_checked(self, rental: str, total: int | None, now: float) -> list[Action]:
        """The lock's total as the consumer's chain shows it (``None``: not found): the lease grows by what it pays."""
        lease = self.leases.get(rental)
        if lease is None or lease.state is not ProviderState.READY:
            return []
        if total is None or total <= lease.total:
            shown = "no open lock" if total is None else f"a total of {total}"
            return [Report(rental, "top-up unconfirmed", f"the consumer's chain shows {shown}; lease unchanged")]
        lease.total = total
        lease.paid_ms = billing.paid_ms(lease.total, lease.price_per_hour, lease.max_lease_ms)
        return [
            Send(lease.consumer, Extended(lease.rental, lease.paid_ms)),
            Report(lease.rental, "extended", f"topped up to {lease.total}; lease {lease.paid_ms // 1000} s"),
        ]

    def resume_claim(self, rental: str, session: str, due: float, attempts: int) -> None:
        """A claim that was pending when this node last stopped (the provider's journal): made at ``due``, as the
        ``attempts``-th plus one, like one that never stopped."""
        self.claims.setdefault(rental, PendingClaim(rental, session, due, attempts))

    def claim_done(self, rental: str, settled: bool, text: str, now: float) -> list[Action]:
        """The end of a claim (``ClaimEscrow``): paid, or asked again later (up to ``CLAIM_ATTEMPTS`` times)."""
        claim = self.claims.get(rental)
        if claim is None:
            return []
        claim.asking = False
        if settled:
            del self.claims[rental]
            return [Report(rental, "claimed", text)]
        if claim.attempts >= CLAIM_ATTEMPTS:
            del self.claims[rental]
            return [Report(rental, "claim failed", f"{text}; gave up after {claim.attempts} attempts")]
        claim.due = now + self.timing.claim_retry_s
        return [Report(rental, "claim refused", f"{text}; asking again in {self.timing.claim_retry_s:.0f} s")]

    def decided(self, rental: str, admitted: bool, reason: str, price_per_hour: int, max_lease_ms: int,
                now: float, vm_id: str = "") -> list[Action]:  # fmt: skip
        """Admission's verdict on a request (after any preemption it needed); ``vm_id`` is the id the VM is to
        be created under (told to the consumer now), empty to leave it to the hypervisor."""
        lease = self.leases.get(rental)
        if lease is None or lease.state is not ProviderState.ADMITTING:
            return []
        if not admitted:
            del self.leases[rental]
            return [Send(lease.consumer, Refused(rental, reason)), Report(rental, "refused", reason),
                    Finished(rental, reason)]  # fmt: skip
        request = lease.request
        lease.state, lease.since = ProviderState.ADMITTED, now
        lease.price_per_hour, lease.max_lease_ms, lease.vm_id = price_per_hour, max_lease_ms, vm_id
        lease.total = billing.escrow_for(request.lease_s, price_per_hour)
        return [
            Send(lease.consumer, Admitted(rental, price_per_hour, lease.total, vm_id)),
            Report(rental, "admitted", f"{request.vcpus} vCPU {request.memory_mib} MiB {request.image} "
                                       f"for {request.lease_s} s at {price_per_hour}/h"),
        ]  # fmt: skip

    def lock_confirmed(self, rental: str, confirmed: bool, consumer: PeerId | None, amount: int, hourly_rate: int,
                       now: float) -> list[Action]:  # fmt: skip
        """What the lock's witnesses confirmed to this provider (``ConfirmLock``): create the VM, or refuse."""
        lease = self.leases.get(rental)
        if lease is None or lease.state not in (ProviderState.CREATING, ProviderState.ENDING):
            return []
        problem = self.lock_problem(lease, confirmed, consumer, amount, hourly_rate)
        if lease.state is ProviderState.ENDING:  # released or preempted before the VM was created
            problem = f"{lease.end_reason} before the VM was created"
        if problem is not None:
            return self.vm_failed(rental, problem, now)
        return [
            Send(lease.consumer, Progress(rental, "creating", f"escrow {lease.session[:12]} confirmed by its "
                                                              "witnesses; creating the VM")),
            Report(rental, "confirmed", f"escrow {lease.session[:12]} confirmed by its witnesses; creating "
                                        f"VM {lease.vm_id or '(id from the hypervisor)'}"),
            CreateVm(rental, lease.consumer, lease.request, lease.session, lease.vm_id),
        ]  # fmt: skip

    def lock_problem(self, lease: ProviderLease, confirmed: bool, consumer: PeerId | None, amount: int,
                     hourly_rate: int) -> str | None:  # fmt: skip
        """Why the escrow the consumer named does not pay for ``lease`` (``None``: it does)."""
        if not confirmed:
            return f"its witnesses did not confirm escrow {lease.session[:12]} to this provider"
        if consumer != lease.consumer:
            return f"escrow {lease.session[:12]} locks another consumer's funds"
        if amount < lease.total:
            return f"escrow {lease.session[:12]} holds {amount}, less than the {lease.total} admitted"
        if hourly_rate != lease.price_per_hour:
            return f"escrow {lease.session[:12]} signs {hourly_rate}/h, not the {lease.price_per_hour}/h admitted"
        if any(other.session == lease.session for other in self.leases.values() if other is not lease):
            return f"escrow {lease.session[:12]} already pays for another lease"
        return None

    def vm_created(self, rental: str, vm_id: str, address: str, now: float, host_key: str = "") -> list[Action]:
        lease = self.leases.get(rental)
        if lease is None:
            return []
        lease.vm_id = vm_id
        if lease.state is ProviderState.ENDING:  # ended while the VM was being created
            return [DeleteVm(rental, vm_id, lease.session)]
        if lease.state is not ProviderState.CREATING:
            return []
        lease.state, lease.ready_at, lease.last_heard, lease.last_sent = ProviderState.READY, now, now, now
        lease.paid_ms = billing.paid_ms(lease.total, lease.price_per_hour, lease.max_lease_ms)
        return [
            Send(lease.consumer, Ready(rental, vm_id, address, lease.paid_ms, host_key)),
            StartVmSession(rental, lease.session),
            Report(rental, "ready", f"VM {vm_id} ready at {address}; lease {lease.paid_ms // 1000} s"),
        ]

    def vm_failed(self, rental: str, reason: str, now: float) -> list[Action]:
        lease = self.leases.pop(rental, None)
        if lease is None:
            return []
        text = reason if lease.state is ProviderState.ENDING else f"the VM could not be created: {reason}"
        return [Send(lease.consumer, Refused(rental, text)), Report(rental, "failed", text), Finished(rental, text)]

    def vm_deleted(self, rental: str, attested_ms: int | None, now: float) -> list[Action]:
        """The VM is gone and the witnesses attested (``attested_ms``) or could not (``None``)."""
        lease = self.leases.get(rental)
        if lease is None or lease.state is not ProviderState.ENDING:
            return []
        del self.leases[rental]
        billable = billing.settled_ms(billing.billable_ms(lease.ready_at, lease.end_at, lease.paid_ms), attested_ms)
        ended = Ended(rental, lease.end_reason, billable)
        self.ended[rental] = (lease.consumer, ended)
        while len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]
        if attested_ms is not None:  # claimed later unless the consumer settles (a settled session is found paid)
            self.claims[rental] = PendingClaim(rental, lease.session, now + self.timing.abandon_timeout_s)
        return [
            Send(lease.consumer, ended),
            Report(rental, "ended", f"{lease.end_reason}; VM deleted; {billable} ms billable"),
            Finished(rental, lease.end_reason),
        ]

    def preempt(self, rental: str, now: float) -> list[Action]:
        """The owner ends this lease (owner preemption); billed like every other end."""
        lease = self.leases.get(rental)
        if lease is None:
            return []
        if lease.state in (ProviderState.ADMITTING, ProviderState.ADMITTED):
            del self.leases[rental]
            reason = "preempted by the provider's owner before the VM was created"
            return [Send(lease.consumer, Refused(rental, reason)), Finished(rental, reason)]
        return self._end(lease, "preempted", now, now)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for claim in self.claims.values():
            if not claim.asking and now >= claim.due:
                claim.asking, claim.attempts = True, claim.attempts + 1
                actions.append(ClaimEscrow(claim.rental, claim.session))
        for lease in list(self.leases.values()):
            if lease.state is ProviderState.ADMITTED and now >= lease.since + self.timing.lock_timeout_s:
                del self.leases[lease.rental]
                reason = "no escrow lock arrived in time"
                actions += [Send(lease.consumer, Refused(lease.rental, reason)), Finished(lease.rental, reason)]
            elif lease.state is ProviderState.READY:
                expires = lease.expires_at
                assert expires is not None
                if now >= expires:
                    actions += self._end(lease, "expired", expires, now)
                elif now >= lease.last_heard + self.timing.grace_s:
                    actions += self._end(lease, LOST_HEARTBEATS, lease.last_heard, now)
                elif now >= lease.last_sent + self.timing.heartbeat_s:
                    lease.last_sent = now
                    actions.append(Send(lease.consumer, Heartbeat(lease.rental)))
            elif (lease.state is ProviderState.ENDING and lease.ready_at is not None
                  and now >= lease.last_sent + self.timing.heartbeat_s):  # fmt: skip
                lease.last_sent = now
                actions.append(Send(lease.consumer, Heartbeat(lease.rental)))
        return actions

    def _end(self, lease: ProviderLease, reason: str, end_at: float, now: float) -> list[Action]:
        if lease.state is ProviderState.ENDING:
            return []
        if lease.state in (ProviderState.ADMITTING, ProviderState.ADMITTED):
            del self.leases[lease.rental]
            return [Send(lease.consumer, Refused(lease.rental, f"{reason} before the VM was created")),
                    Finished(lease.rental, reason)]  # fmt: skip
        was_creating = lease.state is ProviderState.CREATING
        lease.state, lease.end_reason, lease.end_at = ProviderState.ENDING, reason, end_at
        report = Report(lease.rental, "ending", f"{reason}; deleting the VM")
        if was_creating:
            return [report]  # vm_created or vm_failed follows; the VM is deleted then
        # the last heartbeat heard ends a lost lease's billing; other ends bill up to now, clamped to the paid time
        unbilled_ms = max(0, round((now - end_at) * 1000)) if reason == LOST_HEARTBEATS else 0
        return [report, DeleteVm(lease.rental, lease.vm_id, lease.session, unbilled_ms)]


# -- consumer -----------------------------------------------------------------------------------


class ConsumerState(enum.Enum):
    REQUESTED = "requested"
    LOCKING = "locking"
    WAITING_VM = "waiting for the VM"
    READY = "ready"
    RELEASING = "releasing"
    SETTLING = "settling"


@dataclass
class Rental:
    rental: str
    provider: PeerId
    request: Request
    state: ConsumerState
    since: float
    price_per_hour: int = 0
    total: int = 0
    session: str = ""
    vm_id: str = ""
    address: str = ""
    ready_at: float | None = None
    paid_ms: int = 0
    last_heard: float = 0.0
    last_sent: float = 0.0
    end_reason: str = ""
    billable_ms: int = 0
    #: The VM id this node's VPN gateway was built for ("" = none): the one ``admitted`` named, then ``ready``'s.
    gateway: str = ""
    #: Resumed after a crash: the provider's witness-capped figure wins over the (possibly stale) journal.
    resumed: bool = False
    #: The witnesses refused this side's own figure (they attested another): only the provider's ``ended``,
    #: which carries theirs, can settle now.
    awaiting_attested: bool = False


class ConsumerCore:
    """All rentals of one consumer."""

    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self.rentals: dict[str, Rental] = {}

    def next_deadline(self) -> float | None:
        t = self.timing
        deadlines = []
        for r in self.rentals.values():
            if r.state is ConsumerState.REQUESTED:
                deadlines.append(r.since + t.answer_timeout_s)
            elif r.state is ConsumerState.WAITING_VM:
                deadlines.append(r.since + t.ready_timeout_s)
            elif r.state is ConsumerState.READY:
                assert r.ready_at is not None
                deadlines.append(min(r.last_sent + t.heartbeat_s, r.last_heard + t.grace_s,
                                     r.ready_at + r.paid_ms / 1000))  # fmt: skip
            elif r.state is ConsumerState.RELEASING:
                deadlines.append(r.since + t.release_timeout_s)
        return min(deadlines, default=None)

    # -- commands ---------------------------------------------------------------------------

    def request(self, provider: PeerId, request: Request, now: float) -> list[Action]:
        self.rentals[request.rental] = Rental(request.rental, provider, request, ConsumerState.REQUESTED, now)
        return [
            Send(provider, request),
            Report(request.rental, "requested", f"asked {provider[:12]} for {request.vcpus} vCPU "
                                                f"{request.memory_mib} MiB {request.image} for {request.lease_s} s"),
        ]  # fmt: skip

    def resume(self, provider: PeerId, request: Request, session: str, price_per_hour: int, billable_ms: int,
               now: float) -> list[Action]:  # fmt: skip
        """After a restart: a rental whose lock is open ends now. The provider's ``ended`` (its billable time,
        capped by the witnesses' attestation) settles it; if the provider does not answer, ``billable_ms``
        from the journal does (the rule up to the last heartbeat recorded)."""
        r = Rental(request.rental, provider, request, ConsumerState.RELEASING, now, price_per_hour, session=session,
                   billable_ms=billable_ms, end_reason="consumer restarted", resumed=True)  # fmt: skip
        self.rentals[request.rental] = r
        return [Report(r.rental, "resumed", f"open escrow {session[:12]} after a restart; ending it"),
                Send(provider, Release(r.rental))]  # fmt: skip

    def release(self, rental: str, now: float) -> list[Action]:
        r = self.rentals.get(rental)
        if r is None:
            return []
        if r.state in (ConsumerState.RELEASING, ConsumerState.SETTLING):
            return []
        if r.state is ConsumerState.REQUESTED:
            return self._fail(r, "released before the provider answered", [Send(r.provider, Release(rental))])
        if r.state in (ConsumerState.LOCKING, ConsumerState.WAITING_VM):
            r.end_reason = "released before ready"
        r.billable_ms = billing.billable_ms(r.ready_at, now, r.paid_ms)
        r.state, r.since = ConsumerState.RELEASING, now
        r.end_reason = r.end_reason or "released"
        return [Report(rental, "releasing", "release sent; waiting for deletion"), Send(r.provider, Release(rental))]

    def top_up(self, rental: str, seconds: int, now: float) -> list[Action]:
        r = self.rentals.get(rental)
        if r is None or r.state is not ConsumerState.READY:
            return [Report(rental, "top-up refused", "only a ready rental can be topped up")]
        amount = billing.escrow_for(seconds, r.price_per_hour)
        return [TopUpEscrow(rental, r.session, amount), Report(rental, "topping up", f"adding {amount} to the escrow")]

    # -- events ----------------------------------------------------------------------------

    def receive(self, peer: PeerId, message: Message, now: float) -> list[Action]:
        r = self.rentals.get(message.rental)
        if r is None or r.provider != peer:
            return []
        if isinstance(message, Admitted) and r.state is ConsumerState.REQUESTED:
            cap = billing.escrow_for(r.request.lease_s, r.request.max_price)
            if message.price_per_hour > r.request.max_price or message.amount > cap:
                reason = f"the provider asked {message.price_per_hour}/h, above your maximum {r.request.max_price}/h"
                return self._fail(r, reason, [Send(peer, Release(r.rental))])
            r.state, r.since, r.price_per_hour, r.total, r.vm_id = (
                ConsumerState.LOCKING,
                now,
                message.price_per_hour,
                message.amount,
                message.vm_id,
            )
            return [
                Report(r.rental, "admitted",
                       f"admitted at {message.price_per_hour}/h; locking {message.amount} in escrow"),
                LockEscrow(r.rental, peer, message.amount, message.price_per_hour),
            ]  # fmt: skip
        if isinstance(message, Refused):
            if r.session:
                return self._settle(r, message.reason, 0)
            return self._fail(r, message.reason)
        if isinstance(message, Progress):
            return [Report(r.rental, message.step, message.detail)]
        if isinstance(message, Ready) and r.state is ConsumerState.WAITING_VM:
            r.state, r.vm_id, r.address = ConsumerState.READY, message.vm_id, message.address
            r.ready_at, r.last_heard, r.last_sent, r.paid_ms = now, now, now, message.lease_ms
            # The address comes with the "vpn" step: the one in Ready is the guest's own, not the gateway's lease.
            actions: list[Action] = [Report(r.rental, "ready", f"VM {message.vm_id} ready on the provider; "
                                                               f"lease {message.lease_ms // 1000} s")]  # fmt: skip
            if r.gateway != message.vm_id:  # not announced in "admitted" (or another id): build it now
                r.gateway = message.vm_id
                actions.append(AttachVpn(r.rental, peer, message.vm_id))
            return [*actions, ReachVm(r.rental, message.host_key)]
        if isinstance(message, Heartbeat):
            r.last_heard = max(r.last_heard, now)
            return []
        if isinstance(message, Extended) and r.state is ConsumerState.READY:
            r.paid_ms, r.last_heard = message.lease_ms, max(r.last_heard, now)
            return [Report(r.rental, "extended", f"lease now {message.lease_ms // 1000} s from ready")]
        if isinstance(message, Ended) and r.state in (ConsumerState.READY, ConsumerState.RELEASING,
                                                     ConsumerState.WAITING_VM):  # fmt: skip
            reason = r.end_reason if r.state is ConsumerState.RELEASING else message.reason
            # The provider's figure is the witnesses' attested duration when they attested, which is the only
            # figure they sign (spec 02); the witnesses check it, so the consumer takes it rather than its own.
            return self._settle(r, reason, message.billable_ms)
        return []

    def lock_done(self, rental: str, locked: bool, session: str, reason: str | None, now: float) -> list[Action]:
        r = self.rentals.get(rental)
        if r is None:
            return []
        if not locked:
            return self._fail(r, f"escrow lock failed: {reason}", [Send(r.provider, Release(rental))])
        r.session = session
        if r.state is not ConsumerState.LOCKING:  # released or refused while locking: refund at once
            return self._settle(r, r.end_reason or "cancelled while locking", 0)
        r.state, r.since = ConsumerState.WAITING_VM, now
        actions: list[Action] = [
            Report(rental, "locked", f"escrow {session[:12]} locked; waiting for the VM"),
            Send(r.provider, Locked(rental, session)),
        ]
        if r.vm_id:  # the VM's gateway is built while the lock is confirmed and the VM boots
            r.gateway = r.vm_id
            actions.append(AttachVpn(rental, r.provider, r.vm_id))
        return actions

    def topup_done(self, rental: str, topped_up: bool, total: int, reason: str | None, now: float) -> list[Action]:
        r = self.rentals.get(rental)
        if r is None:
            return []
        if not topped_up:
            return [Report(rental, "top-up failed", reason or "the witnesses refused the top-up")]
        r.total = total
        return [Send(r.provider, ToppedUp(rental, total)), Report(rental, "topped up", f"escrow now {total}")]

    def settled(self, rental: str, ok: bool, text: str, now: float, reason: str | None = None) -> list[Action]:
        """The settlement's outcome; ``reason`` is the ledger's failure reason.

        A lease that ended on lost heartbeats settles this side's own figure, but when the provider was cut off
        only from this consumer (a partition) it has had the witnesses attest the VM's duration, and they
        refuse any other (:data:`DURATION_REFUSED`). Then the rental waits for the provider's ``ended``, which
        carries the attested figure: ``release`` asks for it (the provider keeps it) when the path is back."""
        r = self.rentals.get(rental)
        if r is None:
            return []
        if not ok and reason == DURATION_REFUSED and not r.awaiting_attested:
            r.state, r.since, r.awaiting_attested = ConsumerState.RELEASING, now, True
            return [Report(rental, "settlement refused", f"the witnesses attested another duration than "
                                                         f"{r.billable_ms} ms; asking the provider for theirs"),
                    Send(r.provider, Release(rental))]  # fmt: skip
        del self.rentals[rental]
        step = "settled" if ok else "settlement failed"
        return [Report(rental, step, text), Finished(rental, r.end_reason)]

    def tick(self, now: float) -> list[Action]:
        t = self.timing
        actions: list[Action] = []
        for r in list(self.rentals.values()):
            if r.state is ConsumerState.REQUESTED and now >= r.since + t.answer_timeout_s:
                # the request may still arrive (a partition heals): the release keeps the provider from holding
                # capacity for a consumer that has given up
                actions += self._fail(r, f"the provider did not answer within {t.answer_timeout_s:.0f} s (gone?)",
                                      [Send(r.provider, Release(r.rental))])  # fmt: skip
            elif r.state is ConsumerState.WAITING_VM and now >= r.since + t.ready_timeout_s:
                reason = f"the VM was not ready within {t.ready_timeout_s:.0f} s"
                actions += [Send(r.provider, Release(r.rental)), *self._settle(r, reason, 0)]
            elif r.state is ConsumerState.READY:
                assert r.ready_at is not None
                if now >= r.ready_at + r.paid_ms / 1000:  # expired: the provider deletes the VM
                    r.state, r.since, r.end_reason, r.billable_ms = ConsumerState.RELEASING, now, "expired", r.paid_ms
                    actions.append(Report(r.rental, "expired", "the paid time ran out; waiting for deletion"))
                elif now >= r.last_heard + t.grace_s:
                    billable = billing.billable_ms(r.ready_at, r.last_heard, r.paid_ms)
                    actions += self._settle(r, LOST_HEARTBEATS, billable)
                elif now >= r.last_sent + t.heartbeat_s:
                    r.last_sent = now
                    actions.append(Send(r.provider, Heartbeat(r.rental)))
            elif r.state is ConsumerState.RELEASING and now >= r.since + t.release_timeout_s and r.awaiting_attested:
                r.since = now  # only the attested figure settles: keep asking for it
                actions.append(Send(r.provider, Release(r.rental)))
            elif r.state is ConsumerState.RELEASING and now >= r.since + t.release_timeout_s:
                actions += self._settle(r, f"{r.end_reason} (the provider did not confirm)", r.billable_ms)
        return actions

    def _settle(self, r: Rental, reason: str, billable: int) -> list[Action]:
        if not r.session:  # nothing was locked: nothing to settle
            return self._fail(r, reason)
        r.state, r.end_reason, r.billable_ms = ConsumerState.SETTLING, reason, billable
        actions: list[Action] = [DetachVpn(r.rental)] if r.gateway else []
        r.gateway = ""
        return [
            *actions,
            Report(r.rental, "ended", f"{reason}; settling {billable} ms at {r.price_per_hour}/h"),
            Settle(r.rental, r.session, billable, r.price_per_hour),
        ]

    def _fail(self, r: Rental, reason: str, extra: list[Action] | None = None) -> list[Action]:
        del self.rentals[r.rental]
        return [*(extra or []), Report(r.rental, "failed", reason), Finished(r.rental, reason)]
