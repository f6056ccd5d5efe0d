"""A per-client limit on the doors worth hammering: public registration and admin login.

The count lives in the database (``rate_limit_windows``), one row per bucket, client and
minute, bumped by a single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``. That makes the
limit exact however many instances and workers serve the site: an in-process counter would let
a client through ``instances x workers`` times the limit, because the load balancer spreads its
requests over all of them (docs/deploy.md weighs the two). Both doors write to the database
anyway, so one more small write per attempt costs little.

The window is fixed (whole minutes): a client can burst up to twice the limit across a minute
boundary, which is fine for abuse control and keeps the counter to one row.

The client is ``request.client.host``: uvicorn's ``proxy_headers`` already replaced it with
the ``X-Forwarded-For`` address when, and only when, the peer is a trusted proxy
(``SCHEDULER_TRUSTED_PROXIES``), so a client cannot pick its own key by sending the header.
"""

from __future__ import annotations

import ipaddress
import time

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.requests import Request

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import RateLimited
from scheduler.models import RateLimitWindow

WINDOW_SECONDS = 60
BUCKETS = ("register", "login")


def client_key(request: Request) -> str:
    """The address a limit is counted against; IPv6 clients count per /64 network.

    One IPv6 host usually holds a whole /64, so counting single addresses would let it rotate
    through fresh keys at will.
    """
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def hit(
    db: Database, bucket: str, client: str, *, now: float | None = None
) -> tuple[int, int]:
    """Count one attempt; return ``(attempts in this window, seconds until the window ends)``.

    Also clears windows that have ended, the first time a client shows up in a new window, so
    the table holds about one row per client active in the last minute.
    """
    now = time.time() if now is None else now
    window = int(now) // WINDOW_SECONDS * WINDOW_SECONDS
    insert = sqlite_insert if db.is_sqlite else pg_insert
    row = RateLimitWindow
    bump = (
        insert(row)
        .values(bucket=bucket, client=client, window_start=window, hits=1)
        .on_conflict_do_update(
            index_elements=[row.bucket, row.client, row.window_start],
            set_={"hits": row.hits + 1},
        )
        .returning(row.hits)
    )
    async with db.write() as conn:
        hits = int((await conn.execute(bump)).scalar_one())
        if hits == 1:
            await conn.execute(delete(row).where(row.window_start < window))
    return hits, max(1, window + WINDOW_SECONDS - int(now))


async def enforce(request: Request, bucket: str) -> None:
    """Count this request against its client's limit for ``bucket``.

    Raises ``RateLimited`` (429 with ``Retry-After``) once the client is over
    ``settings.rate_limit`` attempts in the current minute; a limit of 0 turns this off.
    Database errors propagate, so during an outage the caller answers 503 like any other door.
    """
    settings: Settings = request.state.settings
    if settings.rate_limit <= 0:
        return
    db: Database = request.state.db
    hits, retry_after = await hit(db, bucket, client_key(request))
    if hits > settings.rate_limit:
        raise RateLimited(settings.rate_limit, retry_after)
