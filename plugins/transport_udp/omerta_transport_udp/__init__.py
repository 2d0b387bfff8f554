"""Encrypted UDP transport: Noise IK sessions, channels, roaming (Omerta plugin `udp`)."""

__version__ = "0.1.0"
