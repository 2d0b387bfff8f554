"""Omerta plugin `vpn`: the consumer-served VPN (tunnels on providers, gateways on consumers)."""

__version__ = "0.1.0"
