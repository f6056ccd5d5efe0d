"""Benchmarks behind ``make bench``: each ``bench_<name>.py`` exposes ``run() -> list[dict]``."""
