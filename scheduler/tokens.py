"""Admin API tokens: made once, shown once, stored only as a SHA-256 hash.

Tokens are 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force
that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from notifications.models import utcnow
from scheduler.db import Database
from scheduler.errors import Invalid, NotFound, Unauthorized
from scheduler.models import ApiToken

PREFIX = "sch_"
# "Last used" is kept to the minute: a busy client does not turn every request into a write.
LAST_USED_STEP = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None


async def create_token(db: Database, name: str) -> str:
    """Store a new token's hash under ``name`` and return the token itself. Raises ``Invalid``."""
    name = name.strip()
    if not name or len(name) > 120 or any(c in name for c in "\r\n"):
        raise Invalid({"name": "give the token a name of 1 to 120 characters"})
    token = PREFIX + secrets.token_urlsafe(32)
    async with db.write() as conn:
        await conn.execute(
            insert(ApiToken).values(name=name, token_hash=hash_token(token), created_at=utcnow())
        )
    return token


async def verify(db: Database, authorization: str | None) -> TokenInfo:
    """Check an ``Authorization: Bearer`` header; raises ``Unauthorized``."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(PREFIX) or len(token) > 200:
        raise Unauthorized()
    digest = hash_token(token)
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            )
        ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized()
    now = utcnow()
    last_used = row.last_used_at
    if last_used is None or now - last_used >= LAST_USED_STEP:
        async with db.write() as conn:
            await conn.execute(
                update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
            )
        last_used = now
    return TokenInfo(row.id, row.name, row.created_at, row.revoked_at, last_used)


async def list_tokens(db: Database) -> list[TokenInfo]:
    async with db.read() as conn:
        rows = (await conn.execute(select(ApiToken).order_by(ApiToken.id))).all()
    return [TokenInfo(r.id, r.name, r.created_at, r.revoked_at, r.last_used_at) for r in rows]


async def revoke_token(db: Database, token_id: int) -> None:
    """Revoke a token by id; raises ``NotFound``."""
    async with db.write() as conn:
        result = await conn.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFound("token", token_id)
