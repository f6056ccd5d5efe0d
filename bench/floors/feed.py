"""The feed floor: Starlette on uvicorn returning one file's bytes with an ETag.

``GET /feed.ics`` answers the bytes of ``FLOOR_FEED_FILE`` (read and gzip-compressed once on
first use, as the benchmark writes the service's feed there after its first request) with a
strong ETag, and a matching ``If-None-Match`` with 304 and no body: the least any correct feed
server does once it knows nothing changed. A client that accepts gzip gets the compressed
bytes, as from the service, so both move the same representation. Nothing of the service is
imported.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.floors import HEALTHZ

# (plain, plain ETag, gzipped, gzip ETag), made on first use.
_body: list[tuple[bytes, str, bytes, str]] = []


def _load() -> tuple[bytes, str, bytes, str]:
    data = Path(os.environ["FLOOR_FEED_FILE"]).read_bytes()
    tag = hashlib.sha256(data).hexdigest()[:32]
    return data, f'"{tag}"', gzip.compress(data, compresslevel=6, mtime=0), f'"{tag}-gz"'


async def feed(request: Request) -> Response:
    if not _body:
        _body.append(await asyncio.to_thread(_load))
    data, etag, zipped, zipped_etag = _body[0]
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        data, etag = zipped, zipped_etag
        headers["Content-Encoding"] = "gzip"
    headers["ETag"] = etag
    if request.headers.get("if-none-match") == etag:
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="text/calendar; charset=utf-8", headers=headers)


app = Starlette(routes=[Route("/feed.ics", feed), HEALTHZ])
