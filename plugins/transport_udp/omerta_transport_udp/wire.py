"""Wire format version 1: packet layouts and the frames inside a data packet.

Pure encoding and decoding; every malformed input raises :class:`WireError`
and nothing else. ``docs/wire.md`` describes the same layouts byte by byte.
Integers are little-endian (as in Noise and WireGuard).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from omerta_transport_udp.errors import BadChannelError

#: Wire format version, carried in the high nibble of every packet's first byte.
VERSION = 1
#: First bytes 0x10-0x1f belong to this transport; anything else is handed to raw-datagram listeners.
VERSION_NIBBLE = VERSION << 4

HANDSHAKE_INIT = 0x11
HANDSHAKE_RESPONSE = 0x12
COOKIE_REPLY = 0x13
DATA = 0x14
IDENTIFY_REQUEST = 0x15
IDENTIFY_REPLY = 0x16
#: Every packet type of this version by name (docs/wire.md §1; docs/vectors/udp.json has one of each).
PACKET_TYPES = {
    "handshake_init": HANDSHAKE_INIT,
    "handshake_response": HANDSHAKE_RESPONSE,
    "cookie_reply": COOKIE_REPLY,
    "data": DATA,
    "identify_request": IDENTIFY_REQUEST,
    "identify_reply": IDENTIFY_REPLY,
}

MAC_LEN = 16
TAG_LEN = 16
KEY_LEN = 32
INDEX_LEN = 4
COUNTER_LEN = 8
INCARNATION_LEN = 8
IDENTIFY_NONCE_LEN = 8
COOKIE_NONCE_LEN = 24

#: Initiator payload inside Noise message 1: Ed25519 public key, incarnation, timestamp (ns).
INIT_PAYLOAD_LEN = KEY_LEN + INCARNATION_LEN + 8
#: Noise message 1: e (32), encrypted s (32+16), encrypted payload (+16).
NOISE_MSG1_LEN = KEY_LEN + KEY_LEN + TAG_LEN + INIT_PAYLOAD_LEN + TAG_LEN
#: Responder payload inside Noise message 2: its incarnation.
RESPONSE_PAYLOAD_LEN = INCARNATION_LEN
NOISE_MSG2_LEN = KEY_LEN + RESPONSE_PAYLOAD_LEN + TAG_LEN

HANDSHAKE_INIT_LEN = 1 + INDEX_LEN + NOISE_MSG1_LEN + 2 * MAC_LEN
HANDSHAKE_RESPONSE_LEN = 1 + 2 * INDEX_LEN + NOISE_MSG2_LEN + 2 * MAC_LEN
COOKIE_REPLY_LEN = 1 + INDEX_LEN + COOKIE_NONCE_LEN + MAC_LEN + TAG_LEN
DATA_HEADER_LEN = 1 + INDEX_LEN + COUNTER_LEN
#: Bytes a data packet adds around its plaintext frames: header and AEAD tag.
DATA_OVERHEAD = DATA_HEADER_LEN + TAG_LEN
#: Identify requests are padded to the reply's size so they cannot amplify.
IDENTIFY_LEN = 1 + IDENTIFY_NONCE_LEN + KEY_LEN

# Frames inside a data packet's plaintext. An empty plaintext is a keepalive.
FRAME_DATAGRAM = 0x01
FRAME_RELIABLE = 0x02
FRAME_ACK = 0x03
#: Every frame kind by name (docs/wire.md §5; docs/vectors/udp.json has one of each).
FRAME_KINDS = {"datagram": FRAME_DATAGRAM, "reliable": FRAME_RELIABLE, "ack": FRAME_ACK}

FLAG_FIRST = 0x01
FLAG_LAST = 0x02

#: kind(1) channel tag(2); the datagram runs to the end of the packet.
DATAGRAM_FRAME_HEADER = 3
#: kind(1) seq(8) flags(1) length(2).
RELIABLE_FRAME_HEADER = 12
#: Extra header of a message's first fragment: total length(4) name length(1).
FIRST_FRAGMENT_EXTRA = 5
#: kind(1) next expected seq(8) range count(1).
ACK_FRAME_HEADER = 10
#: One selective-ack range: offset from next expected (4), length (2).
ACK_RANGE_LEN = 6
#: Ranges per ack frame: enough to describe a lossy window, small enough for any MTU.
MAX_ACK_RANGES = 32
#: Frames per data packet: a 9000-byte jumbo packet of the smallest useful fragments (one-byte
#: messages on a one-letter channel, 19 bytes each) stays under it; more is an attack on the parser.
MAX_FRAMES_PER_PACKET = 512
#: Ack frames per data packet: a sender puts its one current acknowledgement first, never more.
MAX_ACKS_PER_PACKET = 1
#: Channel names are short identifiers; a byte of length bounds them.
MAX_CHANNEL_NAME = 64

_DATA_HEADER = struct.Struct("<BIQ")
#: A data packet's AEAD nonce: four zero bytes and its counter.
_DATA_NONCE = struct.Struct("<4xQ")
#: Bound struct methods for the core's per-packet paths (one C call each, no Python frame).
pack_data_header = _DATA_HEADER.pack
unpack_data_header = _DATA_HEADER.unpack_from
pack_data_nonce = _DATA_NONCE.pack
_INDEX = struct.Struct("<I")
_RELIABLE = struct.Struct("<BQBH")
_FIRST = struct.Struct("<IB")
_ACK = struct.Struct("<BQB")
_RANGE = struct.Struct("<IH")


class WireError(ValueError):
    """A packet or frame that does not parse."""


def channel_tag(name: str) -> int:
    """The 16-bit tag that names a datagram channel on the wire."""
    return int.from_bytes(hashlib.blake2s(name.encode(), digest_size=2).digest(), "little")


def check_channel_name(name: str) -> bytes:
    raw = name.encode()
    if not raw or len(raw) > MAX_CHANNEL_NAME:
        raise BadChannelError(f"channel names have 1 to {MAX_CHANNEL_NAME} bytes, got {len(raw)}")
    return raw


# -- packets --------------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeInit:
    sender_index: int
    noise_message: bytes
    mac1: bytes
    mac2: bytes


@dataclass(frozen=True)
class HandshakeResponse:
    sender_index: int
    receiver_index: int
    noise_message: bytes
    mac1: bytes
    mac2: bytes


@dataclass(frozen=True)
class CookieReply:
    receiver_index: int
    nonce: bytes
    encrypted_cookie: bytes


def encode_handshake_init_body(sender_index: int, noise_message: bytes) -> bytes:
    """The bytes mac1 covers (mac2 covers these plus mac1)."""
    return bytes([HANDSHAKE_INIT]) + _INDEX.pack(sender_index) + noise_message


def encode_handshake_response_body(sender_index: int, receiver_index: int, noise_message: bytes) -> bytes:
    return bytes([HANDSHAKE_RESPONSE]) + _INDEX.pack(sender_index) + _INDEX.pack(receiver_index) + noise_message


def decode_handshake_init(packet: bytes) -> HandshakeInit:
    if len(packet) != HANDSHAKE_INIT_LEN:
        raise WireError(f"handshake init has {HANDSHAKE_INIT_LEN} bytes, got {len(packet)}")
    mac_at = HANDSHAKE_INIT_LEN - 2 * MAC_LEN
    return HandshakeInit(
        _INDEX.unpack_from(packet, 1)[0], packet[5:mac_at], packet[mac_at : mac_at + MAC_LEN], packet[-MAC_LEN:]
    )


def decode_handshake_response(packet: bytes) -> HandshakeResponse:
    if len(packet) != HANDSHAKE_RESPONSE_LEN:
        raise WireError(f"handshake response has {HANDSHAKE_RESPONSE_LEN} bytes, got {len(packet)}")
    mac_at = HANDSHAKE_RESPONSE_LEN - 2 * MAC_LEN
    return HandshakeResponse(
        _INDEX.unpack_from(packet, 1)[0],
        _INDEX.unpack_from(packet, 5)[0],
        packet[9:mac_at],
        packet[mac_at : mac_at + MAC_LEN],
        packet[-MAC_LEN:],
    )


def encode_cookie_reply(receiver_index: int, nonce: bytes, encrypted_cookie: bytes) -> bytes:
    return bytes([COOKIE_REPLY]) + _INDEX.pack(receiver_index) + nonce + encrypted_cookie


def decode_cookie_reply(packet: bytes) -> CookieReply:
    if len(packet) != COOKIE_REPLY_LEN:
        raise WireError(f"cookie reply has {COOKIE_REPLY_LEN} bytes, got {len(packet)}")
    nonce_end = 5 + COOKIE_NONCE_LEN
    return CookieReply(_INDEX.unpack_from(packet, 1)[0], packet[5:nonce_end], packet[nonce_end:])


def encode_data_header(receiver_index: int, counter: int) -> bytes:
    return _DATA_HEADER.pack(DATA, receiver_index, counter)


def decode_data_header(packet: bytes) -> tuple[int, int]:
    """(receiver index, counter) of a data packet; the rest is ciphertext and tag."""
    if len(packet) < DATA_OVERHEAD:
        raise WireError(f"data packet shorter than {DATA_OVERHEAD} bytes")
    _, index, counter = _DATA_HEADER.unpack_from(packet)
    return index, counter


def encode_identify_request(nonce: bytes) -> bytes:
    return bytes([IDENTIFY_REQUEST]) + nonce + bytes(KEY_LEN)


def encode_identify_reply(nonce: bytes, public_key: bytes) -> bytes:
    return bytes([IDENTIFY_REPLY]) + nonce + public_key


def decode_identify(packet: bytes) -> tuple[bytes, bytes]:
    """(nonce, key field) of an identify request or reply."""
    if len(packet) != IDENTIFY_LEN:
        raise WireError(f"identify packets have {IDENTIFY_LEN} bytes, got {len(packet)}")
    return packet[1 : 1 + IDENTIFY_NONCE_LEN], packet[1 + IDENTIFY_NONCE_LEN :]


# -- frames ---------------------------------------------------------------------


@dataclass(frozen=True)
class DatagramFrame:
    tag: int
    data: bytes


@dataclass(frozen=True)
class ReliableFrame:
    seq: int
    flags: int
    data: bytes
    total: int = 0
    channel: str = ""


@dataclass(frozen=True)
class AckFrame:
    next_expected: int
    ranges: tuple[tuple[int, int], ...]  # (first seq, count) above next_expected


Frame = DatagramFrame | ReliableFrame | AckFrame


def encode_datagram_frame(tag: int, data: bytes) -> bytes:
    return bytes([FRAME_DATAGRAM]) + tag.to_bytes(2, "little") + data


def encode_reliable_frame(seq: int, flags: int, data: bytes, total: int = 0, channel: bytes = b"") -> bytes:
    head = _RELIABLE.pack(FRAME_RELIABLE, seq, flags, len(data))
    if flags & FLAG_FIRST:
        head += _FIRST.pack(total, len(channel)) + channel
    return head + data


def encode_ack_frame(next_expected: int, ranges: list[tuple[int, int]]) -> bytes:
    ranges = ranges[:MAX_ACK_RANGES]
    out = bytearray(_ACK.pack(FRAME_ACK, next_expected, len(ranges)))
    for start, count in ranges:
        out += _RANGE.pack(start - next_expected, count)
    return bytes(out)


def decode_frames(plaintext: bytes) -> list[Frame]:
    """Split a data packet's plaintext into frames (empty: a keepalive).

    At most :data:`MAX_FRAMES_PER_PACKET` frames and :data:`MAX_ACKS_PER_PACKET` acks; an ack's
    ranges must ascend without overlapping, as the receiver writes them.
    """
    frames: list[Frame] = []
    pos = 0
    end = len(plaintext)
    acks = 0
    try:
        while pos < end:
            if len(frames) >= MAX_FRAMES_PER_PACKET:
                raise WireError(f"more than {MAX_FRAMES_PER_PACKET} frames in one packet")
            kind = plaintext[pos]
            if kind == FRAME_DATAGRAM:
                if end - pos < DATAGRAM_FRAME_HEADER:
                    raise WireError("truncated datagram frame")
                tag = plaintext[pos + 1] | (plaintext[pos + 2] << 8)
                frames.append(DatagramFrame(tag, plaintext[pos + DATAGRAM_FRAME_HEADER :]))
                return frames
            if kind == FRAME_RELIABLE:
                _, seq, flags, length = _RELIABLE.unpack_from(plaintext, pos)
                pos += RELIABLE_FRAME_HEADER
                total, name = 0, ""
                if flags & FLAG_FIRST:
                    total, name_len = _FIRST.unpack_from(plaintext, pos)
                    pos += FIRST_FRAGMENT_EXTRA
                    if name_len == 0 or name_len > MAX_CHANNEL_NAME or pos + name_len > end:
                        raise WireError("bad channel name in reliable frame")
                    name = plaintext[pos : pos + name_len].decode()
                    pos += name_len
                if pos + length > end:
                    raise WireError("truncated reliable frame")
                frames.append(ReliableFrame(seq, flags, plaintext[pos : pos + length], total, name))
                pos += length
            elif kind == FRAME_ACK:
                acks += 1
                if acks > MAX_ACKS_PER_PACKET:
                    raise WireError(f"more than {MAX_ACKS_PER_PACKET} ack frame in one packet")
                _, next_expected, count = _ACK.unpack_from(plaintext, pos)
                pos += ACK_FRAME_HEADER
                if count > MAX_ACK_RANGES or pos + count * ACK_RANGE_LEN > end:
                    raise WireError("bad ack frame")
                ranges = []
                floor = 0
                for _ in range(count):
                    offset, length = _RANGE.unpack_from(plaintext, pos)
                    pos += ACK_RANGE_LEN
                    if offset < floor:
                        raise WireError("ack ranges overlap or are out of order")
                    floor = offset + length
                    ranges.append((next_expected + offset, length))
                frames.append(AckFrame(next_expected, tuple(ranges)))
            else:
                raise WireError(f"unknown frame kind 0x{kind:02x}")
    except (struct.error, UnicodeDecodeError) as exc:
        raise WireError(f"malformed frame: {exc}") from exc
    return frames
