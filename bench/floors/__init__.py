"""Honest floors: the least a correct server on the same stack does for the same job.

Each module here is a bare Starlette app served by uvicorn, written without importing the
service (no SQL, helpers or settings of ours), so a benchmark's ratio says how close the
service comes to what the job needs, not to its own design. Run one with
``python -m uvicorn bench.floors.NAME:app``.

Each also answers ``GET /healthz``, so a floor is started and awaited by the same launcher as
the service (``bench.common.FloorServer``, a ``tests.support.servers.ServerProcess``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


HEALTHZ = Route("/healthz", _healthz, methods=["GET"])
