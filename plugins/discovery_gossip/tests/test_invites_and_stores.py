"""Invites (signed, expiring, one-line errors), the network store, the SQLite peer cache and the CLI."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner
from omerta_discovery_gossip.errors import InviteError, NetworkError
from omerta_discovery_gossip.invite import LINK_PREFIX, create_invite, parse_invite
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.network_store import NetworkStore
from omerta_discovery_gossip.peer_cache import PeerCache
from omerta_discovery_gossip.peer_record import create_record

from omerta_core.cli import main
from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint

INVITER = Identity.from_seed(b"i" * 32)
BOOT = [f"{INVITER.peer_id}@198.18.0.1:7700"]


def test_invite_round_trips(network: Network) -> None:
    link = create_invite(INVITER, network, BOOT, ttl_s=60, now=1000).link()
    invite = parse_invite(link, now=1030)
    assert invite.network == network and invite.bootstrap == tuple(BOOT) and invite.inviter == INVITER.peer_id


def test_expired_invite_is_refused_with_one_line(network: Network) -> None:
    link = create_invite(INVITER, network, BOOT, ttl_s=60, now=1000).link()
    with pytest.raises(InviteError, match="expired") as caught:
        parse_invite(link, now=1061)
    assert "\n" not in str(caught.value)


def test_tampered_invite_fails_its_signature(network: Network) -> None:
    link = create_invite(INVITER, network, BOOT, ttl_s=60, now=1000).link()
    payload = link[len(LINK_PREFIX) :]
    body = msgpack.unpackb(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[5] += 10**6  # extend the expiry
    tampered = LINK_PREFIX + base64.urlsafe_b64encode(msgpack.packb(body)).decode().rstrip("=")
    with pytest.raises(InviteError, match="signature is not valid"):
        parse_invite(tampered, now=1030)


def resigned(body: list, signer: Identity = INVITER) -> str:
    """An invite link of ``body`` (a decoded link body) signed again, as a malicious inviter could."""
    _, name, key, bootstrap, inviter, expires_at, _ = body
    signed = b"omerta/gossip/invite/1\n" + msgpack.packb([name, key, bootstrap, inviter, expires_at])
    body = [*body[:6], signer.sign(signed)]
    return LINK_PREFIX + base64.urlsafe_b64encode(msgpack.packb(body)).decode().rstrip("=")


def link_body(network: Network) -> list:
    link = create_invite(INVITER, network, BOOT, ttl_s=60, now=1000).link()
    payload = link[len(LINK_PREFIX) :]
    return msgpack.unpackb(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("key", [b"", b"k" * 31, b"k" * 33])
def test_invite_with_a_network_key_of_the_wrong_length_raises_the_invite_error(network: Network, key: bytes) -> None:
    # The replay: a wrong-length key raised NetworkError from the network constructor.
    body = link_body(network)
    body[2] = key
    with pytest.raises(InviteError, match="damaged"):
        parse_invite(resigned(body), now=1030)


@pytest.mark.parametrize("entry", ["nowhere", "a:b", 7, "198.18.0.1:0"])
def test_invite_with_a_bad_bootstrap_entry_is_refused_when_read(network: Network, entry: object) -> None:
    body = link_body(network)
    body[3] = [entry]
    with pytest.raises(InviteError, match=r"bootstrap|damaged"):
        parse_invite(resigned(body), now=1030)


@pytest.mark.parametrize("expires_at", [-(2**63), 2**63])
def test_invite_with_an_absurd_expiry_is_refused(network: Network, expires_at: int) -> None:
    body = link_body(network)
    body[5] = expires_at
    with pytest.raises(InviteError, match="damaged"):
        parse_invite(resigned(body), now=1030)


@pytest.mark.parametrize("garbage", ["", "hello", "omerta://join/", "omerta://join/%%%%", LINK_PREFIX + "AAAA"])
def test_garbage_invite_is_refused(garbage: str) -> None:
    with pytest.raises(InviteError):
        parse_invite(garbage)


def test_invite_with_a_bad_bootstrap_entry_cannot_be_made(network: Network) -> None:
    with pytest.raises(InviteError, match="bootstrap"):
        create_invite(INVITER, network, ["nowhere"], ttl_s=60)


def test_network_store_keeps_keys_private_and_refuses_double_join(tmp_path: Path, network: Network) -> None:
    store = NetworkStore(tmp_path)
    store.add(network, tuple(BOOT))
    assert stat.S_IMODE((tmp_path / "networks.json").stat().st_mode) == 0o600
    assert store.find("lab").network == network and store.find(network.id_hex).bootstrap == tuple(BOOT)
    with pytest.raises(NetworkError, match="already a member"):
        store.add(network)
    store.remove("lab")
    with pytest.raises(NetworkError, match="not a member"):
        store.find("lab")


def test_damaged_network_store_gives_one_line(tmp_path: Path) -> None:
    (tmp_path / "networks.json").write_text("{not json")
    with pytest.raises(NetworkError, match="damaged"):
        NetworkStore(tmp_path).load()


def test_peer_cache_keeps_valid_records_per_network_across_reopen(tmp_path: Path, network: Network) -> None:
    other = Network("other", bytes(32))
    record = create_record(INVITER, network.id, (Endpoint("198.18.0.1", 7700),), 3)
    cache = PeerCache(tmp_path)
    cache.save(network.id, [record], now=1.0)
    cache.set_own_version(network.id, 99)
    cache.close()
    cache = PeerCache(tmp_path)
    assert cache.load(network.id) == [record]
    assert cache.load(other.id) == []
    assert cache.own_version(network.id) == 99
    cache.forget(network.id)
    assert cache.load(network.id) == [] and cache.own_version(network.id) == 0


def test_peer_cache_skips_tampered_rows(tmp_path: Path, network: Network) -> None:
    record = create_record(INVITER, network.id, (Endpoint("198.18.0.1", 7700),), 3)
    cache = PeerCache(tmp_path)
    cache.save(network.id, [record], now=1.0)
    wire = record.to_wire()
    wire[5] = 4  # a newer version the peer never signed
    cache._db.execute("UPDATE records SET record = ?", (msgpack.packb(wire),))
    assert cache.load(network.id) == []


def test_cli_create_invite_join_leave_without_a_running_node(tmp_path: Path) -> None:
    runner = CliRunner()
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    created = runner.invoke(main, ["network", "create", "lab", "--state-dir", a, "--json"])
    assert created.exit_code == 0, created.output
    network_id = json.loads(created.output)["id"]
    link = runner.invoke(main, ["network", "invite", "lab", "--state-dir", a, "--bootstrap", "198.18.0.1:7700"])
    assert link.exit_code == 0 and link.output.startswith(LINK_PREFIX)
    joined = runner.invoke(main, ["network", "join", link.output.strip(), "--state-dir", b])
    assert joined.exit_code == 0 and network_id in joined.output
    listed = json.loads(runner.invoke(main, ["network", "list", "--state-dir", b, "--json"]).output)
    assert [n["id"] for n in listed] == [network_id] and listed[0]["bootstrap"] == ["198.18.0.1:7700"]
    left = runner.invoke(main, ["network", "leave", network_id, "--state-dir", b])
    assert left.exit_code == 0
    assert json.loads(runner.invoke(main, ["network", "list", "--state-dir", b, "--json"]).output) == []


@pytest.mark.parametrize("link", ["garbage", LINK_PREFIX + "QUJD"])
def test_cli_bad_invite_is_one_line_and_changes_nothing(tmp_path: Path, link: str) -> None:
    result = CliRunner().invoke(main, ["network", "join", link, "--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "plugins" / "gossip" / "networks.json").exists()


def test_cli_invite_without_endpoints_explains(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["network", "create", "lab", "--state-dir", str(tmp_path)])
    result = runner.invoke(main, ["network", "invite", "lab", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0 and "--bootstrap" in result.output


def test_cli_peers_without_a_node_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["peers", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "no node" in result.output
