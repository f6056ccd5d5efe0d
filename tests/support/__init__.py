"""What tests (and the benchmarks) share that is not a fixture: ports, servers, an SMTP sink.

Fixtures stay in ``tests/conftest.py``; they build on these.
"""
