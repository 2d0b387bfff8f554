"""Hooks the rental plugin adds for third parties: their own admission rules.

Registered with the node's plugin manager when the rental service starts (as pytest plugins add
hooks with ``pytest_addhooks``), so any installed plugin may implement them. Signatures only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omerta_core.hookspecs import hookspec

if TYPE_CHECKING:
    from omerta_rental.admission import Candidate


@hookspec
def omerta_rental_admission(candidate: Candidate) -> str | None:
    """Return a one-line refusal reason to refuse ``candidate``, or ``None`` to let it through.

    Called on the provider after the built-in rules admitted the request; the first reason wins
    and reaches the consumer as it is.
    """
