"""macOS Virtualization.framework hypervisor backend (Omerta plugin `macos`)."""

__version__ = "0.1.0"
