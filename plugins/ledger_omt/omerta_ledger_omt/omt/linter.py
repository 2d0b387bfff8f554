"""Lint an ``.omt`` file: parse, resolve imports, validate, then style and usage rules.

Returns diagnostics; :func:`fix_file` applies the fixes that are unambiguous (typos of
declared names) and rewrites the file. Reads and writes only the linted file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.diagnostics import Diagnostic, apply_fixes
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.loader import load_with_imports
from omerta_ledger_omt.omt.validator import validate

UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
LOWER_SNAKE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class LintReport:
    path: str
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "warning")


def _names_in(node: object) -> set[str]:
    """Every identifier and called function name under ``node``."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            found.add(n.name)
        elif isinstance(n, ast.Call):
            found.add(n.function)
        if isinstance(n, tuple | list):
            stack.extend(n)
        elif isinstance(n, ast.Node):
            stack.extend(getattr(n, f) for f in n.__dataclass_fields__ if f not in ("line", "column", "end_line"))
    return found


def usage_rules(module: ast.Module, imported: Sequence[ast.Module] = ()) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if module.header is None and module.actors:
        out.append(Diagnostic("warning", "no-header", "file has actors but no 'transaction' header", 1, 1))
    used = _names_in(module.decls)
    used |= {t.event.name for a in module.actors for t in a.transitions if t.event.kind == "timeout"}
    for p in module.parameters:
        if p.name not in used:
            out.append(Diagnostic("warning", "unused-parameter", f"parameter {p.name} is never used", p.line, p.column))
    sent = {
        a.message
        for actor in module.actors
        for t in actor.transitions
        for a in (*t.actions, *t.else_actions)
        if isinstance(a, ast.Send | ast.Broadcast)
    }
    handled = {t.event.name for actor in module.actors for t in actor.transitions if t.event.kind == "message"}
    for m in module.messages:
        if m.name not in sent:
            out.append(Diagnostic("warning", "message-never-sent", f"message {m.name} is never sent", m.line, m.column))
        elif m.name not in handled:
            out.append(
                Diagnostic("warning", "message-never-handled", f"message {m.name} is never handled", m.line, m.column)
            )
    for fn in module.functions:
        if fn.name not in used:
            out.append(
                Diagnostic("warning", "unused-function", f"function {fn.name} is never called", fn.line, fn.column)
            )
    return out


def style_rules(module: ast.Module) -> list[Diagnostic]:
    checks: list[tuple[str, str, re.Pattern[str], ast.Node]] = []
    checks += [("parameter", p.name, UPPER_SNAKE, p) for p in module.parameters]
    checks += [("message", m.name, UPPER_SNAKE, m) for m in module.messages]
    checks += [("block", b.name, UPPER_SNAKE, b) for b in module.blocks]
    checks += [("enum", e.name, CAMEL, e) for e in module.enums]
    checks += [("enum value", v.name, UPPER_SNAKE, v) for e in module.enums for v in e.values]
    for a in module.actors:
        checks.append(("actor", a.name, CAMEL, a))
        checks += [("state", s.name, UPPER_SNAKE, s) for s in a.states]
        checks += [("trigger", t.name, LOWER_SNAKE, t) for t in a.triggers]
        checks += [("store variable", f.name, LOWER_SNAKE, f) for f in a.store]
    style = {UPPER_SNAKE: "UPPER_SNAKE", CAMEL: "CamelCase", LOWER_SNAKE: "lower_snake"}
    return [
        Diagnostic("warning", "naming", f"{kind} {name} should be {style[rx]}", node.line, node.column)
        for kind, name, rx, node in checks
        if not rx.match(name)
    ]


def lint_file(path: Path) -> LintReport:
    try:
        module, imported = load_with_imports(path)
    except OmtSyntaxError as exc:
        return LintReport(exc.path, [Diagnostic("error", "syntax", exc.message, exc.line, exc.column)])
    diagnostics = validate(module, imported) + usage_rules(module, imported) + style_rules(module)
    return LintReport(str(path), sorted(diagnostics, key=lambda d: (d.line, d.column, d.code)))


def fix_file(path: Path) -> tuple[int, LintReport]:
    """Apply every unambiguous fix; return how many were applied and the report after fixing."""
    report = lint_file(path)
    fixes = [d.fix for d in report.diagnostics if d.fix is not None]
    if not fixes:
        return 0, report
    text, applied = apply_fixes(path.read_text(encoding="utf-8"), fixes)
    if applied:
        path.write_text(text, encoding="utf-8")
    return applied, lint_file(path)
