"""The consumer gateway namespace's kernel settings and nftables ruleset, as text.

``internet`` mode forwards the VM's IPv4 out of the namespace's uplink (pasta's
interface) with masquerade, and only replies back in; ``isolated`` forwards
nothing, so the VM reaches the gateway address alone. In both, IPv6 is off and
TCP SYNs crossing the namespace have their MSS clamped to the VM's MTU, so a
peer beyond the uplink never sends the VM a segment its tunnel cannot carry.
Pure; touches nothing.
"""

from __future__ import annotations

#: IPv4 and TCP headers without options: MSS = MTU - 40.
TCP_IP_HEADERS = 40
TABLE = "omerta_gateway"


def sysctls(mode: str) -> list[str]:
    forwarding = "1" if mode == "internet" else "0"
    return [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
        f"net.ipv4.ip_forward={forwarding}",
    ]


def nft_ruleset(mode: str, tap: str, mtu: int, subnet: str) -> str:
    mss = mtu - TCP_IP_HEADERS
    forward = [f"tcp flags syn tcp option maxseg size > {mss} tcp option maxseg size set {mss}"]
    nat = ""
    if mode == "internet":
        forward += [
            f'iifname "{tap}" oifname != "{tap}" accept',
            f'oifname "{tap}" ct state established,related accept',
        ]
        nat = f"""
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} oifname != "{tap}" masquerade
  }}"""
    rules = "\n".join(f"    {rule}" for rule in forward)
    return f"""table inet {TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
{rules}
  }}{nat}
}}
"""
