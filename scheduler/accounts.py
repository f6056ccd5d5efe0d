"""Admin users: argon2 password hashes, creation and login checks.

argon2-cffi gives the memory-hard hash and its parameters, including rehash-on-login when the
defaults are raised; we would not write that by hand.
"""

from __future__ import annotations

import contextlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from notifications.models import utcnow
from scheduler.db import Database
from scheduler.errors import AlreadyExists, Unauthorized
from scheduler.models import Account, AdminUser
from scheduler.validation import Fields

MIN_PASSWORD = 12


def hasher() -> PasswordHasher:
    return PasswordHasher()


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
            admin_id = (
                await conn.execute(
                    insert(AdminUser)
                    .values(
                        email=clean.lower(),
                        password_hash=hasher().hash(password),
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
    ph = hasher()
    if row is None:
        # Spend the same time as a real check, so timing does not reveal which emails exist.
        with contextlib.suppress(VerificationError):
            ph.verify(ph.hash("not-a-password"), password + "x")
        raise Unauthorized("wrong email or password")
    try:
        ph.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
        raise Unauthorized("wrong email or password") from exc
    if ph.check_needs_rehash(row.password_hash):
        async with db.write() as conn:
            await conn.execute(
                update(AdminUser)
                .where(AdminUser.id == row.id)
                .values(password_hash=ph.hash(password))
            )
    return int(row.id)
