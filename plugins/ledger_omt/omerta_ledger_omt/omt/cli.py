"""``omerta omt``: check, lint, format, document, graph and play ``.omt`` specs.

Exit codes: 0 when clean (warnings allowed unless ``--strict``), 1 when a file has
errors (or would be reformatted, or a scenario missed its expected outcome), 2 for
usage errors. Reads the named files; ``fmt`` and ``lint --fix`` rewrite them.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import click

from omerta_ledger_omt.omt.ast import Module
from omerta_ledger_omt.omt.diagnostics import Diagnostic
from omerta_ledger_omt.omt.docgen import markdown, mermaid
from omerta_ledger_omt.omt.errors import OmtError, OmtSyntaxError
from omerta_ledger_omt.omt.formatter import format_source
from omerta_ledger_omt.omt.linter import LintReport, fix_file, lint_file
from omerta_ledger_omt.omt.loader import load_with_imports, resolve_spec, shipped_specs_dir
from omerta_ledger_omt.omt.player import Scenario, play
from omerta_ledger_omt.omt.runtime import Program
from omerta_ledger_omt.omt.scenarios import scenarios_for
from omerta_ledger_omt.omt.validator import validate

SPEC_HELP = "a .omt file, or the name of a shipped spec (see 'omerta omt specs')"


def _check_report(path: Path) -> LintReport:
    try:
        module, imported = load_with_imports(path)
    except OmtSyntaxError as exc:
        return LintReport(exc.path, [Diagnostic("error", "syntax", exc.message, exc.line, exc.column)])
    return LintReport(str(path), validate(module, imported))


def _emit(reports: list[LintReport], as_json: bool, strict: bool, fix_hint: str = "omerta omt lint --fix") -> None:
    if as_json:
        items = [d.to_json(r.path) for r in reports for d in r.diagnostics]
        click.echo(json.dumps(items, indent=2))
    else:
        for r in reports:
            for d in r.diagnostics:
                click.echo(d.render(r.path))
        errors, warnings = sum(r.errors for r in reports), sum(r.warnings for r in reports)
        fixable = sum(1 for r in reports for d in r.diagnostics if d.fix)
        tail = f"; {fixable} fixable with `{fix_hint}`" if fixable else ""
        click.echo(f"{len(reports)} file(s): {errors} error(s), {warnings} warning(s){tail}", err=True)
    failed = any(r.errors or (strict and r.warnings) for r in reports)
    sys.exit(1 if failed else 0)


def _paths(specs: tuple[str, ...]) -> list[Path]:
    if not specs:
        raise click.UsageError("name at least one .omt file or shipped spec")
    try:
        return [resolve_spec(s) for s in specs]
    except OmtError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(name="omt")
def omt_group() -> None:
    """The .omt transaction language: check, lint, fmt, doc, graph and run specs."""


@omt_group.command()
@click.argument("specs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics as a JSON list.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def check(specs: tuple[str, ...], as_json: bool, strict: bool) -> None:
    """Parse and validate SPECS (files or shipped spec names)."""
    _emit([_check_report(p) for p in _paths(specs)], as_json, strict)


@omt_group.command()
@click.argument("specs", nargs=-1)
@click.option("--fix", is_flag=True, help="Apply unambiguous fixes (typos of declared names) in place.")
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics as a JSON list.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def lint(specs: tuple[str, ...], fix: bool, as_json: bool, strict: bool) -> None:
    """Validate SPECS and apply the style and usage rules; --fix repairs what is unambiguous."""
    reports = []
    for path in _paths(specs):
        if fix:
            applied, report = fix_file(path)
            if applied and not as_json:
                click.echo(f"{path}: applied {applied} fix(es)", err=True)
            reports.append(report)
        else:
            reports.append(lint_file(path))
    _emit(reports, as_json, strict, fix_hint="--fix")


@omt_group.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Change nothing; show the diff and exit 1 if not formatted.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run: files changed or to change.")
def fmt(files: tuple[Path, ...], check_only: bool, as_json: bool) -> None:
    """Rewrite FILES in the canonical layout (idempotent; comments are kept)."""
    if not files:
        raise click.UsageError("name at least one .omt file")
    changed: list[dict[str, str]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            formatted = format_source(text, str(path))
        except OmtSyntaxError as exc:
            raise click.ClickException(str(exc)) from None
        if formatted == text:
            continue
        diff = "".join(
            difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True), str(path), f"{path} (formatted)"
            )
        )
        changed.append({"path": str(path), "diff": diff})
        if not check_only:
            path.write_text(formatted, encoding="utf-8")
        if as_json:
            continue
        if check_only:
            click.echo(diff, nl=False)
        else:
            click.echo(f"{path}: reformatted")
    if as_json:
        key = "would_reformat" if check_only else "reformatted"
        click.echo(json.dumps({key: changed, "files": len(files)}, indent=2))
    elif check_only and changed:
        click.echo(f"{len(changed)} of {len(files)} file(s) would be reformatted", err=True)
    sys.exit(1 if check_only and changed else 0)


def _load_clean(path: Path) -> tuple[Module, list[Module]]:
    """Load a spec for rendering; a spec with errors is refused (exit 1) with its diagnostics."""
    report = _check_report(path)
    if report.errors:
        for diagnostic in report.diagnostics:
            if diagnostic.severity == "error":
                click.echo(diagnostic.render(report.path), err=True)
        raise click.ClickException(f"{path.name} has {report.errors} error(s); fix them first (`omerta omt check`)")
    return load_with_imports(path)


@omt_group.command()
@click.argument("spec")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def doc(spec: str, output: Path | None) -> None:
    """Markdown page for SPEC: tables of messages and parameters, a state diagram per actor."""
    path = _paths((spec,))[0]
    module, _ = _load_clean(path)
    text = markdown(module, path.name)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@omt_group.command()
@click.argument("spec")
@click.option("--actor", help="Only this actor (default: all).")
def graph(spec: str, actor: str | None) -> None:
    """Mermaid state diagram(s) of SPEC's actors."""
    path = _paths((spec,))[0]
    module, _ = _load_clean(path)
    actors = [a for a in module.actors if actor is None or a.name == actor]
    if not actors:
        raise click.UsageError(
            f"no actor {actor!r} in {path.name} (actors: {', '.join(a.name for a in module.actors)})"
        )
    for a in actors:
        click.echo(f"%% actor {a.name}")
        click.echo(mermaid(a))


@omt_group.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def specs(as_json: bool) -> None:
    """List the specs shipped with this plugin and their built-in scenarios."""
    rows = []
    for path in sorted(shipped_specs_dir().glob("*.omt")):
        try:
            names = sorted(scenarios_for(path.stem))
        except OmtError:
            names = []
        rows.append({"name": path.stem, "path": str(path), "scenarios": names})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<24} {row['path']}")
        click.echo(f"{'':<24} scenarios: {', '.join(row['scenarios']) or '-'}")


@omt_group.command()
@click.argument("spec")
@click.option("-s", "--scenario", default="happy", show_default=True, help="Built-in scenario to play.")
@click.option("--scenario-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A JSON scenario.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON (trace records, states, drops).")
def run(spec: str, scenario: str, scenario_file: Path | None, as_json: bool) -> None:
    """Play SPEC with all actors in one process and print the message trace.

    Exit 1 when the scenario's expected end states are not reached.
    """
    path = _paths((spec,))[0]
    program = Program.load(path)
    if scenario_file is not None:
        chosen: Scenario = Scenario.from_json(scenario_file)
    else:
        available = scenarios_for(path.stem)
        if scenario not in available:
            raise click.UsageError(f"no scenario {scenario!r} for {path.stem} (have: {', '.join(available)})")
        chosen = available[scenario]
    result = play(program, chosen)
    unmet = result.unmet_expectations(chosen.expect)
    if as_json:
        dropped = [{"peer": p, "message": m, "reason": r} for p, m, r in result.dropped]
        click.echo(json.dumps({"scenario": chosen.name, "trace": result.records, "states": result.states,
                               "dropped": dropped, "unmet": unmet}, indent=2))  # fmt: skip
    else:
        click.echo(f"# {path.stem} / {chosen.name}: {chosen.description}")
        for line in result.trace:
            click.echo(line)
        click.echo("# final states: " + ", ".join(f"{p}={s}" for p, s in result.states.items()))
        for problem in unmet:
            click.echo(f"# UNEXPECTED {problem}")
    sys.exit(1 if unmet else 0)
