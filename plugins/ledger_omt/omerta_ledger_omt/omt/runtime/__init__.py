"""Sans-IO interpreter for ``.omt`` actors.

Entry points: :class:`Program` (a checked module, ready to run),
:class:`ActorInstance` (one actor of one transaction session: feed it an event and the
time, get back actions) and :class:`SessionTable` (instances keyed per session). No
sockets, clocks or files here: the host does the I/O and applies the actions.
"""

from omerta_ledger_omt.omt.runtime.actor import MAX_AUTO_CHAIN, MAX_BUFFERED_MESSAGES, ActorInstance, verify_envelope
from omerta_ledger_omt.omt.runtime.events import (
    Action,
    AppendBlockAction,
    Deliver,
    Envelope,
    Event,
    FireTrigger,
    MessageBuffered,
    MessageDropped,
    SendAction,
    StateChanged,
    StoreChanged,
    Tick,
)
from omerta_ledger_omt.omt.runtime.host import LedgerView, MemoryLedger, Signer
from omerta_ledger_omt.omt.runtime.natives import NativeContext, NativeRegistry, standard_natives
from omerta_ledger_omt.omt.runtime.program import Program
from omerta_ledger_omt.omt.runtime.session import SessionTable

__all__ = [
    "MAX_AUTO_CHAIN",
    "MAX_BUFFERED_MESSAGES",
    "Action",
    "ActorInstance",
    "AppendBlockAction",
    "Deliver",
    "Envelope",
    "Event",
    "FireTrigger",
    "LedgerView",
    "MemoryLedger",
    "MessageBuffered",
    "MessageDropped",
    "NativeContext",
    "NativeRegistry",
    "Program",
    "SendAction",
    "SessionTable",
    "Signer",
    "StateChanged",
    "StoreChanged",
    "Tick",
    "standard_natives",
    "verify_envelope",
]
