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
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from notifications.models import utcnow
from scheduler.db import Database
from scheduler.errors import AlreadyExists, Unauthorized
from scheduler.models import AdminUser
from scheduler.validation import Fields

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
    if len(password) < MIN_PASSWORD:
        fields.fail("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        fields.fail("password", "must be at most 1024 characters")
    fields.done()
    assert clean is not None
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(AdminUser).values(
                    email=clean.lower(),
                    password_hash=await hash_password(password),
                    created_at=utcnow(),
                )
            )
    except IntegrityError as exc:
        raise AlreadyExists("admin", clean, "email") from exc
    return clean.lower()


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
            await conn.execute(select(AdminUser).where(AdminUser.email == email.strip().lower()))
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
