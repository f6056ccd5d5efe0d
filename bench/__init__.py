"""The benchmarks behind ``make bench``: each ``bench_*.py`` module exposes ``run()``.

``run()`` (plain or async) returns rows ``{"benchmark", "metric", "value", "floor", "ratio",
"target", "ok"}``; ``python -m bench`` runs every module, or the ones named on its command line,
prints one table and writes ``bench/results/latest.json``.
"""
