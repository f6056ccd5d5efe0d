"""Discover ``bench/bench_*.py``, run each, print one table of their rows.

Each module exposes ``run()`` (plain or async) returning rows with the keys in ``COLUMNS``; speed
is a ratio against a floor measured in the same run, so the table reads the same on any machine.
Exit status 1 when any row misses its target.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("benchmark", "metric", "value", "floor", "ratio", "target", "ok")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    wanted = set(argv)
    rows: list[dict[str, Any]] = []
    folder = Path(__file__).resolve().parent
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        if wanted and info.name.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        result = module.run()
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        rows.extend(result)
    table = [list(COLUMNS)] + [[_cell(row.get(c, "")) for c in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    return 0 if all(row.get("ok") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
