"""Relay transport and relay serving for peers that cannot connect directly (Omerta plugin `relay`)."""

__version__ = "0.1.0"
