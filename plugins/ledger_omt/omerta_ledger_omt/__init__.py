"""The .omt transaction language toolchain and runtime, and the per-peer chain ledger (Omerta plugin `omt`)."""

__version__ = "0.1.0"
