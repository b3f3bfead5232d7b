"""Shaping report rows for the dashboard: SVG bar geometry, top lists, totals, number formats.

Pure functions of the rows `reports.usage` returns; nothing here reads the database or Flask.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

# Tableau 10 (colour-blind aware, distinct on white); the last colour is kept for "other".
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
)  # fmt: skip
OTHER_COLOUR = "#bab0ac"
OTHER = "other models"
NO_MODEL = "(no model)"

# Chart canvas (SVG user units) and the margins around the plot area.
WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 12, 36
TICKS = 5  # with axis tops of 1, 2, 2.5 or 5 × 10^n, every tick is a round number
MAX_BAR_WIDTH = 56
MAX_DAY_LABELS = 16


@dataclass(frozen=True)
class Bar:
    """One rectangle: the value of one model on one day, stacked on the models below it."""

    day: str
    model: str
    value: float
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart, one stack per day, ready for the template to draw."""

    metric: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: list[Bar]
    ticks: list[Tick]
    day_labels: list[DayLabel]
    legend: list[tuple[str, str]]

    @property
    def empty(self) -> bool:
        return not self.bars


def model_name(row: dict[str, Any]) -> str:
    return str(row.get("model") or NO_MODEL)


def day_range(days: Iterable[str]) -> list[str]:
    """Every day from the earliest to the latest of `days` (`YYYY-MM-DD`), gaps filled."""
    parsed = sorted({date.fromisoformat(d) for d in days})
    if not parsed:
        return []
    count = (parsed[-1] - parsed[0]).days + 1
    return [(parsed[0] + timedelta(days=i)).isoformat() for i in range(count)]


def model_colours(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """A colour per model, the costliest first (then by tokens, then name); models beyond the
    palette share one colour under `OTHER`. The same map colours every chart of a page."""
    cost: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for row in rows:
        name = model_name(row)
        cost[name] = cost.get(name, 0.0) + (row.get("cost_usd") or 0.0)
        tokens[name] = tokens.get(name, 0) + (row.get("total_tokens") or 0)
    ranked = sorted(cost, key=lambda m: (-cost[m], -tokens[m], m))
    if len(ranked) <= len(PALETTE):
        return dict(zip(ranked, PALETTE, strict=False))
    keep = len(PALETTE) - 1
    colours = dict(zip(ranked[:keep], PALETTE, strict=False))
    colours |= dict.fromkeys(ranked[keep:], OTHER_COLOUR)
    return colours


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above `value` (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5):
        if value <= step * magnitude * (1 + 1e-9):  # float error must not bump 0.3 to 0.5
            return float(step * magnitude)
    return float(10 * magnitude)


def stacked_bars(
    rows: Sequence[dict[str, Any]],
    metric: str,
    colours: dict[str, str],
    label: Callable[[float], str] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Geometry of `metric` (a numeric field of the rows) per day, stacked by model.

    One bar per (day, model) row of non-zero value (or per (day, "other models") when models
    were folded): a zero draws nothing and names no model in the legend, but its day keeps its
    slot. Heights are proportional to the values; the axis tops out at `nice_ceiling` of the
    tallest stack. `label` formats the axis ticks (default: `count`).
    """
    fmt = label or count
    values: dict[tuple[str, str], float] = {}
    for row in rows:
        model = model_name(row)
        name = OTHER if colours.get(model) == OTHER_COLOUR else model
        ident = (row["day"], name)
        values[ident] = values.get(ident, 0.0) + float(row.get(metric) or 0)
    days = day_range(day for day, _ in values)
    values = {ident: value for ident, value in values.items() if value}
    legend = _legend(colours)
    order = {name: i for i, (name, _) in enumerate(legend)}
    left, top, right, bottom = LEFT, TOP, width - RIGHT, height - BOTTOM
    stacks: dict[str, float] = {}
    for (day, _), value in values.items():
        stacks[day] = stacks.get(day, 0.0) + value
    scale_max = nice_ceiling(max(stacks.values(), default=0.0))
    plot_h = bottom - top
    slot = (right - left) / len(days) if days else 0.0
    bar_w = min(MAX_BAR_WIDTH, max(1.0, slot * 0.7))
    index = {day: i for i, day in enumerate(days)}
    colour_of = dict(legend)
    bars: list[Bar] = []
    base: dict[str, float] = {}
    for day, name in sorted(values, key=lambda k: (k[0], order.get(k[1], len(order)))):
        value = values[(day, name)]
        h = value / scale_max * plot_h
        below = base.get(day, 0.0)
        base[day] = below + h
        x = left + index[day] * slot + (slot - bar_w) / 2
        top_y = bottom - below - h
        colour = colour_of.get(name, OTHER_COLOUR)
        bars.append(
            Bar(
                day, name, value, round(x, 2), round(top_y, 2), round(bar_w, 2), round(h, 2), colour
            )
        )
    ticks = [
        Tick(round(bottom - plot_h * i / TICKS, 2), fmt(scale_max * i / TICKS))
        for i in range(TICKS + 1)
    ]
    every = max(1, math.ceil(len(days) / MAX_DAY_LABELS))
    day_labels = [
        DayLabel(round(left + i * slot + slot / 2, 2), day[5:])
        for i, day in enumerate(days)
        if i % every == 0
    ]
    used = {name for _, name in values}
    return Chart(
        metric, width, height, left, top, right, bottom, bars, ticks, day_labels,
        [(name, colour) for name, colour in legend if name in used],
    )  # fmt: skip


def _legend(colours: dict[str, str]) -> list[tuple[str, str]]:
    named = [(m, c) for m, c in colours.items() if c != OTHER_COLOUR]
    if len(named) < len(colours):
        named.append((OTHER, OTHER_COLOUR))
    return named


def top_by_cost(rows: Sequence[dict[str, Any]], field: str, n: int = 10) -> list[dict[str, Any]]:
    """The `n` rows of highest cost (then most requests), each with `name` set from `field`."""
    ranked = sorted(
        rows, key=lambda r: (-(r.get("cost_usd") or 0.0), -r["requests"], str(r.get(field)))
    )
    return [r | {"name": r.get(field) or f"(no {field})"} for r in ranked[:n]]


def totals(row: dict[str, Any] | None, per_group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers from the totals row of `reports.usage(by=())`; without one, summed
    from `per_group` rows (latency percentiles cannot be summed: then None)."""
    if row is None:
        row = {"latency_p50_ms": None, "latency_p95_ms": None}
        for name in ("requests", "errors", "total_tokens"):
            row[name] = sum(r.get(name) or 0 for r in per_group)
        row["cost_usd"] = sum(r.get("cost_usd") or 0.0 for r in per_group)
    requests = row.get("requests") or 0
    errors = row.get("errors") or 0
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests * 100 if requests else 0.0,
        "cost_usd": row.get("cost_usd") or 0.0,
        "total_tokens": row.get("total_tokens") or 0,
        "latency_p50_ms": row.get("latency_p50_ms"),
        "latency_p95_ms": row.get("latency_p95_ms"),
    }


# ---- number formats (also the template filters) -----------------------------------------


def usd(value: float | None) -> str:
    """`$1,234.57`, `$0.50`, `$0.1234` (at most four decimals below a dollar), `$0.00123` (four
    significant digits below a cent), `$0`; `-` for unknown."""
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:  # fixed notation (never 6.25e-05), four significant digits
        places = 3 - math.floor(math.log10(abs(value)))
        return f"${value:.{places}f}".rstrip("0")
    if abs(value) >= 1:
        return f"${value:,.2f}"
    whole, _, decimals = f"{value:.4f}".partition(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def count(value: float | None) -> str:
    """`950`, `12.3k`, `4.5M` (`-` for unknown)."""
    if value is None:
        return "-"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) and not value.is_integer() else f"{value:.0f}"


def ms(value: float | None) -> str:
    """`850 ms`, `2.4 s` (`-` for unknown)."""
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
