"""``python -m bench [NAME ...]``: run the benchmarks, print one table, keep the figures.

NAME is a module's name without its ``bench_`` prefix (``python -m bench registration``).
Run it from the repository root: the benchmarks import ``tests.support`` for their servers.
``BENCH_QUICK=1`` makes each one small, a smoke run whose figures mean nothing.
Exits 1 when a row misses its target, 2 for an unknown name.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import pkgutil
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (
    "benchmark",
    "metric",
    "value",
    "floor",
    "ratio",
    "old floor",
    "old ratio",
    "target",
    "ok",
)


def discover() -> list[str]:
    """Names of the benchmark modules, without their ``bench_`` prefix, in a stable order."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_")
    )


def run_one(name: str) -> list[dict[str, Any]]:
    module = importlib.import_module(f"bench.bench_{name}")
    result = module.run()
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return list(result)


async def _awaited(result: Any) -> Any:
    return await result


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [[cell(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(COLUMNS)]
    numeric = {"value", "floor", "ratio", "old floor", "old ratio"}

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if c in numeric else v.ljust(w)
            for c, v, w in zip(COLUMNS, values, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(COLUMNS), rule, *(line(values) for values in cells)])


def main(argv: Sequence[str]) -> int:
    available = discover()
    if {"-h", "--help"} & set(argv):
        print((__doc__ or "").strip() + f"\n\nNAME is one of: {', '.join(available)}")
        return 0
    chosen = [name.removeprefix("bench_") for name in argv] or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; have: {', '.join(available)}")
        return 2
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for name in chosen:
        print(f"running {name} ...", flush=True)
        began = time.perf_counter()
        try:
            rows += run_one(name)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            rows.append(
                {
                    "benchmark": name,
                    "metric": "error",
                    "value": f"{type(exc).__name__}: {exc}",
                    "floor": None,
                    "ratio": None,
                    "target": "runs",
                    "ok": False,
                }
            )
        timings[name] = round(time.perf_counter() - began, 1)
    print()
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    report = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": timings,
        "rows": rows,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    missed = [r for r in rows if not r.get("ok")]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} rows on target; wrote {RESULTS / 'latest.json'}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
