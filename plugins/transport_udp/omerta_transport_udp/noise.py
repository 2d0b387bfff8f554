"""Noise_IK_25519_ChaChaPoly_BLAKE2s: the handshake that opens every session.

A direct reading of the Noise specification (revision 34) for the one pattern
this transport uses, built on pynacl (X25519, ChaCha20-Poly1305 IETF) and
hashlib (BLAKE2s, HMAC). Pure computation: the ephemeral key comes from the caller's
random source; touches nothing.

    IK:
      <- s
      ...
      -> e, es, s, ss
      <- e, ee, se
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import nacl.bindings
import nacl.exceptions

from omerta_core.randomness import RandomSource, system_random

PROTOCOL_NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2s"
HASHLEN = 32
DHLEN = 32
TAGLEN = 16
#: Noise reserves the all-ones nonce; a cipher state refuses to reach it.
MAX_NONCE = 2**64 - 1


class NoiseError(Exception):
    """A handshake message that does not authenticate, or a misuse of the state machine."""


def chacha_nonce(counter: int) -> bytes:
    """The 96-bit ChaCha20-Poly1305 nonce for ``counter``: 32 zero bits, then 64-bit little-endian."""
    return b"\x00\x00\x00\x00" + struct.pack("<Q", counter)


def dh(private: bytes, public: bytes) -> bytes:
    try:
        return nacl.bindings.crypto_scalarmult(private, public)
    except nacl.exceptions.RuntimeError as exc:  # low-order point: the result would be all zeros
        raise NoiseError("invalid X25519 public key") from exc


def public_key(private: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult_base(private)


def generate_private_key(rng: RandomSource | None = None) -> bytes:
    """A fresh X25519 private key drawn from ``rng`` (the operating system's by default)."""
    return (rng or system_random()).randbytes(DHLEN)


def blake2s(data: bytes) -> bytes:
    return hashlib.blake2s(data).digest()


def hkdf(chaining_key: bytes, material: bytes, outputs: int) -> list[bytes]:
    """Noise's HKDF with HMAC-BLAKE2s, returning 2 or 3 outputs of HASHLEN bytes."""
    temp = hmac.new(chaining_key, material, hashlib.blake2s).digest()
    result: list[bytes] = []
    previous = b""
    for index in range(1, outputs + 1):
        previous = hmac.new(temp, previous + bytes([index]), hashlib.blake2s).digest()
        result.append(previous)
    return result


def encrypt(key: bytes, counter: int, plaintext: bytes, ad: bytes) -> bytes:
    return nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, chacha_nonce(counter), key)


def decrypt(key: bytes, counter: int, ciphertext: bytes, ad: bytes) -> bytes:
    try:
        return nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, chacha_nonce(counter), key)
    except nacl.exceptions.CryptoError as exc:
        raise NoiseError("message does not authenticate") from exc


class CipherState:
    """A key and a nonce counter (Noise §5.1)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self.nonce = 0

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.key is None:
            return plaintext
        if self.nonce >= MAX_NONCE:
            raise NoiseError("cipher state exhausted")
        out = encrypt(self.key, self.nonce, plaintext, ad)
        self.nonce += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.key is None:
            return ciphertext
        if self.nonce >= MAX_NONCE:
            raise NoiseError("cipher state exhausted")
        out = decrypt(self.key, self.nonce, ciphertext, ad)
        self.nonce += 1
        return out


class SymmetricState:
    """Chaining key, handshake hash and the current cipher (Noise §5.2)."""

    def __init__(self) -> None:
        self.h = PROTOCOL_NAME.ljust(HASHLEN, b"\x00") if len(PROTOCOL_NAME) <= HASHLEN else blake2s(PROTOCOL_NAME)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, material: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, material, 2)
        self.cipher = CipherState(temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = blake2s(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        first, second = hkdf(self.ck, b"", 2)
        return CipherState(first), CipherState(second)


class IKHandshake:
    """One side of a Noise IK handshake.

    The initiator must know the responder's static public key; the responder
    learns the initiator's from the first message. After both messages,
    :meth:`split` gives (send, receive) cipher states for this side.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        static_private: bytes,
        prologue: bytes,
        remote_static: bytes | None = None,
        ephemeral_private: bytes | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        if initiator and remote_static is None:
            raise NoiseError("an IK initiator needs the responder's static key")
        self.initiator = initiator
        self.s = static_private
        self.s_pub = public_key(static_private)
        self.e = ephemeral_private if ephemeral_private is not None else generate_private_key(rng)
        self.e_pub = public_key(self.e)
        self.rs = remote_static
        self.re: bytes | None = None
        self.state = SymmetricState()
        self.state.mix_hash(prologue)
        self.state.mix_hash(remote_static if initiator else self.s_pub)  # type: ignore[arg-type]

    @property
    def handshake_hash(self) -> bytes:
        return self.state.h

    def write_message_1(self, payload: bytes) -> bytes:
        """Initiator: ``-> e, es, s, ss`` followed by the encrypted payload."""
        assert self.rs is not None
        st = self.state
        st.mix_hash(self.e_pub)
        st.mix_key(dh(self.e, self.rs))
        encrypted_static = st.encrypt_and_hash(self.s_pub)
        st.mix_key(dh(self.s, self.rs))
        return self.e_pub + encrypted_static + st.encrypt_and_hash(payload)

    def read_message_1(self, message: bytes) -> bytes:
        """Responder: consume message 1, learn the initiator's static key, return the payload."""
        if len(message) < DHLEN + DHLEN + TAGLEN + TAGLEN:
            raise NoiseError("handshake message 1 too short")
        st = self.state
        self.re = message[:DHLEN]
        st.mix_hash(self.re)
        st.mix_key(dh(self.s, self.re))
        self.rs = st.decrypt_and_hash(message[DHLEN : DHLEN * 2 + TAGLEN])
        st.mix_key(dh(self.s, self.rs))
        return st.decrypt_and_hash(message[DHLEN * 2 + TAGLEN :])

    def write_message_2(self, payload: bytes) -> bytes:
        """Responder: ``<- e, ee, se`` followed by the encrypted payload."""
        assert self.re is not None and self.rs is not None
        st = self.state
        st.mix_hash(self.e_pub)
        st.mix_key(dh(self.e, self.re))
        st.mix_key(dh(self.e, self.rs))
        return self.e_pub + st.encrypt_and_hash(payload)

    def read_message_2(self, message: bytes) -> bytes:
        """Initiator: consume message 2 and return its payload."""
        if len(message) < DHLEN + TAGLEN:
            raise NoiseError("handshake message 2 too short")
        st = self.state
        self.re = message[:DHLEN]
        st.mix_hash(self.re)
        st.mix_key(dh(self.e, self.re))
        st.mix_key(dh(self.s, self.re))
        return st.decrypt_and_hash(message[DHLEN:])

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) cipher states for this side once the handshake is complete."""
        first, second = self.state.split()
        return (first, second) if self.initiator else (second, first)
