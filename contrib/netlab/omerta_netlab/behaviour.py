"""RFC 4787 NAT behaviours and the nftables rulesets that implement them.

Pure text generation: given a behaviour, the router's WAN interface and WAN
address, render an ``nft -f`` ruleset. Touches nothing.

How each behaviour is built (IPv4 is translated, IPv6 is only filtered, as
real home routers do):

* Mapping. Linux SNAT keeps the internal source port whenever the external
  tuple is free, so plain ``snat`` gives endpoint-independent mapping as long as
  hosts behind one router use disjoint ports (the lab gives each host its own
  ephemeral port range). ``snat ... fully-random`` picks a fresh random port for
  every new flow: endpoint-dependent ("symmetric") mapping.
* Filtering. Conntrack alone admits only replies from the exact remote address
  and port: address-and-port-dependent filtering. For the two more open
  behaviours every outbound packet records, after translation, the mapping
  (external port -> internal address and port) in a dynamic map and the pair
  (remote address, external port) in a dynamic set; a new inbound flow to an
  external port is DNATed through the map when the filter allows it (any
  source for endpoint-independent filtering, a contacted address for
  address-dependent filtering).
* Unsolicited inbound packets to the router itself are dropped before
  conntrack confirms them; otherwise their entries would occupy external
  ports and make the next outbound flow pick a different port.
"""

from __future__ import annotations

import enum

#: Idle lifetime of a mapping and of a filter entry; RFC 4787 REQ-5 asks for at
#: least two minutes for UDP.
MAPPING_TIMEOUT_S = 120


class NatBehaviour(enum.Enum):
    """The router behaviours the lab can build (names follow tailscale natlab)."""

    #: Endpoint-independent mapping and filtering ("full cone").
    FULL_CONE = "full-cone"
    #: Endpoint-independent mapping, address-dependent filtering ("easyaf").
    ADDRESS_RESTRICTED = "address-restricted"
    #: Endpoint-independent mapping, address-and-port-dependent filtering ("easy", Linux default).
    PORT_RESTRICTED = "port-restricted"
    #: Endpoint-dependent mapping with random ports ("hard", "symmetric").
    SYMMETRIC = "symmetric"

    @property
    def mapping(self) -> str:
        """RFC 4787 mapping behaviour, as the values of ``omerta_core.interfaces.nat.NatMapping``."""
        if self is NatBehaviour.SYMMETRIC:
            return "address-and-port-dependent"
        return "endpoint-independent"

    @property
    def filtering(self) -> str:
        """RFC 4787 filtering behaviour, as the values of ``omerta_core.interfaces.nat.NatFiltering``."""
        return {
            NatBehaviour.FULL_CONE: "endpoint-independent",
            NatBehaviour.ADDRESS_RESTRICTED: "address-dependent",
            NatBehaviour.PORT_RESTRICTED: "address-and-port-dependent",
            NatBehaviour.SYMMETRIC: "address-and-port-dependent",
        }[self]


TABLE4 = "omerta_nat"
TABLE6 = "omerta_fw6"
LOSS_TABLE = "omerta_loss"
#: The table of a router's cut (:func:`cut_ruleset`).
CUT_TABLE = "omerta_cut"


def router_ruleset(behaviour: NatBehaviour, wan_ifname: str, wan_address: str) -> str:
    """The complete ruleset of a NAT router for ``behaviour``."""
    return ipv4_ruleset(behaviour, wan_ifname, wan_address) + _ipv6_rules(behaviour, wan_ifname)


def ipv4_ruleset(behaviour: NatBehaviour, wan: str, wan_address: str) -> str:
    """The IPv4 half of a router's ruleset (table :data:`TABLE4`): what a new WAN address replaces."""
    random_ports = " fully-random" if behaviour is NatBehaviour.SYMMETRIC else ""
    inbound = {
        NatBehaviour.FULL_CONE: (
            f'iifname "{wan}" ip daddr {wan_address} udp dport @mappings dnat ip to udp dport map @mappings'
        ),
        NatBehaviour.ADDRESS_RESTRICTED: (
            f'iifname "{wan}" ip daddr {wan_address} ip saddr . udp dport @contacted dnat ip to udp dport map @mappings'
        ),
    }.get(behaviour, "")
    return f"""
table ip {TABLE4} {{
    map mappings {{
        type inet_service : ipv4_addr . inet_service
        flags dynamic,timeout
        timeout {MAPPING_TIMEOUT_S}s
    }}
    set contacted {{
        type ipv4_addr . inet_service
        flags dynamic,timeout
        timeout {MAPPING_TIMEOUT_S}s
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        {inbound}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{wan}" snat ip to {wan_address}{random_ports}
    }}
    chain record {{
        type filter hook postrouting priority srcnat + 10; policy accept;
        oifname "{wan}" meta l4proto udp ct direction original \
            update @mappings {{ udp sport : ct original ip saddr . ct original proto-src }}
        oifname "{wan}" meta l4proto udp update @contacted {{ ip daddr . udp sport }}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{wan}" ct state new drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname != "{wan}" accept
        iifname "{wan}" ct status dnat accept
    }}
}}
"""


def _ipv6_rules(behaviour: NatBehaviour, wan: str) -> str:
    inbound = {
        NatBehaviour.FULL_CONE: f'iifname "{wan}" ip6 daddr . udp dport @open accept',
        NatBehaviour.ADDRESS_RESTRICTED: f'iifname "{wan}" ip6 saddr . ip6 daddr . udp dport @contacted accept',
    }.get(behaviour, "")
    return f"""
table ip6 {TABLE6} {{
    set open {{
        type ipv6_addr . inet_service
        flags dynamic,timeout
        timeout {MAPPING_TIMEOUT_S}s
    }}
    set contacted {{
        type ipv6_addr . ipv6_addr . inet_service
        flags dynamic,timeout
        timeout {MAPPING_TIMEOUT_S}s
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        meta l4proto ipv6-icmp accept
        oifname "{wan}" meta l4proto udp update @open {{ ip6 saddr . udp sport }}
        oifname "{wan}" meta l4proto udp update @contacted {{ ip6 daddr . ip6 saddr . udp sport }}
        iifname != "{wan}" accept
        {inbound}
    }}
}}
"""


def loss_table(ifname: str) -> str:
    """The name of the table holding ``ifname``'s loss rule."""
    return f"{LOSS_TABLE}_{ifname}"


def loss_ruleset(ifname: str, loss_percent: float) -> str:
    """Drop ``loss_percent`` of the packets arriving on ``ifname`` at random (per-link loss without netem).

    Dropping on arrival, before conntrack, rather than on departure keeps a
    sender's ``sendto`` from failing with EPERM.
    """
    per_mille = round(loss_percent * 10)
    return f"""
table inet {loss_table(ifname)} {{
    chain ingress {{
        type filter hook prerouting priority raw; policy accept;
        iifname "{ifname}" numgen random mod 1000 < {per_mille} drop
    }}
}}
"""


def cut_ruleset(addresses: list[str], addresses6: list[str]) -> str:
    """Drop every packet a router forwards to or from these addresses, established flows included.

    Its own table, hooked before the NAT's filter: a drop in any base chain is final, so the NAT's
    rules and mappings stay exactly as they were and the cut is undone by deleting the table.
    """
    rules = []
    for family, listed in (("ip", addresses), ("ip6", addresses6)):
        if listed:
            targets = ", ".join(listed)
            rules += [f"{family} saddr {{ {targets} }} drop", f"{family} daddr {{ {targets} }} drop"]
    body = "\n        ".join(rules)
    return f"""
table inet {CUT_TABLE} {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        {body}
    }}
}}
"""
