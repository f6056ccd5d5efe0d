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

import hashlib
import ipaddress
import time

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import RateLimited
from scheduler.models import RateLimitWindow

WINDOW_SECONDS = 60


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
    db: Database,
    bucket: str,
    client: str,
    *,
    now: float | None = None,
    window_seconds: int = WINDOW_SECONDS,
) -> tuple[int, int]:
    """Count one attempt; return ``(attempts in this window, seconds until the window ends)``.

    Also clears the bucket's windows that have ended, the first time a client shows up in a new
    window, so the table holds about one row per client active in the last window.
    """
    now = time.time() if now is None else now
    async with db.write() as conn:
        hits = await _bump(db, conn, bucket, client, now, window_seconds)
    return hits, _left(now, window_seconds)


def _window(now: float, window_seconds: int) -> int:
    return int(now) // window_seconds * window_seconds


def _left(now: float, window_seconds: int) -> int:
    return max(1, _window(now, window_seconds) + window_seconds - int(now))


async def _bump(
    db: Database, conn: AsyncConnection, bucket: str, client: str, now: float, window_seconds: int
) -> int:
    window = _window(now, window_seconds)
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
    hits = int((await conn.execute(bump)).scalar_one())
    if hits == 1:
        await conn.execute(delete(row).where(row.bucket == bucket, row.window_start < window))
    return hits


# -- the login lockout ------------------------------------------------------------------------
# Failed sign-ins are counted per email and per client address in 15-minute windows, in the
# same table, so the lockout is the same on every worker and instance: 5 attempts per window
# per key. Each attempt is counted before its password is checked, so concurrent guesses
# cannot slip past the count; a successful sign-in gives its attempt back.
LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW = 15 * 60
_LOGIN_BUCKETS = ("login-email", "login-client")


def login_keys(email: str, request: Request) -> list[tuple[str, str]]:
    """The (bucket, key) pairs a sign-in attempt counts against; the email only as a hash."""
    digest = hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return [(_LOGIN_BUCKETS[0], digest), (_LOGIN_BUCKETS[1], client_key(request))]


async def login_attempt(
    db: Database, keys: list[tuple[str, str]], *, now: float | None = None
) -> int:
    """Count one sign-in attempt against each key; 0 when it may go ahead, else the seconds
    until the lockout ends."""
    now = time.time() if now is None else now
    async with db.write() as conn:
        counts = [await _bump(db, conn, b, k, now, LOCKOUT_WINDOW) for b, k in keys]
    return _left(now, LOCKOUT_WINDOW) if max(counts) > LOCKOUT_ATTEMPTS else 0


async def login_succeeded(
    db: Database, keys: list[tuple[str, str]], *, now: float | None = None
) -> None:
    """A right password: the email's failures are forgotten, the client's attempt given back.

    The client's other failures stand, so one good account does not reset guessing at others.
    """
    now = time.time() if now is None else now
    window = _window(now, LOCKOUT_WINDOW)
    row = RateLimitWindow
    (email_bucket, email_key), (client_bucket, client) = keys
    async with db.write() as conn:
        await conn.execute(delete(row).where(row.bucket == email_bucket, row.client == email_key))
        await conn.execute(
            update(row)
            .where(
                row.bucket == client_bucket,
                row.client == client,
                row.window_start == window,
                row.hits > 0,
            )
            .values(hits=row.hits - 1)
        )


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
