"""Markdown documentation of a transaction, generated from its parsed module.

One page per transaction: header, parameters, enums, blocks and messages as tables,
functions with their signatures, and per actor a Mermaid state diagram with tables of
its states, triggers and transitions. Pure: module in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.formatter import action, expr

# Mermaid labels: longer guards are cut to keep the diagram legible.
LABEL_WIDTH = 48
MERMAID_SUBSTITUTIONS = [
    ("=>", " → "),
    (">=", " ≥ "),
    ("<=", " ≤ "),
    ("!=", " ≠ "),
    ("==", " = "),
    (">", " > "),
    ("<", " < "),
]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if text is not None else ""


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _label(text: str) -> str:
    for old, new in MERMAID_SUBSTITUTIONS:
        text = text.replace(old, new)
    text = re.sub(r"[^\w\s().,≥≤≠=<>+\-*/→]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1] + "…"


def event_text(t: ast.Transition) -> str:
    ev = t.event
    return {"auto": "auto", "timeout": f"timeout({ev.name})"}.get(ev.kind, f"on {ev.name}")


def mermaid(actor: ast.ActorDecl) -> str:
    """A ``stateDiagram-v2`` of one actor."""
    lines = ["stateDiagram-v2"]
    for s in actor.states:
        if s.description:
            lines.append(f"    {s.name} : {_label(s.description)}")
        if s.initial:
            lines.append(f"    [*] --> {s.name}")
    for t in actor.transitions:
        label = event_text(t) + (f" when {expr(t.guard)}" if t.guard is not None else "")
        lines.append(f"    {t.source} --> {t.target} : {_label(label)}")
        if t.else_target is not None:
            lines.append(f"    {t.source} --> {t.else_target} : {_label(event_text(t) + ' else')}")
    lines += [f"    {s.name} --> [*]" for s in actor.states if s.terminal]
    return "\n".join(lines)


def _actor_section(actor: ast.ActorDecl) -> list[str]:
    out = [f"## Actor `{actor.name}`", ""]
    if actor.description:
        out += [actor.description, ""]
    out += ["```mermaid", mermaid(actor), "```", ""]
    out += ["### States", ""]
    flags = lambda s: ", ".join(f for f, on in (("initial", s.initial), ("terminal", s.terminal)) if on)  # noqa: E731
    out += _table(["State", "Kind", "Description"], ((f"`{s.name}`", flags(s), s.description) for s in actor.states))
    if actor.triggers:
        out += ["", "### Triggers", ""]
        out += _table(
            ["Trigger", "Parameters", "Allowed in", "Description"],
            (
                (
                    f"`{t.name}`",
                    ", ".join(f"`{p.name}: {p.type}`" for p in t.params),
                    ", ".join(t.allowed_in),
                    t.description,
                )
                for t in actor.triggers
            ),
        )
    if actor.store:
        out += ["", "### Store", ""]
        out += _table(["Variable", "Type"], ((f"`{f.name}`", f"`{f.type}`") for f in actor.store))
    out += ["", "### Transitions", ""]
    rows = []
    for t in actor.transitions:
        actions = "; ".join(action(a) for a in t.actions)
        guard = f"`{expr(t.guard)}`" if t.guard is not None else ""
        orelse = f"else → `{t.else_target}`" + (
            f": {'; '.join(action(a) for a in t.else_actions)}" if t.else_actions else ""
        )
        rows.append(
            (
                f"`{t.source}`",
                f"`{t.target}`",
                event_text(t),
                guard,
                f"`{actions}`" if actions else "",
                orelse if t.else_target else "",
            )
        )
    out += _table(["From", "To", "Event", "Guard", "Actions", "Otherwise"], rows)
    return [*out, ""]


def markdown(module: ast.Module, source_name: str = "") -> str:
    header = module.header
    title = f"Transaction {header.id}: {header.name}" if header else f"Transaction {source_name}"
    out = [f"# {title}", ""]
    if header and header.description:
        out += [header.description, ""]
    if source_name:
        out += [f"Generated from `{source_name}` by `omerta omt doc`; edit the `.omt` file, not this page.", ""]
    out += ["## Actors", ""]
    out += [f"- `{a.name}`: {a.description or ''}".rstrip(": ") for a in module.actors] + [""]
    if module.parameters:
        out += ["## Parameters", ""]
        out += _table(
            ["Name", "Value", "Unit", "Description"],
            ((f"`{p.name}`", p.value, p.unit, p.description) for p in module.parameters),
        )
        out.append("")
    if module.enums:
        out += ["## Enums", ""]
        out += _table(
            ["Enum", "Values", "Description"],
            ((f"`{e.name}`", ", ".join(v.name for v in e.values), e.description) for e in module.enums),
        )
        out.append("")
    if module.blocks:
        out += ["## Blocks", ""]
        out += _table(
            ["Block", "Appended by", "Fields"],
            (
                (f"`{b.name}`", ", ".join(b.writers), ", ".join(f"`{f.name}: {f.type}`" for f in b.fields))
                for b in module.blocks
            ),
        )
        out.append("")
    if module.messages:
        out += ["## Messages", ""]
        out += _table(
            ["Message", "From", "To", "Signed", "Fields"],
            (
                (f"`{m.name}`", m.sender, ", ".join(m.recipients), "yes" if m.signed else "no",
                 ", ".join(f"`{f.name}: {f.type}`" for f in m.fields))
                for m in module.messages
            ),
        )  # fmt: skip
        out.append("")
    if module.functions:
        out += ["## Functions", ""]
        for fn in module.functions:
            params = ", ".join(f"{p.name} {p.type}" for p in fn.params)
            kind = f"native, bound to `{fn.library}`" if fn.native else "pure"
            out.append(f"- `{fn.name}({params}) -> {fn.return_type}` ({kind})")
        out.append("")
    for actor in module.actors:
        out += _actor_section(actor)
    return "\n".join(out).rstrip() + "\n"
