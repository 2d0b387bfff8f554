"""SWIM membership for one network, as a pure state machine.

``Membership`` owns one node's view of one network: the signed records of the
members, their liveness, the probe in flight, and the queue of updates still
to disseminate. The caller feeds it received frames (``receive``), the passing
of time (``tick``, due at ``next_deadline()``) and bootstrap peers (``join``),
always with ``now``, and a random source; it returns actions (``Send`` a frame
to a peer; ``PeerChanged``). No sockets, no clocks, no asyncio: the asyncio
adapter and the simulator drive it alike.

The protocol, per period of ``probe_interval`` (one *round*):

- probe one member, chosen in randomised round-robin order, with a ``Ping``;
  without an ``Ack`` after ``probe_timeout``, ask ``indirect_probes`` others to
  probe it (``PingReq``); without any ack by the end of the round, suspect it;
- a suspect that does not refute (by signing a newer record) within the
  suspicion timeout is declared dead;
- every message piggybacks the least-sent queued updates that fit its byte
  budget; each update is sent ``retransmit_mult * ceil(log10(n + 1))`` times;
- every ``sync_every`` rounds, push-pull anti-entropy (``Sync``) with one
  random member, so late joiners and lost updates catch up.

Touches nothing.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.discovery import Liveness, PeerInfo
from omerta_core.randomness import RandomSource, system_random
from omerta_discovery_gossip import wire
from omerta_discovery_gossip.errors import WireError
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.peer_record import MAX_ENDPOINTS, PeerRecord, create_record
from omerta_discovery_gossip.wire import Ack, Alive, Dead, Ping, PingReq, Suspect, Sync, Update

#: Reflected endpoints kept in our own record: the latest two cover a NAT rebinding in progress.
MAX_REFLECTED = 2
#: Anti-entropy digest entries per Sync: 64 entries of ~20 bytes keep the digest near 1.3 kB;
#: larger networks send the digest of one random slice of the key space, and successive rounds cover the rest.
MAX_DIGEST_ENTRIES = 64
#: Records sent in answer to one Sync: bounds the burst a late joiner can cause.
MAX_SYNC_RECORDS = 64
#: Bytes of records per Sync message: they stay under a 1,280-byte IPv6 minimum MTU with the headers.
SYNC_CHUNK_BYTES = 1000
#: Members tracked per network: far above any network we expect, low enough that a member minting
#: identities cannot exhaust memory; records of new peers beyond it are dropped and counted.
MAX_MEMBERS = 10_000
#: Addresses that a socket binds to but nobody can send to.
UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", ""})
#: Distinct members that must report the same reflected endpoint before it enters our signed record:
#: the ``observed`` field is unsigned, so one member alone must not be able to plant an address in it.
REFLECTION_QUORUM = 2
#: Reflected endpoints awaiting confirmation; the oldest is forgotten first.
MAX_PENDING_REFLECTIONS = 16


@dataclass(frozen=True)
class SwimSettings:
    """Timing and fan-out of the protocol (seconds and counts)."""

    probe_interval: float = 1.0
    #: Wait for a direct ack this long before asking others to probe.
    probe_timeout: float = 0.4
    #: Members asked to probe indirectly: 3 makes a false suspicion from one lossy path unlikely.
    indirect_probes: int = 3
    #: Suspicion lasts suspicion_mult * log2(n + 1) rounds: time for the rumour to reach the
    #: suspect and its refutation to come back, both of which spread in O(log n) rounds.
    suspicion_mult: float = 2.0
    #: Each update is piggybacked retransmit_mult * ceil(log10(n + 1)) times (memberlist's rule): enough
    #: for an infection-style spread to reach everyone with high probability; anti-entropy mends the rest.
    retransmit_mult: int = 4
    sync_every: int = 4
    #: Piggybacked update bytes per probe message: a Ping stays within one 1,280-byte datagram.
    piggyback_bytes: int = 900
    #: How long a dead member's tombstone blocks its stale records from coming back.
    tombstone_s: float = 300.0


@dataclass(frozen=True)
class Send:
    """Send ``frame`` to ``peer`` on the gossip channel."""

    peer: PeerId
    frame: bytes
    reliable: bool = False


@dataclass(frozen=True)
class PeerChanged:
    """A member's record or liveness changed."""

    info: PeerInfo


Action = Send | PeerChanged


@dataclass
class Member:
    record: PeerRecord
    liveness: Liveness
    since: float
    suspect_deadline: float = math.inf


@dataclass
class _Probe:
    target: PeerId
    seq: int
    sent_at: float
    acked: bool = False
    indirect_sent: bool = False


@dataclass
class _Relay:
    requester: PeerId
    their_seq: int
    deadline: float


@dataclass
class _Queued:
    update: Update
    encoded: bytes
    sent: int = 0


@dataclass
class _Self:
    local: tuple[Endpoint, ...] = ()
    reflected: tuple[Endpoint, ...] = ()
    relays: tuple[PeerId, ...] = ()
    capabilities: dict[str, Any] = field(default_factory=dict)


class Membership:
    """One node's SWIM state in one network."""

    def __init__(
        self,
        identity: Identity,
        network: Network,
        *,
        version: int,
        now: float,
        settings: SwimSettings | None = None,
        local_endpoints: tuple[Endpoint, ...] = (),
        rng: RandomSource | None = None,
    ) -> None:
        self.identity = identity
        self.network = network
        self.settings = settings or SwimSettings()
        self.counters: Counter[str] = Counter()
        self.rounds = 0
        self._rng = rng or system_random()
        self._self = _Self(local=_usable(local_endpoints))
        self._record = self._sign(version)
        self._members: dict[PeerId, Member] = {}
        #: Indexes into ``_members`` so that a tick costs O(suspects + tombstones), not O(members).
        self._suspects: dict[PeerId, float] = {}
        self._tombstones: dict[PeerId, float] = {}
        self._queue: dict[PeerId, _Queued] = {}
        self._order: list[PeerId] = []
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._seeds: set[PeerId] = set()
        self._pulled: dict[PeerId, float] = {}
        self._seq = 0
        self._next_round_at = now
        #: Reflected endpoints not yet confirmed, and which members reported each.
        self._reflections: dict[Endpoint, set[PeerId]] = {}

    # -- views ------------------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def record(self) -> PeerRecord:
        """This node's own current signed record."""
        return self._record

    def member(self, peer: PeerId) -> Member | None:
        return self._members.get(peer)

    def members(self) -> dict[PeerId, Member]:
        return dict(self._members)

    def peers(self) -> list[PeerInfo]:
        return [self._info(m) for m in self._members.values()]

    def alive_count(self) -> int:
        return sum(1 for m in self._members.values() if m.liveness is not Liveness.DEAD)

    # -- inputs -------------------------------------------------------------------

    def join(self, peer: PeerId, now: float) -> list[Action]:
        """Use ``peer`` (a bootstrap node) to join: push our record, pull everyone's."""
        if peer == self.peer_id:
            return []
        self._seeds.add(peer)
        return self._sync_with(peer)

    def add_cached(self, record: PeerRecord, now: float) -> list[Action]:
        """Adopt a record remembered from an earlier run; it is probed like any member."""
        if record.network != self.network.id or record.peer == self.peer_id or not record.is_valid():
            return []
        known = self._members.get(record.peer)
        if known is not None and known.record.version >= record.version:
            return []
        self._admit(record, now)
        return [PeerChanged(self._info(self._members[record.peer]))]

    def update_self(
        self,
        now: float,
        *,
        local_endpoints: tuple[Endpoint, ...] | None = None,
        relays: tuple[PeerId, ...] | None = None,
        capabilities: dict[str, Any] | None = None,
    ) -> None:
        """Change what our record says; a changed record is re-signed and disseminated."""
        new = replace(
            self._self,
            local=self._self.local if local_endpoints is None else _usable(local_endpoints),
            relays=self._self.relays if relays is None else relays,
            capabilities=self._self.capabilities if capabilities is None else capabilities,
        )
        if new != self._self:
            self._self = new
            self._bump(self._record.version + 1)

    def tick(self, now: float) -> list[Action]:
        """Advance time: indirect probes, suspicion timeouts, and a new round when one is due."""
        actions: list[Action] = []
        probe = self._probe
        if probe and not probe.acked and not probe.indirect_sent and now >= probe.sent_at + self.settings.probe_timeout:
            probe.indirect_sent = True
            actions += self._indirect_probe(probe)
        for peer, deadline in list(self._suspects.items()):
            if now >= deadline:
                actions += self._apply(Dead(peer, self._members[peer].record.version), now)
        for peer, expiry in list(self._tombstones.items()):
            if now >= expiry:
                del self._tombstones[peer], self._members[peer]
        self._relays = {seq: r for seq, r in self._relays.items() if r.deadline > now}
        self._pulled = {peer: until for peer, until in self._pulled.items() if until > now}
        if now >= self._next_round_at:
            actions += self._start_round(now)
        return actions

    def next_deadline(self) -> float:
        """When :meth:`tick` next has work to do: the next round, probe timeout, suspicion or tombstone expiry."""
        best = self._next_round_at
        probe = self._probe
        if probe is not None and not probe.acked and not probe.indirect_sent:
            best = min(best, probe.sent_at + self.settings.probe_timeout)
        return min((best, *self._suspects.values(), *self._tombstones.values()))

    def receive(self, sender: PeerId, frame: bytes, now: float, source: Endpoint | None = None) -> list[Action]:
        """Handle one frame from ``sender`` (authenticated by the transport) seen from ``source``."""
        self.counters["received_messages"] += 1
        self.counters["received_bytes"] += len(frame)
        body = self.network.open(frame)
        if body is None:
            self.counters["bad_mac"] += 1
            return []
        try:
            message = wire.decode(body)
        except WireError:
            self.counters["malformed"] += 1
            return []
        if sender == self.peer_id:
            return []
        self.counters["rejected_records"] += len(message.rejected)
        actions: list[Action] = []
        if isinstance(message, Sync):
            for record in message.records:
                actions += self._apply(Alive(record), now)
            actions += self._answer_sync(sender, message, source)
            self._reflect(sender, message.observed)
            member = self._members.get(sender)
            if member is not None and member.liveness is not Liveness.ALIVE:
                actions.append(self._send(sender, Ping(self._next_seq())))
            return actions
        for update in message.updates:
            actions += self._apply(update, now)
        if isinstance(message, Ping):
            actions.append(self._send(sender, Ack(message.seq, observed=source)))
        elif isinstance(message, Ack):
            actions += self._on_ack(sender, message)
        else:
            actions += self._on_ping_req(sender, message, now)
        if sender not in self._members and now >= self._pulled.get(sender, -math.inf):
            self._pulled[sender] = now + self.settings.probe_interval * self.settings.sync_every
            actions += self._sync_with(sender)
        return actions

    # -- probing ------------------------------------------------------------------

    def _start_round(self, now: float) -> list[Action]:
        actions: list[Action] = []
        probe = self._probe
        if probe is not None and not probe.acked:
            member = self._members.get(probe.target)
            if member is not None and member.liveness is Liveness.ALIVE:
                self.counters["probes_failed"] += 1
                actions += self._apply(Suspect(probe.target, member.record.version), now)
        self._probe = None
        self.rounds += 1
        self._next_round_at = max(self._next_round_at + self.settings.probe_interval, now)
        target = self._next_target()
        if target is not None:
            self._probe = _Probe(target, self._next_seq(), now)
            actions.append(self._send(target, Ping(self._probe.seq)))
        if self.rounds % self.settings.sync_every == 0 or not self._live_peers():
            partner = self._sync_partner()
            if partner is not None:
                actions += self._sync_with(partner)
        return actions

    def _next_target(self) -> PeerId | None:
        while self._order:
            peer = self._order.pop()
            member = self._members.get(peer)
            if member is not None and member.liveness is not Liveness.DEAD:
                return peer
        self._order = self._live_peers()
        self._rng.shuffle(self._order)
        return self._order.pop() if self._order else None

    def _indirect_probe(self, probe: _Probe) -> list[Action]:
        helpers = [p for p in self._live_peers() if p != probe.target]
        chosen = self._rng.sample(helpers, min(self.settings.indirect_probes, len(helpers)))
        return [self._send(helper, PingReq(probe.seq, probe.target)) for helper in chosen]

    def _on_ack(self, sender: PeerId, message: Ack) -> list[Action]:
        if self._probe is not None and self._probe.seq == message.seq:
            self._probe.acked = True
            self._reflect(sender, message.observed)
            return []
        relay = self._relays.pop(message.seq, None)
        if relay is None:
            return []
        return [self._send(relay.requester, Ack(relay.their_seq))]

    def _on_ping_req(self, sender: PeerId, message: PingReq, now: float) -> list[Action]:
        if message.target == self.peer_id:
            return [self._send(sender, Ack(message.seq))]
        seq = self._next_seq()
        self._relays[seq] = _Relay(sender, message.seq, now + self.settings.probe_interval)
        return [self._send(message.target, Ping(seq))]

    # -- anti-entropy ---------------------------------------------------------------

    def _sync_partner(self) -> PeerId | None:
        live = self._live_peers()
        if live:
            return self._rng.choice(live)
        seeds = sorted(self._seeds)
        return self._rng.choice(seeds) if seeds else None

    def _sync_with(self, peer: PeerId) -> list[Action]:
        digest, part = self._digest()
        return [self._send(peer, Sync(digest, [self._record], want_reply=True, part=part), reliable=True)]

    def _digest(self) -> tuple[list[tuple[bytes, int]], tuple[int, int]]:
        """Our (key prefix, version) pairs: all of them, or one random slice when there are too many."""
        records = [self._record] + [m.record for m in self._members.values() if m.liveness is not Liveness.DEAD]
        slices = 1
        while len(records) > MAX_DIGEST_ENTRIES * slices:
            slices *= 2
        part = (self._rng.randrange(slices), slices)
        entries = [(r.peer.public_key[: wire.DIGEST_KEY_BYTES], r.version) for r in records if _in_part(r.peer, part)]
        return entries, part

    def _answer_sync(self, sender: PeerId, message: Sync, source: Endpoint | None) -> list[Action]:
        if message.digest is None:
            return []
        known = dict(message.digest)
        candidates = [self._record] + [m.record for m in self._members.values() if m.liveness is not Liveness.DEAD]
        missing = [
            r
            for r in candidates
            if r.peer != sender
            and _in_part(r.peer, message.part)
            and known.get(r.peer.public_key[: wire.DIGEST_KEY_BYTES], -1) < r.version
        ]
        self._rng.shuffle(missing)
        missing = missing[:MAX_SYNC_RECORDS]
        if not missing and not message.want_reply:
            return []
        digest, part = self._digest() if message.want_reply else (None, (0, 1))
        chunks = _chunk_records(missing)
        first = Sync(digest, chunks[0], observed=source, part=part)
        rest = [Sync(None, chunk) for chunk in chunks[1:]]
        return [self._send(sender, m, reliable=True) for m in [first, *rest]]

    # -- applying updates -------------------------------------------------------------

    def _apply(self, update: Update, now: float) -> list[Action]:
        if isinstance(update, Alive):
            return self._apply_alive(update.record, now)
        if update.peer == self.peer_id:
            if update.version >= self._record.version:
                self.counters["refutations"] += 1
                self._bump(update.version + 1)
            return []
        member = self._members.get(update.peer)
        if member is None or update.version != member.record.version:
            if member is not None and update.version < member.record.version:
                self.counters["stale_updates"] += 1
            return []
        if isinstance(update, Suspect):
            if member.liveness is not Liveness.ALIVE:
                return []
            member.liveness = Liveness.SUSPECT
            member.suspect_deadline = now + self._suspicion_timeout()
            self._suspects[update.peer] = member.suspect_deadline
        else:
            if member.liveness is Liveness.DEAD:
                return []
            member.liveness = Liveness.DEAD
            member.suspect_deadline = math.inf
            self._suspects.pop(update.peer, None)
            self._tombstones[update.peer] = now + self.settings.tombstone_s
        member.since = now
        self._enqueue(update)
        return [PeerChanged(self._info(member))]

    def _apply_alive(self, record: PeerRecord, now: float) -> list[Action]:
        if record.network != self.network.id:
            self.counters["foreign_records"] += 1
            return []
        if record.peer == self.peer_id:
            if record.version >= self._record.version and record != self._record:
                self.counters["refutations"] += 1
                self._bump(record.version + 1)
            return []
        member = self._members.get(record.peer)
        if member is not None and record.version <= member.record.version:
            if record.version < member.record.version:
                self.counters["stale_records"] += 1
            return []
        if member is None and len(self._members) >= MAX_MEMBERS:
            self.counters["members_full"] += 1
            return []
        self._admit(record, now)
        self._enqueue(Alive(record))
        return [PeerChanged(self._info(self._members[record.peer]))]

    def _admit(self, record: PeerRecord, now: float) -> None:
        is_new = record.peer not in self._members
        self._members[record.peer] = Member(record, Liveness.ALIVE, now)
        self._suspects.pop(record.peer, None)
        self._tombstones.pop(record.peer, None)
        if is_new:
            self._order.insert(self._rng.randint(0, len(self._order)), record.peer)

    def _reflect(self, sender: PeerId, observed: Endpoint | None) -> None:
        """Take ``sender``'s report of where it sees us; only a confirmed, well-formed address enters our record."""
        if observed is None or observed in self._record.endpoints:
            return
        if not reflectable(observed):
            self.counters["reflections_refused"] += 1
            return
        reporters = self._reflections.pop(observed, set())
        reporters.add(sender)
        if len(reporters) < REFLECTION_QUORUM:
            self._reflections[observed] = reporters
            while len(self._reflections) > MAX_PENDING_REFLECTIONS:
                del self._reflections[next(iter(self._reflections))]
            return
        self.counters["reflections_confirmed"] += 1
        reflected = (observed, *[e for e in self._self.reflected if e != observed])[:MAX_REFLECTED]
        self._self = replace(self._self, reflected=reflected)
        self._bump(self._record.version + 1)

    def _bump(self, version: int) -> None:
        self._record = self._sign(version)
        self._enqueue(Alive(self._record))

    def _sign(self, version: int) -> PeerRecord:
        endpoints = tuple(dict.fromkeys(self._self.local + self._self.reflected))[:MAX_ENDPOINTS]
        return create_record(
            self.identity, self.network.id, endpoints, version, self._self.relays, self._self.capabilities
        )

    # -- dissemination -----------------------------------------------------------------

    def _enqueue(self, update: Update) -> None:
        self._queue[update.peer] = _Queued(update, wire.encode_update(update))

    def _piggyback(self, recipient: PeerId) -> list[bytes]:
        limit = self.settings.retransmit_mult * math.ceil(math.log10(len(self._members) + 2))
        budget = self.settings.piggyback_bytes
        chosen: list[bytes] = []
        notice = self._members.get(recipient)
        if notice is not None and notice.liveness is not Liveness.ALIVE:
            # Tell a suspect or dead member so, whatever the queue holds: it refutes by re-signing.
            kind = Suspect if notice.liveness is Liveness.SUSPECT else Dead
            encoded = wire.encode_update(kind(recipient, notice.record.version))
            budget -= len(encoded)
            chosen.append(encoded)
        for peer, item in sorted(self._queue.items(), key=lambda kv: kv[1].sent):
            stale_for_recipient = peer == recipient and isinstance(item.update, Alive)
            if stale_for_recipient or len(item.encoded) > budget:
                continue
            budget -= len(item.encoded)
            chosen.append(item.encoded)
            item.sent += 1
            if item.sent >= limit:
                del self._queue[peer]
        return chosen

    def _send(self, peer: PeerId, message: wire.Message, *, reliable: bool = False) -> Send:
        updates = None if isinstance(message, Sync) else self._piggyback(peer)
        frame = self.network.seal(wire.encode(message, updates))
        self.counters["sent_messages"] += 1
        self.counters["sent_bytes"] += len(frame)
        return Send(peer, frame, reliable)

    # -- helpers ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _live_peers(self) -> list[PeerId]:
        return [p for p, m in self._members.items() if m.liveness is not Liveness.DEAD]

    def _suspicion_timeout(self) -> float:
        rounds = self.settings.suspicion_mult * max(1.0, math.log2(len(self._members) + 1))
        return rounds * self.settings.probe_interval

    def _info(self, member: Member) -> PeerInfo:
        record = member.record
        return PeerInfo(
            peer=record.peer,
            network=self.network.id_hex,
            endpoints=record.endpoints,
            liveness=member.liveness,
            relays=record.relays,
            capabilities=dict(record.capabilities),
            version=record.version,
        )


def reflectable(endpoint: Endpoint) -> bool:
    """Whether ``endpoint`` is an address others could send to: a canonical unicast IP literal and a port."""
    try:
        address = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return False
    if str(address) != endpoint.host or not 0 < endpoint.port < 65536:
        return False
    return not (address.is_unspecified or address.is_multicast or address.is_reserved or address.is_link_local)


def _usable(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    return tuple(e for e in endpoints if e.host not in UNSPECIFIED_HOSTS)


def _in_part(peer: PeerId, part: tuple[int, int]) -> bool:
    index, count = part
    return int.from_bytes(peer.public_key[:4], "big") % count == index


def _chunk_records(records: list[PeerRecord]) -> list[list[PeerRecord]]:
    chunks: list[list[PeerRecord]] = [[]]
    size = 0
    for record in records:
        cost = record.wire_size()
        if chunks[-1] and size + cost > SYNC_CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += cost
    return chunks
