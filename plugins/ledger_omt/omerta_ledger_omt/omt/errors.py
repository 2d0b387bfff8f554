"""Errors raised by the ``.omt`` toolchain and runtime: one base type, one line each."""

from __future__ import annotations

from omerta_core.errors import OmertaError


class OmtError(OmertaError):
    """Base of every error the ``.omt`` toolchain raises on purpose."""


class OmtSyntaxError(OmtError):
    """Source that is not ``.omt``; renders as ``file:line:col: message``."""

    def __init__(self, message: str, line: int, column: int, path: str = "<string>") -> None:
        self.message = message
        self.line = line
        self.column = column
        self.path = path
        super().__init__(f"{path}:{line}:{column}: {message}")


class OmtRuntimeError(OmtError):
    """An actor that cannot go on: unknown trigger, failed native, runaway auto chain."""
