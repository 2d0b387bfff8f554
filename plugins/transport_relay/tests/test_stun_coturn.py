"""Endpoint discovery against Debian's coturn, a real STUN server, from behind each lab NAT."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from omerta_netlab import Host, Lab, NatBehaviour
from omerta_transport_relay import stun
from omerta_transport_relay.classify import Observation, classify_mapping

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.nat import NatMapping

pytestmark = pytest.mark.root

EXPECTED_MAPPING = {
    NatBehaviour.FULL_CONE: NatMapping.ENDPOINT_INDEPENDENT,
    NatBehaviour.ADDRESS_RESTRICTED: NatMapping.ENDPOINT_INDEPENDENT,
    NatBehaviour.PORT_RESTRICTED: NatMapping.ENDPOINT_INDEPENDENT,
    NatBehaviour.SYMMETRIC: NatMapping.ADDRESS_AND_PORT_DEPENDENT,
}


def start_coturn(lab: Lab, host: Host, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    argv = [
        "turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
        "-L", host.address, "-p", str(port),
        "--pidfile", str(workdir / f"turn-{host.name}-{port}.pid"),
        "--log-file", "stdout", "--no-stdout-log",
    ]  # fmt: skip
    return lab.popen(host, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def stun_lab(tmp_path: Path) -> Iterator[tuple[Lab, list[Endpoint]]]:
    """A lab with coturn on two public hosts: A:3478, A:3479 and B:3478."""
    with Lab(prefix="onlr") as lab:
        first, second = lab.add_public_host("stun_a"), lab.add_public_host("stun_b")
        servers = [Endpoint(first.address, 3478), Endpoint(first.address, 3479), Endpoint(second.address, 3478)]
        start_coturn(lab, first, 3478, tmp_path)
        start_coturn(lab, first, 3479, tmp_path)
        start_coturn(lab, second, 3478, tmp_path)
        yield lab, servers


def discover(sock: socket.socket, server: Endpoint) -> Endpoint | None:
    """Run one Binding transaction over a real socket (retransmitting as RFC 8489 says)."""
    txn = stun.BindingTransaction(server, time.monotonic())
    while not txn.done:
        request = txn.poll(time.monotonic())
        if request is not None:
            sock.sendto(request, server)
        deadline = txn.next_deadline()
        sock.settimeout(max(0.01, (deadline or time.monotonic()) - time.monotonic()))
        try:
            data, source = sock.recvfrom(2048)
        except TimeoutError:
            continue
        txn.receive(data, Endpoint(*source[:2]))
    return txn.result


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_coturn_reports_the_router_mapping(stun_lab: tuple[Lab, list[Endpoint]], behaviour: NatBehaviour) -> None:
    lab, servers = stun_lab
    router = lab.add_nat("nat", behaviour)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    local = Endpoint(*sock.getsockname()[:2])
    observations = []
    for server in servers:
        mapped = discover(sock, server)
        assert mapped is not None, f"coturn at {server} did not answer"
        assert mapped.host == router.wan_address
        observations.append(Observation(server, local, mapped))
    assert classify_mapping(observations, {host.address}) is EXPECTED_MAPPING[behaviour]


def test_coturn_sees_a_public_host_as_not_translated(stun_lab: tuple[Lab, list[Endpoint]]) -> None:
    lab, servers = stun_lab
    host = lab.add_public_host("public")
    sock = lab.udp_socket(host)
    local = Endpoint(host.address, sock.getsockname()[1])
    observations = []
    for server in servers:
        mapped = discover(sock, server)
        assert mapped == local
        observations.append(Observation(server, local, mapped))
    assert classify_mapping(observations, {host.address}) is NatMapping.NONE
