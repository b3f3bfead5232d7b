"""Rows as text: an aligned table, CSV (header first) or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ..errors import BadArgument

FORMATS = ("table", "csv", "json")


def render(rows: list[dict[str, Any]], fields: Sequence[str], fmt: str) -> str:
    """Rows as an aligned text table, CSV (header first) or a JSON array."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise BadArgument(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    cells = [[_cell(r.get(f)) for f in fields] for r in rows]
    widths = [max([len(f)] + [len(c[i]) for c in cells]) for i, f in enumerate(fields)]
    lines = ["  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()]
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)
