"""The kernel's decoders of untrusted bytes and text raise only their documented error type.

Random input and mutations of valid input (``omerta_core.fuzz``) go to each decoder; the table in
``docs/architecture.md`` ("Bad input") names the type each may raise.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omerta_core import config, identity
from omerta_core.control import protocol
from omerta_core.errors import ConfigError, IdentityError, ProtocolError
from omerta_core.fuzz import mutate, only_raises
from omerta_core.interfaces import vnet
from omerta_core.interfaces.common import Endpoint, InvalidPeerIdError, PeerId

VALID_FRAMES = [
    protocol.encode_frame(protocol.request(1, "status")),
    protocol.encode_frame(protocol.request(2, "vm.list", {"all": True, "n": [1, 2.5, None, "x"]})),
    protocol.encode_frame(protocol.ok(3, {"peers": [{"id": "abc", "rtt_ms": 1.5}]})),
]
VALID_TOML = b"""[node]
log_level = "info"
plugins = ["udp", "gossip"]

[plugins.udp]
port = 7700
mtu = 1280
keepalive_s = 25.0
"""
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
).map(json.dumps)


def feed_all(data: bytes) -> None:
    decoder = protocol.FrameDecoder()
    for message in decoder.feed(data):
        protocol.check_request(message)


@given(st.binary(max_size=600))
def test_control_frames_of_random_bytes(data: bytes) -> None:
    only_raises(ProtocolError, lambda: feed_all(data))


@given(st.sampled_from(VALID_FRAMES), st.randoms(use_true_random=False))
def test_control_frames_mutated(frame: bytes, rng: random.Random) -> None:
    only_raises(ProtocolError, lambda: feed_all(mutate(frame, rng)))


@given(JSON_TEXT, st.randoms(use_true_random=False))
def test_control_frames_of_mutated_json(text: str, rng: random.Random) -> None:
    body = mutate(text.encode(), rng)
    only_raises(ProtocolError, lambda: feed_all(struct.pack(">I", len(body)) + body))


@given(st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8), max_size=5))
def test_control_requests_of_random_fields(message: dict[str, object]) -> None:
    only_raises(ProtocolError, lambda: protocol.check_request(message))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False))
def test_config_file_mutated(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(mutate(VALID_TOML, rng))
    only_raises(ConfigError, lambda: config.load(config_file=path, environ={}))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_config_file_of_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    only_raises(ConfigError, lambda: config.load(config_file=path, environ={}))


@given(st.text(max_size=200))
def test_config_values_from_environment_and_flags(text: str) -> None:
    config.parse_value(text)  # never raises: what is not JSON is text
    only_raises(ConfigError, lambda: config.load(config_file=None, environ={"OMERTA_PLUGINS": text}))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=80))
def test_identity_key_file_of_random_bytes(tmp_path: Path, data: bytes) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    key = state / "identity.key"
    key.write_bytes(data)
    key.chmod(0o600)
    only_raises(IdentityError, lambda: identity.load_or_create(state))


@given(st.text(max_size=80))
def test_peer_ids_and_endpoints_of_random_text(text: str) -> None:
    only_raises(InvalidPeerIdError, lambda: PeerId(text))
    only_raises(ValueError, lambda: Endpoint.parse(text))


#: A TCP super-frame's header (segments of 1189 bytes, checksum from byte 34) and a frame behind it.
VALID_OFFLOADED = vnet.HEADER.pack(vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, 54, 1189, 34, 16) + bytes(3000)


@given(st.binary(max_size=3000))
def test_virtio_net_headers_of_random_bytes(data: bytes) -> None:
    only_raises(vnet.VnetHeaderError, lambda: vnet.check(data))


@given(st.randoms(use_true_random=False))
def test_virtio_net_headers_mutated(rng: random.Random) -> None:
    only_raises(vnet.VnetHeaderError, lambda: vnet.check(mutate(VALID_OFFLOADED, rng)))
