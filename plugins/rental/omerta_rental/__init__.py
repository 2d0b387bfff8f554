"""Renting a VM end to end: offers, admission, escrow, the lease, release and settlement (Omerta plugin `rental`)."""

__version__ = "0.1.0"
