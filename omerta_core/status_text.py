"""``omerta status`` for people: the node first, then one block per running backend and plugin section.

Nested counters become ``key value`` lists on one line, lists of records a
count (``--json`` has them). Pure; touches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_lines(result: Mapping[str, Any]) -> list[str]:
    """A readable summary of ``status``: the node, then one block per running backend and plugin section."""
    lines = [
        f"peer      {result['peer_id']}",
        f"pid       {result['pid']}, up {_duration(float(result['uptime_s']))}",
        f"state     {result['state_dir']}",
        "plugins   " + (", ".join(f"{n} {v}" for n, v in result["plugins"].items()) or "none"),
    ]
    for kind, running in result["services"].items():
        for name, detail in running.items():
            lines += ["", f"{kind.replace('_', ' ')}: {name}", *_detail_lines(detail)]
    for plugin, section in result.get("plugin_status", {}).items():
        lines += ["", f"plugin {plugin}", *_detail_lines(section)]
    control = result.get("control", {})
    if any(control.values()):
        lines += ["", "control   " + _inline(control)]
    return lines


def _detail_lines(detail: Any, indent: str = "  ") -> list[str]:
    if not isinstance(detail, Mapping):
        return [f"{indent}{_scalar(detail)}"]
    lines = []
    for key, value in detail.items():
        label = f"{indent}{key.replace('_', ' ')}"
        if isinstance(value, Mapping) and value and all(not isinstance(v, Mapping | list) for v in value.values()):
            lines.append(f"{label}: {_inline(value)}")
        elif isinstance(value, Mapping) and value:
            lines += [f"{label}:", *_detail_lines(value, indent + "  ")]
        elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
            lines.append(f"{label}: {len(value)} (--json lists them)")
        else:
            lines.append(f"{label}: {_scalar(value)}")
    return lines


def _inline(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {_scalar(v)}" for k, v in values.items()) or "-"


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == {}:
        return "-"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
