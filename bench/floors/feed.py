"""The feed floor: Starlette on uvicorn returning one file's bytes with an ETag.

``GET /feed.ics`` answers the bytes of ``FLOOR_FEED_FILE`` (read on first use, as the benchmark
writes the service's feed there after its first request) with a strong ETag, and a matching
``If-None-Match`` with 304 and no body: the least any correct feed server does once it knows
nothing changed. Nothing of the service is imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_body: list[tuple[bytes, str]] = []


async def feed(request: Request) -> Response:
    if not _body:
        data = await asyncio.to_thread(Path(os.environ["FLOOR_FEED_FILE"]).read_bytes)
        _body.append((data, f'"{hashlib.sha256(data).hexdigest()[:32]}"'))
    data, etag = _body[0]
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="text/calendar; charset=utf-8", headers=headers)


app = Starlette(routes=[Route("/feed.ics", feed)])
