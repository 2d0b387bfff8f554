"""Identity creation, persistence, file mode, and peer ids."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from omerta_core import identity
from omerta_core.errors import IdentityError
from omerta_core.interfaces.common import Endpoint, InvalidPeerIdError, PeerId


def test_created_once_with_mode_0600_and_reloaded(tmp_path: Path) -> None:
    first = identity.load_or_create(tmp_path)
    key_file = tmp_path / "identity.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = identity.load_or_create(tmp_path)
    assert again.peer_id == first.peer_id


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path)
    os.chmod(tmp_path / "identity.key", 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        identity.load_or_create(tmp_path)


def test_truncated_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "identity.key"
    key.write_bytes(b"short")
    key.chmod(0o600)
    with pytest.raises(IdentityError, match="not an Omerta identity key"):
        identity.load_or_create(tmp_path)


def test_peer_id_carries_the_public_key_and_verifies_signatures() -> None:
    ident = identity.Identity.generate()
    peer = ident.peer_id
    assert peer.public_key == ident.public_key
    assert PeerId(peer.upper()) == peer
    signature = ident.sign(b"message")
    assert identity.verify(peer, b"message", signature)
    assert not identity.verify(peer, b"messagE", signature)
    other = identity.Identity.generate().peer_id
    assert not identity.verify(other, b"message", signature)


@pytest.mark.parametrize("text", ["", "not base32!", "aaaa", "a" * 60])
def test_malformed_peer_ids_are_refused(text: str) -> None:
    with pytest.raises(InvalidPeerIdError):
        PeerId(text)


def test_a_peer_id_has_one_text() -> None:
    peer = PeerId.from_public_key(bytes(range(32)))
    assert len(peer) == 52 and peer[-1] in "aq"  # 256 bits: the last character's 4 low bits are zero
    same_key_other_text = peer[:-1] + ("b" if peer[-1] == "a" else "r")
    with pytest.raises(InvalidPeerIdError, match="canonical"):
        PeerId(same_key_other_text)


def test_endpoints_parse_v4_and_v6() -> None:
    assert Endpoint.parse("198.18.0.1:7700") == Endpoint("198.18.0.1", 7700)
    v6 = Endpoint.parse("[fd00::1]:7700")
    assert v6 == Endpoint("fd00::1", 7700)
    assert v6.is_ipv6
    assert str(v6) == "[fd00::1]:7700"
    for bad in ("nohost", "host:", ":80", "h:70000"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)
