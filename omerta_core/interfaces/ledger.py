"""What a ledger engine provides: chains, balances, trust, and escrow for renting a VM.

The escrow calls are typed: each returns a frozen result saying whether it succeeded and,
if not, one line why, so a caller (the rental protocol) never reads a ledger's private
dictionaries or casts to a particular backend. Touches nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import PeerId, Service

#: Answers a witness's question "does the VM of this escrow session run?" from the hypervisor's state.
VmProbe = Callable[[], bool]

#: The failure code of a lock refused before any witness is asked: the amount exceeds this node's available balance.
INSUFFICIENT_FUNDS = "insufficient_funds"


@dataclass(frozen=True)
class EscrowLockResult:
    """The end of an escrow lock (the consumer's funds locked for one provider, with witnesses)."""

    session: str
    locked: bool
    amount: int
    witnesses: tuple[PeerId, ...] = ()
    failure_reason: str | None = None
    #: The failure as a code a caller can test (e.g. :data:`INSUFFICIENT_FUNDS`, ``lock_rejected``); None if locked.
    failure_code: str | None = None


@dataclass(frozen=True)
class EscrowTopUpResult:
    """The end of a top-up round: the lock's new total when it succeeded."""

    session: str
    topped_up: bool
    total: int
    failure_reason: str | None = None


@dataclass(frozen=True)
class EscrowConfirmation:
    """The provider's view of a lock: whether its witnesses confirmed it to the provider, for whom and how much."""

    session: str
    confirmed: bool
    consumer: PeerId | None = None
    amount: int = 0
    failure_reason: str | None = None
    #: The hourly rate the consumer signed in its lock request (what a claim of the session may name).
    hourly_rate: int = 0


@dataclass(frozen=True)
class VmSessionResult:
    """The witnesses' verdict on a VM session announced by its provider."""

    session: str
    verified: bool
    state: str


@dataclass(frozen=True)
class AttestationResult:
    """The witnesses' attestation of a VM session's duration, once it ended."""

    session: str
    attested: bool
    duration_ms: int | None
    reason: str | None = None


@dataclass(frozen=True)
class SettlementResult:
    """The end of a settlement: the integer split of the locked total."""

    session: str
    settled: bool
    duration_ms: int
    provider_payment: int = 0
    burn: int = 0
    refund: int = 0
    failure_reason: str | None = None


@runtime_checkable
class Ledger(Service, Protocol):
    """Keeps this identity's chain, verifies others' chains, computes trust locally, and runs escrow."""

    def balance(self, peer: PeerId) -> int:
        """The balance of ``peer`` (available, locked escrow excluded) as derived from the chains held."""

    def trust(self, peer: PeerId) -> float:
        """This node's local trust in ``peer``."""

    async def lock_escrow(
        self, provider: PeerId, amount: int, *, hourly_rate: int = 0, timeout: float | None = None
    ) -> EscrowLockResult:
        """As consumer, lock ``amount`` for ``provider`` with witnesses, signing ``hourly_rate`` as the agreed rate;
        a refusal is a result, not an error. An ``amount`` above this node's available balance is refused before
        any witness is asked (``failure_code`` :data:`INSUFFICIENT_FUNDS`)."""

    async def top_up_escrow(self, session: str, amount: int, *, timeout: float | None = None) -> EscrowTopUpResult:
        """As consumer, add ``amount`` to the open lock ``session``."""

    async def confirm_escrow(self, session: str, *, timeout: float) -> EscrowConfirmation:
        """As provider, wait up to ``timeout`` until the witnesses confirm lock ``session`` to this node."""

    async def start_vm_session(self, session: str, probe: VmProbe) -> VmSessionResult:
        """As provider of lock ``session``, announce its VM to the witnesses; ``probe`` answers their checks."""

    async def attest_vm_session(self, session: str, *, unbilled_ms: int = 0) -> AttestationResult:
        """As consumer or provider, end VM session ``session`` and wait for the witnesses' attested duration.

        A provider leaves its last ``unbilled_ms`` out of the attested duration: the consumer's silence before a
        lease lost on heartbeats, so the attestation ends at the last heartbeat heard, as the consumer bills it."""

    async def settle_escrow(self, session: str, duration_ms: int, hourly_rate: int) -> SettlementResult:
        """As consumer, settle lock ``session`` for ``duration_ms`` at ``hourly_rate`` units per hour (or record
        the settlement of its provider's claim, when there is one)."""

    async def claim_escrow(self, session: str) -> SettlementResult:
        """As provider of lock ``session`` whose consumer never settled: have the witnesses sign the split for the
        attested duration at the consumer's signed rate, and record the payment. Refused (a result) before the
        witnesses' abandon timeout; a session already paid is settled."""

    async def escrow_total(self, session: str, consumer: PeerId) -> int | None:
        """The total of open lock ``session`` as ``consumer``'s chain shows it (fetched first), or None."""

    async def sync(self, peers: list[PeerId]) -> None:
        """Fetch the newer blocks of ``peers`` (best effort, bounded in time)."""
