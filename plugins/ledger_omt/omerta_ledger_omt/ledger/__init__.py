"""The per-peer chain ledger: signed hash-linked blocks, balances and escrow, trust, sync.

Pure modules (encoding, blocks, statements, proofs, chainstate, trust, witnesses,
settlement) touch nothing; :mod:`.store` touches one SQLite file; :mod:`.backend`,
:mod:`.sync_adapter`, :mod:`.cli` and :mod:`.control` are the thin I/O edges.
"""
