"""Admin users: argon2 password hashes, creation and login checks.

argon2-cffi gives the memory-hard hash and its parameters, including rehash-on-login when the
defaults are raised; we would not write that by hand.

Each hash and verify costs tens of milliseconds of CPU, so it runs in a worker thread
(argon2-cffi releases the GIL) and the event loop keeps serving everyone else meanwhile. A login
for an unknown email verifies against a dummy hash made with the same parameters, so both
answers cost exactly one verify and timing does not tell which emails exist.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from notifications.models import utcnow
from scheduler import logins
from scheduler.db import Database
from scheduler.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from scheduler.models import Account, AdminUser
from scheduler.validation import Fields, address_key

MIN_PASSWORD = 12


def hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def dummy_hash() -> str:
    """A hash of no one's password, with the current parameters, to verify unknown emails."""
    return hasher().hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher().hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def run() -> bool:
        try:
            return hasher().verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(run)


async def create_admin(db: Database, email: str, password: str) -> str:
    """Create an admin user; returns the normalised email.

    Raises ``Invalid`` (bad email, short password) or ``AlreadyExists``.
    """
    fields = Fields({"email": email})
    clean = fields.email("email")
    _check_password(fields, "password", password)
    fields.done()
    assert clean is not None
    try:
        async with db.write() as conn:
            admin_id = (
                await conn.execute(
                    insert(AdminUser)
                    .values(
                        email=clean.lower(),
                        password_hash=await hash_password(password),
                        created_at=utcnow(),
                    )
                    .returning(AdminUser.id)
                )
            ).scalar_one()
            # The one accounts model: every admin is an account too (the password stays here).
            await conn.execute(
                insert(Account).values(
                    email=clean.lower(),
                    name=clean.lower(),
                    role="admin",
                    status="active",
                    admin_user_id=admin_id,
                    created_at=utcnow(),
                )
            )
    except IntegrityError as exc:
        raise AlreadyExists("admin", clean, "email") from exc
    return clean.lower()


def _check_password(fields: Fields, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        fields.fail(name, f"must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        fields.fail(name, "must be at most 1024 characters")


async def set_password(
    db: Database, email: str, password: str, *, keep_login: str | None = None
) -> int:
    """Give the admin ``email`` a new password; returns their id.

    The one place a password changes (the command line's ``admin password`` and the admin's
    "change my password" page both call it), so whatever must follow a change, such as ending
    that admin's other signed-in sessions, belongs here. Raises ``Invalid`` (short or long
    password) and ``NotFound`` (no such admin).
    """
    fields = Fields({})
    _check_password(fields, "password", password)
    fields.done()
    async with db.write() as conn:
        admin_id = (
            await conn.execute(
                update(AdminUser)
                .where(AdminUser.email == address_key(email))
                .values(password_hash=hasher().hash(password))
                .returning(AdminUser.id)
            )
        ).scalar_one_or_none()
        if admin_id is None:
            raise NotFound("admin", address_key(email))
        # Every other sign-in of this admin ends with the old password (issue 9, point 8).
        account_id = await logins.account_of(conn, logins.ADMIN, int(admin_id))
        await logins.revoke_in(conn, account_id, keep=keep_login)
    return int(admin_id)


async def change_own_password(
    db: Database,
    email: str,
    current: str,
    new: str,
    repeated: str,
    *,
    keep_login: str | None = None,
) -> int:
    """A signed-in admin changes their password, proving the current one first.

    Raises ``Invalid`` naming the field: ``current_password`` (wrong), ``new_password`` (too
    short, too long, or the same as the current one) or ``repeat_password`` (differs).
    """
    try:
        admin_id = await verify_login(db, email, current)
    except Unauthorized as exc:
        raise Invalid({"current_password": "is not your current password"}) from exc
    fields = Fields({})
    _check_password(fields, "new_password", new)
    if new == current:
        fields.fail("new_password", "must differ from the current password")
    if repeated != new:
        fields.fail("repeat_password", "does not match the new password")
    fields.done()
    await set_password(db, email, new, keep_login=keep_login)
    return admin_id


async def remove_admin(db: Database, email: str) -> None:
    """Remove the admin ``email``: their account goes with them, and with it every sign-in, so
    a cookie of theirs opens nothing from the next request on. Raises ``NotFound``."""
    async with db.write() as conn:
        admin_id = (
            await conn.execute(
                delete(AdminUser)
                .where(AdminUser.email == address_key(email))
                .returning(AdminUser.id)
            )
        ).scalar_one_or_none()
        if admin_id is None:
            raise NotFound("admin", address_key(email))
        # The foreign keys cascade; said here too, so nothing rests on the database's settings.
        await conn.execute(delete(Account).where(Account.admin_user_id == admin_id))


async def count_admins(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(AdminUser))).scalar_one())


async def ensure_first_admin(
    db: Database, email: str = "admin@localhost.localdomain"
) -> str | None:
    """Create a first admin with a generated password when there is none; return the password."""
    if await count_admins(db):
        return None
    password = secrets.token_urlsafe(15)
    try:
        await create_admin(db, email, password)
    except AlreadyExists:  # another worker got there first
        return None
    return password


async def verify_login(db: Database, email: str, password: str) -> int:
    """Check an admin's password and return their id; raises ``Unauthorized``."""
    async with db.read() as conn:
        row = (
            await conn.execute(select(AdminUser).where(AdminUser.email == address_key(email)))
        ).first()
    if row is None:
        # The same one verify as a real check, so timing does not reveal which emails exist.
        await _verify(await asyncio.to_thread(dummy_hash), password)
        raise Unauthorized("wrong email or password")
    if not await _verify(row.password_hash, password):
        raise Unauthorized("wrong email or password")
    if hasher().check_needs_rehash(row.password_hash):
        new_hash = await hash_password(password)
        async with db.write() as conn:
            await conn.execute(
                update(AdminUser).where(AdminUser.id == row.id).values(password_hash=new_hash)
            )
    return int(row.id)
