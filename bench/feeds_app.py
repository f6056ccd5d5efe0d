"""The service with one extra route, ``/bench/floor``, for the feeds benchmark's floor.

``python -m bench.feeds_app PORT FLOOR_FILE`` serves ``create_app(Settings.from_env())`` on
127.0.0.1:PORT with the HTTP protocol ``scheduler serve`` uses. ``/bench/floor`` answers with
the bytes in FLOOR_FILE (read on first use: the benchmark writes the feed's bytes there after
its first request), so the floor is the same server returning the same bytes, trivially; to a
client that accepts gzip, compressed once on first use, as the feed itself is served.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from pathlib import Path

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.app import create_app
from scheduler.config import Settings
from scheduler.web.feeds import CALENDAR_TYPE


def main(port: int, floor_file: Path) -> None:
    app = create_app(Settings.from_env())
    body: list[tuple[bytes, bytes]] = []

    async def floor(request: Request) -> Response:
        if not body:
            data = await asyncio.to_thread(floor_file.read_bytes)
            body.append((data, gzip.compress(data, compresslevel=6, mtime=0)))
        data, zipped = body[0]
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(zipped, media_type=CALENDAR_TYPE, headers=headers)
        return Response(data, media_type=CALENDAR_TYPE, headers={"Vary": "Accept-Encoding"})

    app.router.routes.insert(0, Route("/bench/floor", floor))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="scheduler.web.protocol:CappedHttpToolsProtocol",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
