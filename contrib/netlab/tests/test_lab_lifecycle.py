"""Building, shaping and tearing down labs: nothing may be left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from omerta_netlab import Lab, LabError, NatBehaviour, remove_stale_namespaces
from omerta_netlab.lab import netns

pytestmark = pytest.mark.root


def _namespaces_of(lab: Lab) -> list[str]:
    return [name for name in netns.listnetns() if name.startswith(lab.tag + "-")]


def test_close_removes_namespaces_even_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(prefix="onlt") as lab:
        router = lab.add_nat("nat", NatBehaviour.SYMMETRIC)
        lab.add_host("host", router)
        assert len(_namespaces_of(lab)) == 3
        raise RuntimeError("boom")
    assert _namespaces_of(lab) == []
    lab.close()


def test_close_stops_processes_started_in_the_lab() -> None:
    with Lab(prefix="onlt") as lab:
        host = lab.add_public_host("host")
        process = lab.popen(host, [sys.executable, "-c", "import time; time.sleep(600)"])
    assert process.poll() is not None


def test_processes_run_inside_the_namespace(lab: Lab) -> None:
    host = lab.add_public_host("host")
    output = lab.run(host, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert host.address in output


def test_duplicate_and_bad_names_are_refused(lab: Lab) -> None:
    lab.add_public_host("host")
    with pytest.raises(LabError, match="already has"):
        lab.add_public_host("host")
    with pytest.raises(LabError, match="identifiers"):
        lab.add_public_host("no spaces")


def test_stale_namespaces_of_dead_processes_are_removed() -> None:
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(argv, capture_output=True, text=True, check=True)
    name = f"onlt{int(dead.stdout)}x0-inet"
    netns.create(name)
    leftover = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        time.sleep(0.5)
        assert name in remove_stale_namespaces("onlt")
        assert name not in netns.listnetns()
        assert leftover.wait(timeout=30) == -signal.SIGKILL
    finally:
        if name in netns.listnetns():
            netns.remove(name)
    mine = f"onlt{os.getpid()}x999-inet"
    netns.create(mine)
    try:
        assert mine not in remove_stale_namespaces("onlt")
    finally:
        netns.remove(mine)


def test_loss_drops_a_share_of_packets(lab: Lab) -> None:
    server_host = lab.add_public_host("server")
    router = lab.add_nat("nat", NatBehaviour.FULL_CONE)
    host = lab.add_host("host", router)
    lab.set_link(host, loss_percent=50)
    server = lab.reflector(server_host, 4000)
    try:
        sock = lab.udp_socket(host)
        sock.settimeout(0.3)
        answered = 0
        for _ in range(100):
            sock.sendto(b"probe", server.address)
            try:
                sock.recv(2048)
                answered += 1
            except TimeoutError:
                pass
        # each probe crosses the lossy link twice: expect ~25 answers of 100
        assert 5 <= answered <= 60
        lab.set_link(host, loss_percent=0)
        sock.settimeout(1.5)
        sock.sendto(b"probe", server.address)
        assert sock.recv(2048).startswith(b"seen")
    finally:
        server.close()


def test_loss_outside_a_percentage_is_refused(lab: Lab) -> None:
    host = lab.add_public_host("host")
    with pytest.raises(LabError, match="percentage"):
        lab.set_link(host, loss_percent=150)


def test_delay_uses_netem_or_says_what_is_missing(lab: Lab) -> None:
    host = lab.add_public_host("host")
    try:
        lab.set_link(host, delay_ms=20)
    except LabError as exc:
        assert "CONFIG_NET_SCH_NETEM" in str(exc)
        return
    assert "netem" in lab.run(host, ["tc", "qdisc", "show", "dev", "eth0"]).stdout
