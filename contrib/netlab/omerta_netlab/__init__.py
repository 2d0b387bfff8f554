"""A reusable network-namespace NAT lab (RFC 4787 behaviours with nftables) for Omerta's tests, benchmarks and demo."""

from omerta_netlab.behaviour import NatBehaviour
from omerta_netlab.lab import Host, Lab, LabError, Router, remove_stale_namespaces

__version__ = "0.1.0"

__all__ = ["Host", "Lab", "LabError", "NatBehaviour", "Router", "remove_stale_namespaces"]
