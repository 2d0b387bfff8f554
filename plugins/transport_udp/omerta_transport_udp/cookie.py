"""Handshake flood defence: mac1/mac2 and cookie replies (as WireGuard), plus per-source rate limits.

Every handshake message carries ``mac1`` (keyed by the receiver's static key, so
only someone who knows whom they address can make one) and ``mac2`` (keyed by
a cookie proving the sender owns its source address). When the handshakes a
node receives exceed :data:`UNDER_LOAD_PER_S`, it answers messages whose mac2
is missing or stale with an encrypted cookie instead of doing any Diffie-Hellman,
and processes only those that prove their address; each source address is then
held to a token bucket. Pure; ``now`` and the random source are passed in. Touches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict

import nacl.bindings
import nacl.exceptions

from omerta_core.randomness import RandomSource, system_random
from omerta_transport_udp import wire

MAC1_LABEL = b"mac1----"
COOKIE_LABEL = b"cookie--"
#: A responder's cookie secret and an initiator's stored cookie live this long (WireGuard's value).
COOKIE_SECRET_LIFETIME_S = 120.0
#: Received handshakes per second above which a node asks for cookies.
UNDER_LOAD_PER_S = 100
#: Handshakes per second and burst allowed from one source address once under load or not.
SOURCE_RATE_PER_S = 20.0
SOURCE_BURST = 10.0
#: Source addresses tracked by the rate limiter; the least recently seen is forgotten first.
MAX_TRACKED_SOURCES = 4096


def _keyed(key: bytes, data: bytes, size: int = wire.MAC_LEN) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=size).digest()


def mac1_key(static_public: bytes) -> bytes:
    return hashlib.blake2s(MAC1_LABEL + static_public).digest()


def cookie_key(static_public: bytes) -> bytes:
    return hashlib.blake2s(COOKIE_LABEL + static_public).digest()


def compute_mac1(receiver_static_public: bytes, body: bytes) -> bytes:
    return _keyed(mac1_key(receiver_static_public), body)


def compute_mac2(cookie: bytes | None, body_with_mac1: bytes) -> bytes:
    return _keyed(cookie, body_with_mac1) if cookie else bytes(wire.MAC_LEN)


def source_bytes(host: str, port: int) -> bytes:
    return host.encode() + b"|" + port.to_bytes(2, "little")


class CookieChecker:
    """The responder's side: verifies macs and makes cookie replies."""

    def __init__(self, static_public: bytes, rng: RandomSource | None = None) -> None:
        self._rng = rng or system_random()
        self._mac1_key = mac1_key(static_public)
        self._cookie_key = cookie_key(static_public)
        self._secret = self._rng.randbytes(32)
        self._secret_born = float("-inf")

    def mac1_valid(self, body: bytes, mac1: bytes) -> bool:
        return hmac.compare_digest(_keyed(self._mac1_key, body), mac1)

    def _cookie(self, source: bytes, now: float) -> bytes:
        if now - self._secret_born > COOKIE_SECRET_LIFETIME_S:
            self._secret = self._rng.randbytes(32)
            self._secret_born = now
        return _keyed(self._secret, source)

    def mac2_valid(self, body_with_mac1: bytes, mac2: bytes, source: bytes, now: float) -> bool:
        return hmac.compare_digest(_keyed(self._cookie(source, now), body_with_mac1), mac2)

    def cookie_reply(self, receiver_index: int, mac1: bytes, source: bytes, now: float) -> bytes:
        nonce = self._rng.randbytes(wire.COOKIE_NONCE_LEN)
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            self._cookie(source, now), mac1, nonce, self._cookie_key
        )
        return wire.encode_cookie_reply(receiver_index, nonce, sealed)


def open_cookie_reply(reply: wire.CookieReply, responder_static_public: bytes, mac1: bytes) -> bytes | None:
    """The initiator's side: the cookie inside ``reply``, or ``None`` if it does not authenticate."""
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            reply.encrypted_cookie, mac1, reply.nonce, cookie_key(responder_static_public)
        )
    except nacl.exceptions.CryptoError:
        return None


class LoadMeter:
    """Counts events in the current one-second window."""

    def __init__(self, limit: int = UNDER_LOAD_PER_S) -> None:
        self.limit = limit
        self._window_start = float("-inf")
        self._count = 0

    def record(self, now: float) -> bool:
        """Count one event; True when the node is now under load."""
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._count = 0
        self._count += 1
        return self._count > self.limit


class SourceRateLimiter:
    """A token bucket per source address, with a bounded table."""

    def __init__(self, rate_per_s: float = SOURCE_RATE_PER_S, burst: float = SOURCE_BURST) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str, now: float) -> bool:
        tokens, last = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_TRACKED_SOURCES:
            self._buckets.popitem(last=False)
        return allowed
