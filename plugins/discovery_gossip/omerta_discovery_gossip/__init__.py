"""Gossip discovery: SWIM membership, networks and invites, bootstrap (Omerta plugin `gossip`)."""

__version__ = "0.1.0"
