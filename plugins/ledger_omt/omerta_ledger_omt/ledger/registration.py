"""What the ledger contributes to the ``omt`` plugin's hooks: its backend record, CLI group, control methods, defaults.

``plugin.py`` calls these; keeping them here keeps the shared hook module small.
Touches nothing.
"""

from __future__ import annotations

from typing import Any

import click

from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.ledger import Ledger
from omerta_core.interfaces.transport import Transport
from omerta_core.records import Need, ServiceRecord
from omerta_ledger_omt.ledger.backend import CONFIG_DEFAULTS, OmtLedger


def ledger_records() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="omt",
            provides=Ledger,
            needs=(Need(Transport, install="omerta-transport-udp"), Need(Discovery, optional=True)),
            factory=OmtLedger,
            description="per-peer signed chains in SQLite, escrow with witnesses, local trust, chain sync",
        )
    ]


def ledger_commands() -> list[click.Command]:
    from omerta_ledger_omt.ledger.cli import COMMANDS  # noqa: PLC0415 - click group built only when the CLI asks

    return list(COMMANDS)


def ledger_control_methods() -> dict[str, Any]:
    from omerta_ledger_omt.ledger.control import METHODS  # noqa: PLC0415 - loaded only by a running node

    return dict(METHODS)


def ledger_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)
