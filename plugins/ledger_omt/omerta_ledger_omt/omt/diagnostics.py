"""Diagnostics (errors and warnings) with positions, suggestions and optional fixes.

Pure data plus rendering (text and JSON) and fix application on source text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# difflib similarity needed before a name is offered as "did you mean"; 0.6 is difflib's
# own default and keeps 'REQUET' -> 'REQUEST' while rejecting 'MIN' -> 'f'.
SUGGEST_CUTOFF = 0.6
# A fix is applied automatically only when exactly one candidate is within this many
# single-character edits (a swap of neighbours counts as one) per started group of
# FIX_CHARS_PER_EDIT characters, or differs only in case: --fix never guesses.
FIX_CHARS_PER_EDIT = 4


@dataclass(frozen=True)
class Fix:
    """Replace the first whole-word ``old`` at or after ``column`` on ``line`` with ``new``."""

    line: int
    column: int
    old: str
    new: str


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    line: int = 0
    column: int = 0
    fix: Fix | None = None

    def render(self, path: str) -> str:
        where = f"{path}:{self.line}:{self.column}" if self.line else path
        fixable = " [fixable]" if self.fix else ""
        return f"{where}: {self.severity}: {self.message} [{self.code}]{fixable}"

    def to_json(self, path: str) -> dict[str, object]:
        out = asdict(self)
        out["path"] = path
        return out


def similar(name: str, candidates: Iterable[str]) -> list[str]:
    """Candidates close to ``name``, best first; a case-only difference ranks first."""
    pool = sorted(set(candidates) - {name})
    same_case = [c for c in pool if c.lower() == name.lower()]
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in pool], n=3, cutoff=SUGGEST_CUTOFF)
    by_lower = {c.lower(): c for c in pool}
    return list(dict.fromkeys(same_case + [by_lower[c] for c in close]))[:3]


def suggestion_text(name: str, candidates: Iterable[str]) -> str:
    found = similar(name, candidates)
    if not found:
        return ""
    if len(found) == 1:
        return f"; did you mean '{found[0]}'?"
    return "; did you mean one of " + ", ".join(f"'{c}'" for c in found) + "?"


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def obvious_fix(name: str, candidates: Iterable[str], line: int, column: int) -> Fix | None:
    """A fix when exactly one candidate is unmistakably meant."""
    if line <= 0:
        return None
    pool = set(candidates) - {name}
    same_case = [c for c in pool if c.lower() == name.lower()]
    if len(same_case) == 1:
        return Fix(line, column, name, same_case[0])
    budget = max(1, -(-len(name) // FIX_CHARS_PER_EDIT) - 1)
    distances = {c: edit_distance(name.lower(), c.lower()) for c in pool}
    close = [c for c, d in distances.items() if d <= budget and d < len(name)]  # 'Q' is not a typo of 'S'
    return Fix(line, column, name, close[0]) if len(close) == 1 else None


def apply_fixes(text: str, fixes: Sequence[Fix]) -> tuple[str, int]:
    """Apply fixes to ``text``; return the new text and how many were applied."""
    lines = text.split("\n")
    applied = 0
    ordered = sorted(set(fixes), key=lambda f: (f.line, f.column), reverse=True)
    for fix in ordered:
        if not 1 <= fix.line <= len(lines):
            continue
        current = lines[fix.line - 1]
        start = max(0, fix.column - 1)
        pattern = re.compile(rf"\b{re.escape(fix.old)}\b")
        m = pattern.search(current, start)
        if m is None:
            continue
        lines[fix.line - 1] = current[: m.start()] + fix.new + current[m.end() :]
        applied += 1
    return "\n".join(lines), applied


def count(diagnostics: Iterable[Diagnostic], severity: Severity) -> int:
    return sum(1 for d in diagnostics if d.severity == severity)
