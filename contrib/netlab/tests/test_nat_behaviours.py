"""Each router behaviour, checked with plain UDP sockets against reflectors on the lab's internet."""

from __future__ import annotations

import socket

import pytest
from omerta_netlab import Lab, NatBehaviour
from omerta_netlab.reflector import Reflector, observe, receives

pytestmark = pytest.mark.root

#: Which of (same address other port, other address) may reach a mapping created towards reflector A:3478.
EXPECTED_FILTERING = {
    NatBehaviour.FULL_CONE: (True, True),
    NatBehaviour.ADDRESS_RESTRICTED: (True, False),
    NatBehaviour.PORT_RESTRICTED: (False, False),
    NatBehaviour.SYMMETRIC: (False, False),
}


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_mapping_behaviour(lab: Lab, reflectors: list[Reflector], behaviour: NatBehaviour) -> None:
    router = lab.add_nat("nat", behaviour)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    seen = [observe(sock, reflector) for reflector in reflectors]
    assert {address for address, _ in seen} == {router.wan_address}
    ports = {port for _, port in seen}
    if behaviour is NatBehaviour.SYMMETRIC:
        assert len(ports) == len(reflectors), "endpoint-dependent mapping gives each destination its own port"
    else:
        assert ports == {sock.getsockname()[1]}, "endpoint-independent mapping keeps one (port-preserving) mapping"


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_filtering_behaviour(lab: Lab, reflectors: list[Reflector], behaviour: NatBehaviour) -> None:
    router = lab.add_nat("nat", behaviour)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    mapped = observe(sock, reflectors[0])
    outcome = []
    for reflector in reflectors[1:]:
        reflector.send_from_here(mapped)
        outcome.append(receives(sock))
    assert tuple(outcome) == EXPECTED_FILTERING[behaviour]


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_filtered_probes_do_not_disturb_the_mapping(
    lab: Lab, reflectors: list[Reflector], behaviour: NatBehaviour
) -> None:
    """Unsolicited packets that the router drops must not occupy the external port."""
    router = lab.add_nat("nat", behaviour)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    mapped = observe(sock, reflectors[0])
    for reflector in reflectors[1:]:
        reflector.send_from_here(mapped)
    while receives(sock):
        pass
    later = [observe(sock, reflector) for reflector in reflectors[1:]]
    if behaviour is not NatBehaviour.SYMMETRIC:
        assert later == [mapped, mapped]


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_inbound_without_mapping_is_dropped(lab: Lab, reflectors: list[Reflector], behaviour: NatBehaviour) -> None:
    router = lab.add_nat("nat", behaviour)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    reflectors[0].send_from_here((router.wan_address, sock.getsockname()[1]))
    assert not receives(sock)


def test_several_hosts_share_one_router(lab: Lab, reflectors: list[Reflector]) -> None:
    router = lab.add_nat("nat", NatBehaviour.FULL_CONE)
    hosts = [lab.add_host(f"host{i}", router) for i in range(3)]
    socks = [lab.udp_socket(host) for host in hosts]
    mapped = [observe(sock, reflectors[0]) for sock in socks]
    assert len(set(mapped)) == len(hosts)
    for sock, endpoint in zip(socks, mapped, strict=True):
        reflectors[2].send_from_here(endpoint, b"for-" + str(endpoint[1]).encode())
        assert sock.recv(2048) == b"for-" + str(endpoint[1]).encode()


def test_public_hosts_are_not_translated(lab: Lab, reflectors: list[Reflector]) -> None:
    host = lab.add_public_host("public")
    sock = lab.udp_socket(host)
    assert observe(sock, reflectors[0]) == (host.address, sock.getsockname()[1])


@pytest.mark.parametrize("behaviour", list(NatBehaviour))
def test_ipv6_is_filtered_not_translated(lab: Lab, behaviour: NatBehaviour) -> None:
    first = lab.add_public_host("refl_a")
    second = lab.add_public_host("refl_b")
    reflectors = [
        lab.reflector(first, 3478, socket.AF_INET6),
        lab.reflector(first, 3479, socket.AF_INET6),
        lab.reflector(second, 3478, socket.AF_INET6),
    ]
    try:
        router = lab.add_nat("nat", behaviour)
        host = lab.add_host("host", router)
        sock = lab.udp_socket(host, family=socket.AF_INET6)
        mapped = observe(sock, reflectors[0])
        assert mapped == (host.address6, sock.getsockname()[1])
        outcome = []
        for reflector in reflectors[1:]:
            reflector.send_from_here(mapped)
            outcome.append(receives(sock))
        assert tuple(outcome) == EXPECTED_FILTERING[behaviour]
    finally:
        for reflector in reflectors:
            reflector.close()


def test_conntrack_flush_forgets_port_restricted_mappings(lab: Lab, reflectors: list[Reflector]) -> None:
    router = lab.add_nat("nat", NatBehaviour.PORT_RESTRICTED)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    mapped = observe(sock, reflectors[0])
    reflectors[0].send_from_here(mapped)
    assert receives(sock)
    lab.flush_conntrack(router)
    reflectors[0].send_from_here(mapped)
    assert not receives(sock), "after the flush the router no longer knows the flow"
    assert observe(sock, reflectors[0]) == mapped, "the next outbound packet recreates the same mapping"


def test_rebinding_moves_the_router_to_a_new_public_address(lab: Lab, reflectors: list[Reflector]) -> None:
    router = lab.add_nat("nat", NatBehaviour.FULL_CONE)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    port = sock.getsockname()[1]
    assert observe(sock, reflectors[0]) == (router.wan_address, port)
    rebound = lab.rebind(router)
    assert rebound.wan_address != router.wan_address
    assert lab.routers["nat"] == rebound and lab.hosts["host"].router == rebound
    # the same socket's next packet leaves from the new address, and the (full-cone) mapping lives there only
    assert observe(sock, reflectors[0]) == (rebound.wan_address, port)
    reflectors[2].send_from_here((router.wan_address, port))
    assert not receives(sock)
    reflectors[2].send_from_here((rebound.wan_address, port))
    assert receives(sock)


def test_a_cut_partitions_a_router_from_a_host_until_mended(lab: Lab, reflectors: list[Reflector]) -> None:
    router = lab.add_nat("nat", NatBehaviour.PORT_RESTRICTED)
    host = lab.add_host("host", router)
    sock = lab.udp_socket(host)
    sock.settimeout(0.5)
    mapped = observe(sock, reflectors[0])
    lab.cut(router, lab.hosts["refl_a"])
    # both directions of the established flow are gone, and so is a new one to the same host
    reflectors[0].send_from_here(mapped)
    assert not receives(sock)
    sock.sendto(b"probe", reflectors[1].address)
    assert not receives(sock)
    assert observe(sock, reflectors[2])[0] == router.wan_address, "hosts not named stay reachable"
    lab.mend(router)
    assert observe(sock, reflectors[0]) == mapped, "mended, the same mapping carries the flow again"
    lab.mend(router)  # mending twice is harmless
