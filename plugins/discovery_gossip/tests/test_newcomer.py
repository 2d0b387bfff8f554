"""What a newcomer meets in the gossip plugin's commands: unique names, --json, private directories, bad bootstraps."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from omerta_discovery_gossip.errors import NetworkError
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.network_store import NetworkStore

from omerta_core.cli import main
from omerta_core.testing import NodeProcess


def omerta(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="omerta")
    return result.exit_code, result.stdout, result.stderr


def test_network_names_are_unique_and_not_empty(tmp_path: Path) -> None:
    state = str(tmp_path / "s")
    assert omerta("network", "create", "lab", "--state-dir", state)[0] == 0
    code, _, err = omerta("network", "create", "lab", "--state-dir", state)
    assert code == 1
    assert err == (
        "Error: a network called 'lab' is already joined; choose another name (or `omerta network leave lab` first)\n"
    )
    for bad in ("", "  ", " lab"):
        code, _, err = omerta("network", "create", bad, "--state-dir", state)
        assert code == 1 and err.count("\n") == 1, err
    listed = json.loads(omerta("network", "list", "--json", "--state-dir", state)[1])
    assert [n["name"] for n in listed] == ["lab"]
    assert omerta("network", "invite", "lab", "--bootstrap", "198.18.0.1:7700", "--state-dir", state)[0] == 0
    assert omerta("network", "leave", "lab", "--state-dir", state)[0] == 0


def test_joining_a_second_network_of_the_same_name_is_refused(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    store.add(Network.create("lab"))
    with pytest.raises(NetworkError, match="already joined"):
        store.add(Network.create("lab"))


def test_invite_and_leave_print_json_and_ids_take_prefixes(tmp_path: Path) -> None:
    state = str(tmp_path / "s")
    network_id = json.loads(omerta("network", "create", "lab", "--json", "--state-dir", state)[1])["id"]
    code, out, _ = omerta(
        "network", "invite", network_id[:6], "--bootstrap", "198.18.0.1:7700", "--json", "--state-dir", state
    )
    assert code == 0
    invite = json.loads(out)
    assert invite["link"].startswith("omerta://join/")
    assert (invite["network"], invite["id"], invite["bootstrap"]) == ("lab", network_id, ["198.18.0.1:7700"])
    code, out, _ = omerta("network", "leave", network_id[:6], "--json", "--state-dir", state)
    assert code == 0 and json.loads(out) == {"left": True, "name": "lab", "id": network_id}


def test_invite_checks_its_options(tmp_path: Path) -> None:
    state = str(tmp_path / "s")
    omerta("network", "create", "lab", "--state-dir", state)
    code, _, err = omerta("network", "invite", "lab", "--ttl", "0", "--bootstrap", "198.18.0.1:1", "--state-dir", state)
    assert code == 2 and "'--ttl'" in err
    code, _, err = omerta("network", "invite", "lab", "--bootstrap", "nowhere", "--state-dir", state)
    assert code == 1 and "bad bootstrap entry 'nowhere'" in err


def test_read_only_commands_create_nothing_and_writers_create_private_directories(tmp_path: Path) -> None:
    state = tmp_path / "s"
    assert omerta("network", "list", "--state-dir", str(state))[0] == 0
    assert omerta("network", "leave", "lab", "--state-dir", str(state))[0] == 1
    assert not state.exists()
    assert omerta("network", "create", "lab", "--state-dir", str(state))[0] == 0
    for path in (state, state / "plugins", state / "plugins" / "gossip"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_a_bad_bootstrap_entry_in_the_configuration_stops_the_node(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", "udp,gossip")
    node.config_path.parent.mkdir(parents=True, exist_ok=True)
    node.config_path.write_text('[node]\nbootstrap = ["notanaddress"]\n')
    node.spawn("plugins.udp.port=0")
    assert node.process is not None
    assert node.process.wait(timeout=60) == 1
    assert "bad bootstrap entry 'notanaddress'" in node.log_tail()
    assert not (tmp_path / "n" / "control.sock").exists()


def test_the_quick_start_by_hand_two_nodes_a_network_an_invite_peers_and_ping(tmp_path: Path) -> None:
    """README's five commands: two nodes on one machine, a network, an invite, `peers`, `ping`."""

    def run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "omerta_core", "--state-dir", str(state), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    a = NodeProcess(tmp_path / "a", "udp,gossip")
    b = NodeProcess(tmp_path / "b", "udp,gossip")
    try:
        a.start("plugins.udp.port=0")
        b.start("plugins.udp.port=0")
        assert run(a.state_dir, "network", "create", "lab").returncode == 0
        invite = run(a.state_dir, "network", "invite", "lab")
        assert invite.returncode == 0, invite.stderr
        assert "works on this machine only" in invite.stderr
        assert run(b.state_dir, "network", "join", invite.stdout.strip()).returncode == 0
        deadline = time.monotonic() + 120
        while a.peer_id[:12] not in run(b.state_dir, "peers").stdout:
            assert time.monotonic() < deadline, "b never learnt a"
            time.sleep(0.5)
        pinged = run(b.state_dir, "ping", a.peer_id[:12], "--count", "1")
        assert pinged.returncode == 0, pinged.stderr
        assert pinged.stdout.startswith(f"{a.peer_id}  direct (127.0.0.1:")
    finally:
        a.stop()
        b.stop()
