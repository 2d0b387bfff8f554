"""Classifying the local NAT from what several observers saw, and choosing what a pair can do.

Mapping comes from reflexive endpoints reported by observers at different
addresses and ports (relays, bootstrap peers, STUN servers); filtering from
whether a probe sent from another port got in (telling endpoint-independent
from address-dependent filtering needs an observer address never contacted,
which the relays cannot provide, so that case stays unknown). Then
:func:`direct_possible` says whether hole punching can work for a pair
(without birthday probing). Pure functions; touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.nat import NatFiltering, NatMapping


@dataclass(frozen=True)
class Observation:
    """Observer ``observer`` saw our socket bound at ``local`` as ``mapped``."""

    observer: Endpoint
    local: Endpoint
    mapped: Endpoint


def classify_mapping(observations: list[Observation], local_addresses: set[str]) -> NatMapping:
    """RFC 4787 mapping behaviour from observations of one local socket (one address family)."""
    if not observations:
        return NatMapping.UNKNOWN
    if all(o.mapped.host in local_addresses and o.mapped.port == o.local.port for o in observations):
        return NatMapping.NONE
    distinct = {o.mapped for o in observations}
    if len(distinct) == 1:
        if len({o.observer for o in observations}) < 2:
            return NatMapping.UNKNOWN
        return NatMapping.ENDPOINT_INDEPENDENT
    by_host: dict[str, set[Endpoint]] = {}
    for o in observations:
        by_host.setdefault(o.observer.host, set()).add(o.mapped)
    if any(len(mapped) > 1 for mapped in by_host.values()):
        return NatMapping.ADDRESS_AND_PORT_DEPENDENT
    if len(by_host) > 1:
        return NatMapping.ADDRESS_DEPENDENT
    return NatMapping.UNKNOWN


def classify_filtering(
    mapping: NatMapping, *, from_other_port: bool | None, from_other_address: bool | None
) -> NatFiltering:
    """RFC 4787 filtering behaviour from two probe outcomes (``None``: the probe was not made)."""
    if mapping is NatMapping.NONE and (from_other_address or from_other_port):
        return NatFiltering.NONE
    if from_other_address:
        return NatFiltering.ENDPOINT_INDEPENDENT
    if from_other_port:
        return NatFiltering.ADDRESS_DEPENDENT if from_other_address is False else NatFiltering.UNKNOWN
    if from_other_port is False:
        return NatFiltering.ADDRESS_AND_PORT_DEPENDENT
    return NatFiltering.UNKNOWN


def _hard(mapping: NatMapping) -> bool:
    return mapping in (NatMapping.ADDRESS_DEPENDENT, NatMapping.ADDRESS_AND_PORT_DEPENDENT)


def direct_possible(ours: tuple[NatMapping, NatFiltering], theirs: tuple[NatMapping, NatFiltering]) -> bool:
    """Whether simultaneous probing can open a direct path between two NATs.

    Two endpoint-independent mappings always can. A hard (endpoint-dependent)
    mapping on one side needs the other side to admit packets from a port it
    never sent to: endpoint-independent or address-dependent filtering (or no
    NAT). Two hard sides cannot. Unknown behaviour is given the benefit of the
    doubt: trying costs a few probes, the relay stays in place meanwhile.
    """
    (our_mapping, our_filtering), (their_mapping, their_filtering) = ours, theirs
    if _hard(our_mapping) and _hard(their_mapping):
        return False
    if _hard(our_mapping):
        return their_filtering is not NatFiltering.ADDRESS_AND_PORT_DEPENDENT
    if _hard(their_mapping):
        return our_filtering is not NatFiltering.ADDRESS_AND_PORT_DEPENDENT
    return True
