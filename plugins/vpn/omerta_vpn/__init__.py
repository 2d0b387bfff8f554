"""Consumer-served VPN: a VM's frames over the mesh to a rootless gateway on its consumer (Omerta plugin `vpn`)."""

__version__ = "0.1.0"
