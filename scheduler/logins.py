"""Sign-ins to the web pages, one table for everyone who signs in, kept on the server so that
ending one really ends it.

Every person who signs in has an ``accounts`` row: admins (whose passwords stay in
``admin_users``, linked one to one), coordinators and instructors (who sign in by emailed
link, ``scheduler.sign_in``). Each sign-in is a ``login_sessions`` row of that account; the
signed cookie only names it by a random id (the row is keyed by the id's SHA-256, so a copy of
the table opens nothing). Every signed-in request checks the row and its account, on whichever
instance it lands, so:

- signing out revokes the row, and a cookie saved before still opens nothing;
- ``revoke_sessions_for(user_id, kind)`` ends every sign-in of one person (a password change);
- a disabled account, or a removed one (its rows go with it), is signed out at once;
- a sign-in lasts at most ``MAX_AGE`` from its start, whatever the cookie says.

``kind`` says how a sign-in began: ``admin`` (a password, for the admin pages; ``user_id`` is
then the ``admin_users`` id) or ``link`` (an emailed link; ``user_id`` is the account's id).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler.db import Database
from scheduler.errors import NotFound
from scheduler.models import Account, AdminUser, LoginSession

ADMIN = "admin"
LINK = "link"
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
    account_id: int = 0


async def account_of(conn: AsyncConnection, kind: str, user_id: int) -> int:
    """The account id behind ``user_id`` of ``kind``; raises ``NotFound``."""
    if kind == ADMIN:
        query = select(Account.id).where(Account.admin_user_id == user_id)
    else:
        query = select(Account.id).where(Account.id == user_id)
    found = (await conn.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("account", user_id)
    return int(found)


async def open_in(
    conn: AsyncConnection, kind: str, account_id: int, now: datetime, login_id: str | None = None
) -> str:
    """Record a new sign-in of ``account_id`` in the caller's transaction; returns its id.

    Also drops this account's sign-ins that ended (revoked or expired), so the table stays small.
    """
    login_id = login_id or secrets.token_urlsafe(32)
    await conn.execute(
        delete(LoginSession).where(
            LoginSession.account_id == account_id,
            or_(LoginSession.revoked_at.is_not(None), LoginSession.created_at < now - MAX_AGE),
        )
    )
    await conn.execute(
        insert(LoginSession).values(
            id_hash=digest(login_id),
            account_id=account_id,
            kind=kind,
            created_at=now,
            last_seen_at=now,
        )
    )
    return login_id


async def start(db: Database, kind: str, user_id: int, *, now: datetime | None = None) -> str:
    """Record a new sign-in for ``user_id``; return the random id the cookie will carry.

    Raises ``NotFound`` when no account is behind ``user_id``.
    """
    now = now or utcnow()
    async with db.write() as conn:
        return await open_in(conn, kind, await account_of(conn, kind, user_id), now)


def live(id_hash: str, now: datetime) -> Any:
    """The statement for a sign-in that still holds, with its account (and admin id)."""
    return (
        select(LoginSession, Account.role, AdminUser.id.label("admin_id"))
        .join(Account, Account.id == LoginSession.account_id)
        .outerjoin(AdminUser, AdminUser.id == Account.admin_user_id)
        .where(
            LoginSession.id_hash == id_hash,
            LoginSession.revoked_at.is_(None),
            LoginSession.created_at > now - MAX_AGE,
            Account.status == "active",
            # A password sign-in needs its admin still there.
            or_(LoginSession.kind != ADMIN, AdminUser.id.is_not(None)),
        )
    )


async def check(db: Database, login_id: object, *, now: datetime | None = None) -> SignedIn | None:
    """The sign-in ``login_id`` names, or ``None`` when it is unknown, revoked, expired, or its
    account is disabled or gone. Touches ``last_seen_at`` at most every ``SEEN_GRANULARITY``."""
    if not isinstance(login_id, str) or not 20 <= len(login_id) <= 100:
        return None
    now = now or utcnow()
    id_hash = digest(login_id)
    async with db.read() as conn:
        row = (await conn.execute(live(id_hash, now))).first()
    if row is None:
        return None
    if now - row.last_seen_at >= SEEN_GRANULARITY:
        async with db.write() as conn:
            await conn.execute(
                update(LoginSession).where(LoginSession.id_hash == id_hash).values(last_seen_at=now)
            )
    user_id = row.admin_id if row.kind == ADMIN else row.account_id
    return SignedIn(row.kind, int(user_id), row.created_at, int(row.account_id))


async def end(db: Database, login_id: object) -> None:
    """Revoke one sign-in (signing out). Unknown ids are ignored."""
    if not isinstance(login_id, str) or len(login_id) > 100:
        return
    async with db.write() as conn:
        await conn.execute(
            update(LoginSession)
            .where(LoginSession.id_hash == digest(login_id), LoginSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


async def revoke_in(
    conn: AsyncConnection, account_id: int, *, keep: str | None = None, now: datetime | None = None
) -> int:
    """End every live sign-in of one account in the caller's transaction, but ``keep`` (a
    sign-in id); returns how many ended."""
    ended = and_(LoginSession.account_id == account_id, LoginSession.revoked_at.is_(None))
    if keep is not None:
        ended = and_(ended, LoginSession.id_hash != digest(keep))
    result = await conn.execute(
        update(LoginSession).where(ended).values(revoked_at=now or utcnow())
    )
    return int(result.rowcount or 0)


async def revoke_sessions_for(db: Database, user_id: int, kind: str = ADMIN) -> int:
    """End every live sign-in of one person: after a password change or removing the account.

    ``user_id`` is an admin's id (``kind`` ``admin``) or an account's id (``link``). Returns
    how many were revoked; 0 for an unknown person.
    """
    async with db.write() as conn:
        try:
            account_id = await account_of(conn, kind, user_id)
        except NotFound:
            return 0
        return await revoke_in(conn, account_id)
