"""The sans-IO rental protocol: provider and consumer cores wired to each other under virtual time."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omerta_rental import billing
from omerta_rental.core import (
    CLAIM_ATTEMPTS,
    DURATION_REFUSED,
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
    ProviderState,
    ReachVm,
    Report,
    Send,
    Settle,
    StartVmSession,
    Timing,
    TopUpEscrow,
)
from omerta_rental.messages import Admitted, Heartbeat, MessageError, Ready, Refused, Request, decode, encode

from omerta_core.identity import Identity
from omerta_core.interfaces.common import PeerId

PROVIDER = PeerId(Identity.generate().peer_id)
CONSUMER = PeerId(Identity.generate().peer_id)
STRANGER = PeerId(Identity.generate().peer_id)
RENTAL = "ab" * 16
SESSION = "cd" * 32
PRICE = 120  # per hour: 1 unit = 30 s
TIMING = Timing(heartbeat_s=2, grace_s=10, answer_timeout_s=20, lock_timeout_s=150, ready_timeout_s=400,
                release_timeout_s=60)  # fmt: skip


def request(hours: int = 2, max_price: int = 200) -> Request:
    return Request(RENTAL, 1, 128, 1, "omk-test", hours * 3600, "compile a kernel", "ssh-ed25519 AAAA k", max_price)


@dataclass
class Wire:
    """Both cores, their actions, and a clock; messages pass through the real encoder and decoder."""

    provider: ProviderCore = field(default_factory=lambda: ProviderCore(TIMING))
    consumer: ConsumerCore = field(default_factory=lambda: ConsumerCore(TIMING))
    now: float = 1000.0
    side_effects: list[Action] = field(default_factory=list)
    cut: bool = False  # a partition: messages are held both ways (the transport retries them)
    held: list[Send] = field(default_factory=list)

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self.cut:
                    self.held.append(action)
                    continue
                message = decode(encode(action.message))
                if action.peer == PROVIDER:
                    self.run(self.provider.receive(CONSUMER, message, self.now))
                else:
                    self.run(self.consumer.receive(PROVIDER, message, self.now))
            else:
                self.side_effects.append(action)

    def heal(self) -> None:
        """The partition ends: what the transport held arrives, in order."""
        self.cut = False
        held, self.held = self.held, []
        self.run(list(held))

    def taken(self, kind: type) -> list[Action]:
        found = [a for a in self.side_effects if isinstance(a, kind)]
        self.side_effects = [a for a in self.side_effects if not isinstance(a, kind)]
        return found

    def advance(self, seconds: float, step: float = 0.5) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.run(self.provider.tick(self.now))
            self.run(self.consumer.tick(self.now))

    def to_ready(self, hours: int = 2) -> None:
        self.run(self.consumer.request(PROVIDER, request(hours), self.now))
        (admit,) = self.taken(Admit)
        assert isinstance(admit, Admit) and admit.consumer == CONSUMER
        self.run(self.provider.decided(RENTAL, True, "", PRICE, 24 * billing.MS_PER_HOUR, self.now, "vm1"))
        (lock,) = self.taken(LockEscrow)
        assert isinstance(lock, LockEscrow) and lock.amount == hours * PRICE
        assert self.taken(AttachVpn) == []  # nothing of the VM before the lock holds
        self.run(self.consumer.lock_done(RENTAL, True, SESSION, None, self.now))
        # the VM's gateway is built now, while the witnesses confirm the lock and the VM boots
        assert self.taken(AttachVpn) == [AttachVpn(RENTAL, PROVIDER, "vm1")]
        self.confirm()
        (create,) = self.taken(CreateVm)
        assert isinstance(create, CreateVm) and create.session == SESSION and create.vm_id == "vm1"
        self.advance(30)  # booting: nobody heartbeats yet, nothing times out
        self.run(self.provider.vm_created(RENTAL, "vm1", "198.18.0.2", self.now))
        assert self.taken(StartVmSession) == [StartVmSession(RENTAL, SESSION)]
        assert self.taken(AttachVpn) == []  # built already
        assert self.taken(ReachVm) == [ReachVm(RENTAL, "")]

    def to_admitted(self, vm_id: str = "vm1") -> None:
        self.run(self.consumer.request(PROVIDER, request(), self.now))
        self.taken(Admit)
        self.run(self.provider.decided(RENTAL, True, "", PRICE, billing.MS_PER_HOUR, self.now, vm_id))
        assert len(self.taken(LockEscrow)) == 1

    def confirm(self, confirmed: bool = True, consumer: PeerId | None = CONSUMER, amount: int | None = None) -> None:
        """The lock's witnesses confirm (or not) to the provider what the consumer locked."""
        assert self.taken(ConfirmLock) == [ConfirmLock(RENTAL, SESSION)]
        total = self.provider.leases[RENTAL].total if amount is None else amount
        self.run(self.provider.lock_confirmed(RENTAL, confirmed, consumer, total, PRICE, self.now))

    def to_creating(self) -> None:
        self.to_admitted()
        self.run(self.consumer.lock_done(RENTAL, True, SESSION, None, self.now))
        self.confirm()
        assert len(self.taken(CreateVm)) == 1

    def finish_deletion(self, attested_ms: int | None = None) -> Settle:
        (delete,) = self.taken(DeleteVm)
        assert isinstance(delete, DeleteVm) and delete.vm_id == "vm1"
        self.run(self.provider.vm_deleted(RENTAL, attested_ms, self.now))
        (settle,) = self.taken(Settle)
        assert isinstance(settle, Settle)
        return settle

    def reports(self) -> list[str]:
        return [a.step for a in self.taken(Report) if isinstance(a, Report)]


def test_request_to_release_bills_the_ready_time_pro_rata() -> None:
    wire = Wire()
    wire.to_ready()
    assert wire.provider.leases[RENTAL].state is ProviderState.READY
    assert wire.consumer.rentals[RENTAL].state is ConsumerState.READY
    wire.advance(95.25)  # heartbeats keep both sides alive
    wire.run(wire.consumer.release(RENTAL, wire.now))
    settle = wire.finish_deletion()
    assert settle == Settle(RENTAL, SESSION, 95_250, PRICE)
    assert wire.taken(DetachVpn) == [DetachVpn(RENTAL)]
    wire.run(wire.consumer.settled(RENTAL, True, "paid", wire.now))
    assert wire.provider.leases == {} and wire.consumer.rentals == {}
    assert wire.provider.next_deadline() is None and wire.consumer.next_deadline() is None
    steps = wire.reports()
    order = ["requested", "admitted", "locked", "creating", "ready", "releasing", "ending", "ended", "settled"]
    assert [s for s in dict.fromkeys(steps) if s in order] == order


def test_the_witnesses_attested_duration_is_what_settles() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(100)
    wire.run(wire.consumer.release(RENTAL, wire.now))
    assert wire.finish_deletion(attested_ms=60_000).billable_ms == 60_000


def test_expiry_bills_exactly_the_paid_time() -> None:
    wire = Wire()
    wire.to_ready(hours=1)
    wire.advance(3600 + 1)
    settle = wire.finish_deletion()
    assert settle.billable_ms == billing.MS_PER_HOUR  # the whole escrow, not a millisecond more


def test_a_top_up_extends_the_lease_by_what_it_pays() -> None:
    wire = Wire()
    wire.to_ready(hours=1)
    wire.advance(3000)
    wire.run(wire.consumer.top_up(RENTAL, 3600, wire.now))
    (topup,) = wire.taken(TopUpEscrow)
    assert topup == TopUpEscrow(RENTAL, SESSION, PRICE)
    wire.run(wire.consumer.topup_done(RENTAL, True, 2 * PRICE, None, wire.now))
    # the provider extends only by what the lock's total on the consumer's chain pays, read first
    assert wire.taken(CheckTopUp) == [CheckTopUp(RENTAL, CONSUMER, SESSION)]
    assert wire.provider.leases[RENTAL].paid_ms == billing.MS_PER_HOUR
    wire.run(wire.provider.topup_checked(RENTAL, 2 * PRICE, wire.now))
    assert wire.provider.leases[RENTAL].paid_ms == 2 * billing.MS_PER_HOUR
    assert wire.consumer.rentals[RENTAL].paid_ms == 2 * billing.MS_PER_HOUR
    wire.advance(1000)  # past the first hour: still running
    assert wire.provider.leases[RENTAL].state is ProviderState.READY
    wire.advance(3600)
    assert wire.finish_deletion().billable_ms == 2 * billing.MS_PER_HOUR


def test_a_top_up_the_consumers_chain_does_not_show_extends_nothing() -> None:
    wire = Wire()
    wire.to_ready(hours=1)
    wire.run(wire.consumer.top_up(RENTAL, 3600, wire.now))
    wire.taken(TopUpEscrow)
    wire.run(wire.consumer.topup_done(RENTAL, True, 2 * PRICE, None, wire.now))  # its word alone
    assert len(wire.taken(CheckTopUp)) == 1
    wire.run(wire.provider.topup_checked(RENTAL, PRICE, wire.now))  # the chain still holds the first total
    assert "top-up unconfirmed" in wire.reports()
    assert wire.provider.leases[RENTAL].paid_ms == billing.MS_PER_HOUR
    wire.run(wire.provider.topup_checked(RENTAL, None, wire.now))  # or no open lock at all
    assert wire.provider.leases[RENTAL].paid_ms == billing.MS_PER_HOUR


def test_an_abandoned_attested_session_is_claimed_after_the_timeout_and_asked_again_when_refused() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(40)
    wire.consumer.rentals.clear()  # the consumer's node died (kill -9) and never comes back
    wire.advance(TIMING.grace_s + 1)
    wire.taken(DeleteVm)
    wire.run(wire.provider.vm_deleted(RENTAL, 40_000, wire.now))
    deleted_at = wire.now
    assert wire.provider.next_deadline() == deleted_at + TIMING.abandon_timeout_s
    wire.advance(TIMING.abandon_timeout_s - 1, step=10)
    assert wire.taken(ClaimEscrow) == []
    wire.advance(2)
    assert wire.taken(ClaimEscrow) == [ClaimEscrow(RENTAL, SESSION)]
    assert wire.provider.next_deadline() is None  # one claim at a time
    wire.run(wire.provider.claim_done(RENTAL, False, "before_abandon_timeout", wire.now))
    assert "claim refused" in wire.reports()
    wire.advance(TIMING.claim_retry_s)
    assert wire.taken(ClaimEscrow) == [ClaimEscrow(RENTAL, SESSION)]
    wire.run(wire.provider.claim_done(RENTAL, True, "40000 ms: provider 1", wire.now))
    assert "claimed" in wire.reports()
    assert wire.provider.claims == {} and wire.provider.next_deadline() is None


def test_a_claim_resumed_after_a_restart_is_made_when_due_and_counts_its_attempts() -> None:
    """A restarted provider's core takes a pending claim from the journal: claimed at its due time, once, with
    the attempts made before the restart counted towards the limit."""
    wire = Wire()
    wire.provider.resume_claim(RENTAL, SESSION, wire.now + 30, attempts=CLAIM_ATTEMPTS - 1)
    wire.provider.resume_claim(RENTAL, "other", wire.now, attempts=0)  # a second resume changes nothing
    assert wire.provider.next_deadline() == wire.now + 30
    wire.advance(29)
    assert wire.taken(ClaimEscrow) == []
    wire.advance(2)
    assert wire.taken(ClaimEscrow) == [ClaimEscrow(RENTAL, SESSION)]
    wire.run(wire.provider.claim_done(RENTAL, False, "before_abandon_timeout", wire.now))
    assert "claim failed" in wire.reports() and wire.provider.claims == {}


def test_an_end_the_witnesses_did_not_attest_is_not_claimed() -> None:
    wire = Wire()
    wire.to_ready()
    wire.run(wire.consumer.release(RENTAL, wire.now))
    wire.finish_deletion(None)
    assert wire.provider.claims == {}


def test_a_failed_top_up_leaves_the_lease_as_it_was() -> None:
    wire = Wire()
    wire.to_ready(hours=1)
    wire.run(wire.consumer.top_up(RENTAL, 3600, wire.now))
    wire.taken(TopUpEscrow)
    wire.run(wire.consumer.topup_done(RENTAL, False, 0, "balance too low", wire.now))
    assert "top-up failed" in wire.reports()
    assert wire.provider.leases[RENTAL].paid_ms == billing.MS_PER_HOUR


def test_a_silent_consumer_is_billed_to_its_last_heartbeat_not_the_grace() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(40)
    last = wire.provider.leases[RENTAL].last_heard
    ready_at = wire.provider.leases[RENTAL].ready_at
    assert ready_at is not None
    wire.consumer.rentals.clear()  # the consumer's node died (kill -9)
    wire.advance(TIMING.grace_s + 1)
    (delete,) = wire.taken(DeleteVm)
    assert isinstance(delete, DeleteVm)
    assert wire.provider.leases[RENTAL].end_reason == "lost heartbeats"
    assert wire.provider.leases[RENTAL].end_at == last
    # the witnesses attest the session without the silence: the grace is billed to nobody there either
    assert TIMING.grace_s * 1000 <= delete.unbilled_ms <= (wire.now - last) * 1000


def partitioned(after_s: float) -> tuple[Wire, Settle]:
    """A lease cut ``after_s`` after ready for longer than the grace, and the consumer's own settlement."""
    wire = Wire()
    wire.to_ready()
    wire.advance(after_s)
    wire.cut = True
    wire.advance(TIMING.grace_s + 1)
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle)
    return wire, settle


def test_a_partition_ends_the_lease_on_both_sides_with_the_same_rule() -> None:
    wire, settle = partitioned(20)
    assert settle.session == SESSION
    lease = wire.provider.leases[RENTAL]
    assert lease.end_reason == "lost heartbeats"
    provider_billable = billing.billable_ms(lease.ready_at, lease.end_at, lease.paid_ms)
    assert abs(settle.billable_ms - provider_billable) <= TIMING.heartbeat_s * 1000
    assert settle.billable_ms <= 20_000 + TIMING.heartbeat_s * 1000


def test_a_partition_settles_the_attested_duration_once_the_provider_is_back() -> None:
    """The provider, cut off from the consumer only, had the witnesses attest the VM's duration; they refuse the
    consumer's own figure, and the consumer settles theirs, from the provider's ``ended``, after the cut."""
    wire, own = partitioned(20)
    (delete,) = wire.taken(DeleteVm)
    assert isinstance(delete, DeleteVm)
    attested = own.billable_ms + 700  # the witnesses attested up to the provider's last heartbeat heard
    wire.run(wire.provider.vm_deleted(RENTAL, attested, wire.now))
    wire.run(wire.consumer.settled(RENTAL, False, DURATION_REFUSED, wire.now, DURATION_REFUSED))
    assert wire.taken(Finished) == [Finished(RENTAL, "lost heartbeats")]  # the provider's; the consumer waits
    wire.advance(TIMING.release_timeout_s + 1)  # however long the cut lasts, it never settles its own figure again
    assert wire.taken(Settle) == []
    wire.heal()
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == attested
    wire.run(wire.consumer.settled(RENTAL, True, "settled", wire.now))
    assert wire.taken(Finished) == [Finished(RENTAL, "lost heartbeats")] and wire.consumer.rentals == {}


def test_a_vanished_provider_refunds_everything_after_the_last_heartbeat() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(10)
    wire.provider.leases.clear()  # the provider's node died
    wire.advance(TIMING.grace_s + 1)
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and 8_000 <= settle.billable_ms <= 10_000


def test_preemption_ends_the_lease_and_bills_to_the_preemption() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(30)
    wire.run(wire.provider.preempt(RENTAL, wire.now))
    settle = wire.finish_deletion()
    assert settle.billable_ms == 30_000
    assert "preempted" in wire.consumer.rentals[RENTAL].end_reason


def test_a_refusal_reaches_the_consumer_as_one_line_and_nothing_is_locked() -> None:
    wire = Wire()
    wire.run(wire.consumer.request(PROVIDER, request(), wire.now))
    wire.taken(Admit)
    wire.run(wire.provider.decided(RENTAL, False, "refused: quiet hours", PRICE, 0, wire.now))
    assert wire.taken(LockEscrow) == []
    assert wire.taken(Finished) == [Finished(RENTAL, "refused: quiet hours")] * 2  # provider and consumer
    assert wire.provider.leases == {} and wire.consumer.rentals == {}


def test_a_provider_that_never_answers_fails_the_request_without_a_lock() -> None:
    wire = Wire()
    wire.cut = True
    wire.run(wire.consumer.request(PROVIDER, request(), wire.now))
    wire.advance(TIMING.answer_timeout_s + 1)
    assert wire.taken(LockEscrow) == []
    (finished,) = wire.taken(Finished)
    assert isinstance(finished, Finished) and "did not answer" in finished.outcome
    # the request arrives when the cut heals, and the release the consumer sent when it gave up right after it:
    # the provider holds no capacity for a consumer that is gone
    wire.heal()
    wire.run(wire.provider.decided(RENTAL, True, "", PRICE, 0, wire.now))
    assert wire.provider.leases == {}


def test_a_price_above_the_consumers_maximum_is_not_locked() -> None:
    wire = Wire()
    wire.run(wire.consumer.request(PROVIDER, request(max_price=100), wire.now))
    wire.taken(Admit)
    wire.run(wire.provider.decided(RENTAL, True, "", PRICE, billing.MS_PER_HOUR, wire.now))
    assert wire.taken(LockEscrow) == []
    assert wire.consumer.rentals == {}
    wire.advance(TIMING.lock_timeout_s + 1)
    assert wire.provider.leases == {}  # the provider forgets the admitted request


def test_a_failed_lock_tells_the_provider_and_locks_nothing() -> None:
    wire = Wire()
    wire.to_admitted()
    wire.run(wire.consumer.lock_done(RENTAL, False, "", "insufficient balance", wire.now))
    assert wire.taken(Settle) == [] and wire.taken(CreateVm) == []
    assert wire.consumer.rentals == {} and wire.provider.leases == {}  # the consumer said so


def test_a_vm_that_fails_to_boot_refunds_the_whole_escrow() -> None:
    wire = Wire()
    wire.to_creating()
    assert wire.taken(AttachVpn) == [AttachVpn(RENTAL, PROVIDER, "vm1")]
    wire.run(wire.provider.vm_failed(RENTAL, "unknown image 'x'", wire.now))
    (settle,) = wire.taken(Settle)
    assert settle == Settle(RENTAL, SESSION, 0, PRICE)
    assert wire.taken(DetachVpn) == [DetachVpn(RENTAL)]  # the gateway built for it goes too
    assert wire.provider.leases == {}


def test_without_a_vm_id_at_admission_the_gateway_is_built_at_ready() -> None:
    wire = Wire()
    wire.to_admitted(vm_id="")
    wire.run(wire.consumer.lock_done(RENTAL, True, SESSION, None, wire.now))
    wire.confirm()
    (create,) = wire.taken(CreateVm)
    assert isinstance(create, CreateVm) and create.vm_id == ""  # the hypervisor picks it
    assert wire.taken(AttachVpn) == []
    wire.run(wire.provider.vm_created(RENTAL, "vm1", "198.18.0.2", wire.now, "ssh-ed25519 AAAA"))
    assert wire.taken(AttachVpn) == [AttachVpn(RENTAL, PROVIDER, "vm1")]
    assert wire.taken(ReachVm) == [ReachVm(RENTAL, "ssh-ed25519 AAAA")]


def test_a_ready_naming_another_vm_moves_the_gateway_to_it() -> None:
    wire = Wire()
    wire.to_creating()
    assert wire.taken(AttachVpn) == [AttachVpn(RENTAL, PROVIDER, "vm1")]
    wire.run(wire.provider.vm_created(RENTAL, "vm9", "198.18.0.2", wire.now))  # a hypervisor that chose its own id
    assert wire.taken(AttachVpn) == [AttachVpn(RENTAL, PROVIDER, "vm9")]
    assert wire.taken(ReachVm) == [ReachVm(RENTAL, "")]
    wire.run(wire.consumer.release(RENTAL, wire.now))
    (delete,) = wire.taken(DeleteVm)
    assert isinstance(delete, DeleteVm) and delete.vm_id == "vm9"
    wire.run(wire.provider.vm_deleted(RENTAL, None, wire.now))
    assert wire.taken(DetachVpn) == [DetachVpn(RENTAL)]


@pytest.mark.parametrize("vm_id", ["../../etc", ".hidden", "a/b", "x" * 65, "-rf"])
def test_a_vm_id_that_is_no_safe_name_is_refused_by_the_decoder(vm_id: str) -> None:
    for message in (Admitted(RENTAL, PRICE, PRICE, vm_id), Ready(RENTAL, vm_id, "198.18.0.2", 1, "")):
        with pytest.raises(MessageError, match="vm_id"):
            decode(encode(message))
    assert decode(encode(Admitted(RENTAL, PRICE, PRICE, ""))) == Admitted(RENTAL, PRICE, PRICE, "")
    with pytest.raises(MessageError, match="vm_id"):
        decode(encode(Ready(RENTAL, "", "198.18.0.2", 1, "")))


def test_a_release_while_the_vm_is_created_deletes_it_once_it_exists() -> None:
    wire = Wire()
    wire.to_creating()
    wire.run(wire.consumer.release(RENTAL, wire.now))
    assert wire.taken(DeleteVm) == []
    wire.run(wire.provider.vm_created(RENTAL, "vm1", "198.18.0.2", wire.now))
    assert wire.taken(StartVmSession) == []
    assert wire.finish_deletion().billable_ms == 0


def test_a_vm_that_never_becomes_ready_is_given_up_and_refunded() -> None:
    wire = Wire()
    wire.to_admitted()
    wire.run(wire.consumer.lock_done(RENTAL, True, SESSION, None, wire.now))
    wire.advance(TIMING.ready_timeout_s + 1, step=5)
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == 0
    assert wire.provider.leases[RENTAL].state is ProviderState.ENDING


def test_a_release_the_provider_never_confirms_settles_the_consumers_view() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(12)
    wire.run(wire.consumer.release(RENTAL, wire.now))
    wire.provider.leases.clear()
    wire.taken(DeleteVm)
    wire.advance(TIMING.release_timeout_s + 1)
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == 12_000


def test_messages_from_a_stranger_or_out_of_order_change_nothing() -> None:
    wire = Wire()
    wire.to_ready()
    before = wire.consumer.rentals[RENTAL].last_heard
    assert wire.consumer.receive(STRANGER, Heartbeat(RENTAL), wire.now + 5) == []
    assert wire.consumer.rentals[RENTAL].last_heard == before
    assert wire.consumer.receive(PROVIDER, Ready(RENTAL, "vm2", "x", 1, ""), wire.now) == []
    assert wire.provider.receive(STRANGER, Heartbeat(RENTAL), wire.now) == []
    assert wire.provider.receive(CONSUMER, request(), wire.now) == []  # a duplicate request
    assert wire.consumer.receive(PROVIDER, Refused("ff" * 16, "x"), wire.now) == []


@pytest.mark.parametrize("core", [ProviderCore, ConsumerCore])
def test_an_idle_core_has_no_deadline(core: type) -> None:
    assert core(TIMING).next_deadline() is None
    assert core(TIMING).tick(5.0) == []


def test_a_consumer_that_restarts_learns_what_it_owes_from_the_provider() -> None:
    wire = Wire()
    wire.to_ready()
    wire.advance(30)
    journal = wire.consumer.rentals[RENTAL]
    wire.consumer = ConsumerCore(TIMING)  # kill -9: everything in memory is gone
    wire.advance(TIMING.grace_s + 1)
    assert len(wire.taken(DeleteVm)) == 1
    wire.run(wire.provider.vm_deleted(RENTAL, None, wire.now))
    assert wire.provider.leases == {}
    wire.run(wire.consumer.resume(PROVIDER, journal.request, SESSION, PRICE, 10**9, wire.now))
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and 29_000 <= settle.billable_ms <= 30_000  # the provider's word, lower


def test_a_resumed_rental_the_provider_forgot_settles_the_journal() -> None:
    wire = Wire()
    wire.run(wire.consumer.resume(PROVIDER, request(), SESSION, PRICE, 12_345, wire.now))
    wire.advance(TIMING.release_timeout_s + 1)
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == 12_345


@pytest.mark.parametrize(
    ("confirmed", "consumer", "short", "reason"),
    [(False, None, 0, "its witnesses did not confirm escrow"), (True, STRANGER, 0, "locks another consumer's funds"),
     (True, CONSUMER, 1, "holds 239, less than the 240 admitted")],
)  # fmt: skip
def test_no_vm_unless_the_witnesses_confirm_the_consumers_own_lock_for_the_admitted_amount(
    confirmed: bool, consumer: PeerId | None, short: int, reason: str
) -> None:
    wire = Wire()
    wire.to_admitted()
    wire.run(wire.consumer.lock_done(RENTAL, True, SESSION, None, wire.now))
    wire.confirm(confirmed, consumer, 2 * PRICE - short)
    assert wire.taken(CreateVm) == []
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == 0  # refunded in full
    assert wire.provider.leases == {}
    failed = [a for a in wire.taken(Report) if isinstance(a, Report) and a.step == "failed"]
    assert failed and reason in failed[0].text


def test_a_release_before_the_lock_is_confirmed_creates_no_vm() -> None:
    wire = Wire()
    wire.to_admitted()
    wire.run(wire.consumer.lock_done(RENTAL, True, SESSION, None, wire.now))
    wire.run(wire.consumer.release(RENTAL, wire.now))
    wire.confirm()
    assert wire.taken(CreateVm) == [] and wire.provider.leases == {}
    (settle,) = wire.taken(Settle)
    assert isinstance(settle, Settle) and settle.billable_ms == 0
