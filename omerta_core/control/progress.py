"""Progress notes from a control method back to the CLI that asked.

A method that takes seconds calls :func:`report` with one short sentence
(``"waiting for the guest to boot"``); the control server that runs the
method sends it to the waiting client as a progress frame. Outside a control
request (a test calling a backend directly, the node's own timers) a report
goes nowhere. Touches nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[str], None]

_reporter: ContextVar[Reporter | None] = ContextVar("omerta_progress_reporter", default=None)


def report(note: str) -> None:
    """Tell whoever asked for the running control request what it is doing now."""
    reporter = _reporter.get()
    if reporter is not None:
        reporter(note)


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Send every :func:`report` made inside this block (and tasks it starts) to ``reporter``."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
