"""Renting a VM end to end: offers, admission, escrow, the lease, release and settlement."""
