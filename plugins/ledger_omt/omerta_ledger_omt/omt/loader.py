"""Load an ``.omt`` file with its imports.

``imports a/b`` names ``a/b.omt``, searched in the importing file's directory, then its
ancestors, then the specs shipped with this package. Imports resolve recursively, each
file once (cycles are cut). Local declarations override imported ones. Reads files only.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtError, OmtSyntaxError
from omerta_ledger_omt.omt.parser import parse

SPECS_PACKAGE = "omerta_ledger_omt.specs"


def shipped_specs_dir() -> Path:
    with as_file(files(SPECS_PACKAGE)) as path:
        return Path(path)


def shipped_spec(name: str) -> Path:
    """Path of a spec shipped with the package, by file stem (``00_escrow_lock``) or file name."""
    base = shipped_specs_dir()
    for candidate in (base / name, base / f"{name}.omt"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in base.glob("*.omt")))
    raise OmtError(f"no shipped spec named {name!r} (shipped: {known})")


def resolve_spec(name_or_path: str) -> Path:
    """A file path if it exists, else a shipped spec name."""
    p = Path(name_or_path)
    return p if p.is_file() else shipped_spec(name_or_path)


def _find_import(path: str, importer: Path) -> Path | None:
    rel = Path(*path.split("/"))
    for base in [importer.parent, *importer.parent.parents, shipped_specs_dir()]:
        candidate = base / rel.with_suffix(".omt")
        if candidate.is_file():
            return candidate
    return None


def load_with_imports(path: Path) -> tuple[ast.Module, list[ast.Module]]:
    """Parse ``path`` and everything it imports (depth first, each file once)."""
    module = parse(path.read_text(encoding="utf-8"), str(path))
    imported: list[ast.Module] = []
    seen = {path.resolve()}

    def visit(mod: ast.Module, importer: Path) -> None:
        for imp in mod.imports:
            found = _find_import(imp.path, importer)
            if found is None:
                raise OmtSyntaxError(
                    f"cannot find import '{imp.path}' ({imp.path}.omt)", imp.line, imp.column, str(importer)
                )
            if found.resolve() in seen:
                continue
            seen.add(found.resolve())
            sub = parse(found.read_text(encoding="utf-8"), str(found))
            visit(sub, found)
            imported.append(sub)

    visit(module, path)
    return module, imported
