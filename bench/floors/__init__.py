"""Honest floors: the least a correct server on the same stack does for the same job.

Each module here is a bare Starlette app served by uvicorn, written without importing the
service (no SQL, helpers or settings of ours), so a benchmark's ratio says how close the
service comes to what the job needs, not to its own design. Run one with
``python -m uvicorn bench.floors.NAME:app``.
"""
