"""Sign-ins to the web pages, kept on the server so that ending one really ends it.

The signed cookie only names a sign-in by a random id; the row in ``login_sessions`` (keyed by
the id's SHA-256, so a copy of the table opens nothing) says whether it still holds. Every
signed-in request checks it, on whichever instance it lands, so:

- signing out revokes the row, and a cookie saved before still opens nothing;
- ``revoke_sessions_for(kind, user_id)`` ends every sign-in of one user (a password change,
  a removed account);
- a sign-in whose user no longer exists is refused even before anyone revokes it;
- a sign-in lasts at most ``MAX_AGE`` from its start, whatever the cookie says.

``kind`` names the table ``user_id`` points into (``admin`` today); other account kinds can
sign in through the same rows.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, insert, or_, select, update

from notifications.models import utcnow
from scheduler.db import Database
from scheduler.models import AdminUser, LoginSession

ADMIN = "admin"
MAX_AGE = timedelta(hours=12)
# last_seen_at is for people reading the table; writing it more often than this is waste.
SEEN_GRANULARITY = timedelta(minutes=5)


def digest(login_id: str) -> str:
    """The stored form of a sign-in id: its SHA-256, never the id itself."""
    return hashlib.sha256(login_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    kind: str
    user_id: int
    created_at: datetime


async def start(db: Database, kind: str, user_id: int, *, now: datetime | None = None) -> str:
    """Record a new sign-in for ``user_id``; return the random id the cookie will carry.

    Also drops this user's sign-ins that ended (revoked or expired), so the table stays small.
    """
    now = now or utcnow()
    login_id = secrets.token_urlsafe(32)
    async with db.write() as conn:
        await conn.execute(
            delete(LoginSession).where(
                LoginSession.kind == kind,
                LoginSession.user_id == user_id,
                or_(LoginSession.revoked_at.is_not(None), LoginSession.created_at < now - MAX_AGE),
            )
        )
        await conn.execute(
            insert(LoginSession).values(
                id_hash=digest(login_id),
                kind=kind,
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
            )
        )
    return login_id


async def check(db: Database, login_id: object, *, now: datetime | None = None) -> SignedIn | None:
    """The sign-in ``login_id`` names, or ``None`` when it is unknown, revoked, expired, or its
    user is gone. Touches ``last_seen_at`` at most every ``SEEN_GRANULARITY``."""
    if not isinstance(login_id, str) or not 20 <= len(login_id) <= 100:
        return None
    now = now or utcnow()
    id_hash = digest(login_id)
    user_exists = or_(
        LoginSession.kind != ADMIN,
        # A removed admin's id may be given to a new admin later: that one is not signed in.
        exists().where(
            AdminUser.id == LoginSession.user_id, AdminUser.created_at <= LoginSession.created_at
        ),
    )
    query = select(LoginSession).where(
        LoginSession.id_hash == id_hash,
        LoginSession.revoked_at.is_(None),
        LoginSession.created_at > now - MAX_AGE,
        user_exists,
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    if now - row.last_seen_at >= SEEN_GRANULARITY:
        async with db.write() as conn:
            await conn.execute(
                update(LoginSession).where(LoginSession.id_hash == id_hash).values(last_seen_at=now)
            )
    return SignedIn(row.kind, int(row.user_id), row.created_at)


async def end(db: Database, login_id: object) -> None:
    """Revoke one sign-in (signing out). Unknown ids are ignored."""
    if not isinstance(login_id, str):
        return
    async with db.write() as conn:
        await conn.execute(
            update(LoginSession)
            .where(LoginSession.id_hash == digest(login_id), LoginSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


async def revoke_sessions_for(db: Database, user_id: int, kind: str = ADMIN) -> int:
    """End every live sign-in of one user: after a password change or removing the account.

    Returns how many were revoked. Call it in, or right after, the transaction that changes the
    password or deletes the user.
    """
    async with db.write() as conn:
        result = await conn.execute(
            update(LoginSession)
            .where(
                and_(
                    LoginSession.kind == kind,
                    LoginSession.user_id == user_id,
                    LoginSession.revoked_at.is_(None),
                )
            )
            .values(revoked_at=utcnow())
        )
    return int(result.rowcount or 0)
