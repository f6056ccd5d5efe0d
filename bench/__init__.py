"""The benchmarks behind ``make bench``: each ``bench_*.py`` module exposes ``run()``.

``run()`` (plain or async) returns rows ``{"benchmark", "metric", "value", "floor", "ratio",
"target", "ok"}``; ``python -m bench`` runs every module, or the ones named on its command line,
prints one table and writes ``bench/results/latest.json``.

``BENCH_QUICK=1`` makes every benchmark small: a smoke run that proves each still starts its
servers, drives them and checks what they did, in seconds; its figures mean nothing.
"""

from __future__ import annotations

import os

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def sized(full: int, quick: int) -> int:
    """``full`` for a real run, ``quick`` under ``BENCH_QUICK=1``."""
    return quick if QUICK else full
