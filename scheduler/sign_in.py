"""Accounts that sign in by emailed link: coordinators (and instructors, next), invitations,
access requests, one-time links and the account sessions they open.

- A link is 32 random bytes; only its sha256 is stored. It lasts 15 minutes and is spent by a
  conditional ``UPDATE ... WHERE used_at IS NULL AND expires_at > now``, so two clicks at once
  cannot both sign in.
- Asking for a link answers the same whether or not the address has an account (no
  enumeration), and an account gets at most ``LINKS_PER_WINDOW`` links per window.
- A signed-in browser holds a sign-in's token in its signed cookie. The sign-in is a row of
  ``login_sessions``, the one table for everyone who signs in (``scheduler.logins``); it says
  whether it still holds (expiry, sign-out, a disabled or removed account).

Admins keep their passwords (``scheduler.accounts``); every admin also has an account row.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import utcnow
from scheduler import agencies, logins
from scheduler.db import Database
from scheduler.errors import Gone, Invalid, NotFound
from scheduler.models import Account, AccountAgency, Agency, Instructor, SignInLink
from scheduler.validation import Fields, address_key

LINK_LIFETIME = timedelta(minutes=15)
LINK_WINDOW = timedelta(minutes=15)
LINKS_PER_WINDOW = 3
SESSION_LIFETIME = logins.MAX_AGE


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """The account behind a browser's account session."""

    account_id: int
    email: str
    name: str
    role: str
    agency_ids: frozenset[int]


def parse_person(data: Any) -> tuple[str, str]:
    fields = Fields(data)
    name = fields.text("name", max_length=200)
    email = fields.email("email")
    fields.done()
    assert name and email
    return name, email.lower()


async def _new_link(conn: AsyncConnection, account_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(
        insert(SignInLink).values(
            account_id=account_id,
            token_hash=digest(token),
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    return token


def link_path(token: str, role: str = "coordinator") -> str:
    """The emailed link's path: instructors sign in at ``/instructor``, coordinators at
    ``/agency``."""
    return f"/instructor/login/{token}" if role == "instructor" else f"/agency/login/{token}"


async def invite_coordinator(
    db: Database, agency_id: int, data: Any, *, now: datetime | None = None
) -> int:
    """Make (or reuse) a coordinator account for an agency and email them a sign-in link.

    Raises ``Invalid`` and ``NotFound`` (agency).
    """
    return await invite_to_agencies(db, [agency_id], data, now=now)


async def invite_to_agencies(
    db: Database, agency_ids: Sequence[int], data: Any, *, now: datetime | None = None
) -> int:
    """Make (or reuse) a coordinator account for one or more agencies and email them one
    invitation with a sign-in link naming them all. Returns the account's id.

    Raises ``Invalid`` (the person; ``agency_ids`` empty) and ``NotFound`` (an agency).
    """
    now = now or utcnow()
    name, email = parse_person(data)
    if not agency_ids:
        raise Invalid({"agency_ids": "choose at least one agency"})
    async with db.write() as conn:
        named = [await agencies.get_agency(conn, i) for i in dict.fromkeys(agency_ids)]
        account_id = await _account(conn, email, name, "coordinator", "active", now)
        await conn.execute(
            update(Account)
            .where(Account.id == account_id, Account.status == "pending")
            .values(status="active")
        )
        for agency in named:
            await _link_agency(conn, account_id, agency.id)
        token = await _new_link(conn, account_id, now)
        await outbox.enqueue(
            conn,
            "coordinator_invitation",
            email,
            payload={
                "name": name,
                "agency": ", ".join(a.name for a in named),
                "path": link_path(token),
            },
        )
        return account_id


async def _account(
    conn: AsyncConnection, email: str, name: str, role: str, status: str, now: datetime
) -> int:
    found = (await conn.execute(select(Account.id).where(Account.email == email))).first()
    if found is not None:
        return int(found.id)
    result = await conn.execute(
        insert(Account)
        .values(email=email, name=name, role=role, status=status, created_at=now)
        .returning(Account.id)
    )
    return int(result.scalar_one())


async def _link_agency(conn: AsyncConnection, account_id: int, agency_id: int) -> None:
    linked = (
        await conn.execute(
            select(AccountAgency.account_id).where(
                AccountAgency.account_id == account_id, AccountAgency.agency_id == agency_id
            )
        )
    ).first()
    if linked is None:
        await conn.execute(insert(AccountAgency).values(account_id=account_id, agency_id=agency_id))


async def request_access(db: Database, data: Any, *, now: datetime | None = None) -> None:
    """Someone asks to coordinate an agency: a pending account an admin approves.

    Answers the same for a known address (no enumeration). Raises ``Invalid`` (including an
    unknown agency).
    """
    now = now or utcnow()
    name, email = parse_person(data)
    fields = Fields(data)
    agency_id = fields.integer("agency_id", minimum=1, maximum=2**31 - 1)
    fields.done()
    assert agency_id is not None
    async with db.write() as conn:
        agency = await agencies.resolve(conn, agency_id)
        existing = (await conn.execute(select(Account.id).where(Account.email == email))).first()
        if existing is not None:
            return
        account_id = await _account(conn, email, name, "coordinator", "pending", now)
        await _link_agency(conn, account_id, agency.id)


async def approve(db: Database, account_id: int, *, now: datetime | None = None) -> None:
    """An admin lets a pending coordinator in; they get an invitation with a link."""
    now = now or utcnow()
    async with db.write() as conn:
        account = (await conn.execute(select(Account).where(Account.id == account_id))).first()
        if account is None:
            raise NotFound("account", account_id)
        await conn.execute(update(Account).where(Account.id == account_id).values(status="active"))
        names = (
            await conn.scalars(
                select(Agency.name)
                .join(AccountAgency, AccountAgency.agency_id == Agency.id)
                .where(AccountAgency.account_id == account_id)
            )
        ).all()
        token = await _new_link(conn, account_id, now)
        await outbox.enqueue(
            conn,
            "coordinator_invitation",
            account.email,
            payload={
                "name": account.name,
                "agency": ", ".join(names) or "your agency",
                "path": link_path(token),
            },
        )


async def request_link(db: Database, email: str, *, now: datetime | None = None) -> bool:
    """Email a sign-in link if ``email`` belongs to an active coordinator or instructor.

    The caller shows the same answer either way; the return value (whether a link went out)
    is for tests and logs only.
    """
    now = now or utcnow()
    key = address_key(email)
    async with db.write() as conn:
        account = (
            await conn.execute(
                select(Account).where(
                    Account.email == key,
                    Account.status == "active",
                    Account.role.in_(("coordinator", "instructor")),
                )
            )
        ).first()
        if account is None:
            return False
        recent = (
            await conn.execute(
                select(func.count()).where(
                    SignInLink.account_id == account.id,
                    SignInLink.created_at > now - LINK_WINDOW,
                )
            )
        ).scalar_one()
        if int(recent) >= LINKS_PER_WINDOW:
            return False
        token = await _new_link(conn, account.id, now)
        await outbox.enqueue(
            conn,
            "sign_in_link",
            account.email,
            payload={"name": account.name, "path": link_path(token, account.role)},
        )
        return True


async def request_instructor_link(db: Database, email: str, *, now: datetime | None = None) -> bool:
    """Email an instructor a sign-in link; their account is made on first use.

    An instructor is whoever the admins put in the instructors directory with this address
    (``scheduler.catalog.directory``), so the directory is the invitation: the first request
    from that address makes an ``instructor`` account. An address that already belongs to a
    coordinator or admin gets nothing here. Returns whether a link went out (tests, logs).
    """
    now = now or utcnow()
    key = email.strip().lower()[:320]
    async with db.write() as conn:
        listed = (
            await conn.execute(
                select(Instructor.name)
                .where(func.lower(Instructor.email) == key)
                .order_by(Instructor.id)
                .limit(1)
            )
        ).first()
        if listed is None:
            return False
        account = (await conn.execute(select(Account.role).where(Account.email == key))).first()
        if account is None:
            await _account(conn, key, listed.name, "instructor", "active", now)
        elif account.role != "instructor":
            return False
    return await request_link(db, key, now=now)


async def redeem(db: Database, token: str, *, now: datetime | None = None) -> str:
    """Spend a sign-in link and open an account session; returns the session's token.

    Raises ``Gone`` for a link that is unknown, used, expired, or whose account may not sign in.
    """
    now = now or utcnow()
    if not token or len(token) > 100:
        raise Gone("this sign-in link is not valid; ask for a new one")
    async with db.write() as conn:
        spent = (
            await conn.execute(
                update(SignInLink)
                .where(
                    SignInLink.token_hash == digest(token),
                    SignInLink.used_at.is_(None),
                    SignInLink.expires_at > now,
                )
                .values(used_at=now)
                .returning(SignInLink.account_id)
            )
        ).first()
        if spent is None:
            raise Gone("this sign-in link was used or has expired; ask for a new one")
        account = (
            await conn.execute(
                select(Account).where(Account.id == spent.account_id, Account.status == "active")
            )
        ).first()
        if account is None:
            raise Gone("this account may not sign in")
        # The same sign-in table as the admins' (scheduler.logins): one way to end them all.
        session_token = await logins.open_in(conn, logins.LINK, account.id, now)
        await conn.execute(
            update(Account).where(Account.id == account.id).values(last_sign_in_at=now)
        )
        return session_token


async def peek(db: Database, token: str, *, now: datetime | None = None) -> bool:
    """Whether a link could still sign in (for the confirm page; spends nothing)."""
    now = now or utcnow()
    if not token or len(token) > 100:
        return False
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(SignInLink.id).where(
                    SignInLink.token_hash == digest(token),
                    SignInLink.used_at.is_(None),
                    SignInLink.expires_at > now,
                )
            )
        ).first()
    return found is not None


async def signed_in(
    db: Database, session_token: str, *, now: datetime | None = None
) -> SignedIn | None:
    """The account of a live sign-in by link, with its agencies; None when it does not hold
    (signed out, expired, the account disabled or removed)."""
    now = now or utcnow()
    if not isinstance(session_token, str) or not 20 <= len(session_token) <= 100:
        return None
    async with db.read() as conn:
        found = (await conn.execute(logins.live(logins.digest(session_token), now))).first()
        if found is None or found.kind != logins.LINK:
            return None
        row = (
            await conn.execute(
                select(Account.id, Account.email, Account.name, Account.role).where(
                    Account.id == found.account_id
                )
            )
        ).one()
        agency_ids = (
            await conn.scalars(
                select(AccountAgency.agency_id)
                .join(Agency, Agency.id == AccountAgency.agency_id)
                .where(AccountAgency.account_id == row.id, Agency.merged_into_id.is_(None))
            )
        ).all()
    return SignedIn(row.id, row.email, row.name, row.role, frozenset(agency_ids))


async def sign_out(db: Database, session_token: str) -> None:
    await logins.end(db, session_token)


async def set_status(db: Database, account_id: int, status: str) -> None:
    """An admin disables (or enables again) a coordinator's or instructor's account. A disabled
    account's sign-ins stop holding at once, and it gets no more links. Raises ``NotFound``
    (no such account, or an admin's: those are removed with ``accounts.remove_admin``) and
    ``Invalid`` (a status other than ``active`` or ``disabled``)."""
    if status not in ("active", "disabled"):
        raise Invalid({"status": "must be active or disabled"})
    async with db.write() as conn:
        changed = (
            await conn.execute(
                update(Account)
                .where(Account.id == account_id, Account.role != "admin")
                .values(status=status)
                .returning(Account.id)
            )
        ).first()
        if changed is None:
            raise NotFound("account", account_id)
        if status == "disabled":
            await logins.revoke_in(conn, account_id)


async def coordinators(conn: AsyncConnection, agency_id: int | None = None) -> list[dict[str, Any]]:
    """Coordinator accounts (of one agency, or all) with their agencies' names."""
    stmt = (
        select(
            Account.id,
            Account.email,
            Account.name,
            Account.status,
            Agency.id.label("agency_id"),
            Agency.name.label("agency"),
        )
        .join(AccountAgency, AccountAgency.account_id == Account.id)
        .join(Agency, Agency.id == AccountAgency.agency_id)
        .where(Account.role == "coordinator")
        .order_by(Account.status, Account.email)
    )
    if agency_id is not None:
        stmt = stmt.where(AccountAgency.agency_id == agency_id)
    return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]
