"""What admins do with coordinator accounts: list them, disable or enable them, and answer
access requests (approve is ``sign_in.approve``; refusing removes the pending account).

Disabling takes effect at once everywhere: every account session and sign-in link is checked
against ``accounts.status`` when used (``sign_in.signed_in``, ``sign_in.redeem``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler import logins
from scheduler.db import Database
from scheduler.errors import Conflict, NotFound
from scheduler.models import Account, AccountAgency, Agency

ACTIVE, PENDING, DISABLED = "active", "pending", "disabled"


@dataclass
class CoordinatorView:
    id: int
    name: str
    email: str
    status: str
    created_at: datetime
    last_sign_in_at: datetime | None
    agencies: list[tuple[int, str]] = field(default_factory=list)


async def listing(conn: AsyncConnection, *, status: str | None = None) -> list[CoordinatorView]:
    """Coordinator accounts (with ``status``, or all but pending) and their agencies, by email."""
    stmt = select(Account).where(Account.role == "coordinator")
    if status is not None:
        stmt = stmt.where(Account.status == status)
    else:
        stmt = stmt.where(Account.status != PENDING)
    accounts = (await conn.execute(stmt.order_by(Account.email))).all()
    views = {
        a.id: CoordinatorView(a.id, a.name, a.email, a.status, a.created_at, a.last_sign_in_at)
        for a in accounts
    }
    if views:
        links = await conn.execute(
            select(AccountAgency.account_id, Agency.id, Agency.name)
            .join(Agency, Agency.id == AccountAgency.agency_id)
            .where(AccountAgency.account_id.in_(list(views)))
            .order_by(Agency.name_key)
        )
        for account_id, agency_id, name in links.all():
            views[account_id].agencies.append((agency_id, name))
    return list(views.values())


async def _coordinator(conn: AsyncConnection, account_id: int) -> Any:
    row = (
        await conn.execute(
            select(Account).where(Account.id == account_id, Account.role == "coordinator")
        )
    ).first()
    if row is None:
        raise NotFound("coordinator", account_id)
    return row


async def set_status(db: Database, account_id: int, status: str) -> str:
    """Disable or enable a coordinator (not a pending one: approve or refuse it); returns the
    name. Raises ``NotFound`` and ``Conflict``."""
    assert status in (ACTIVE, DISABLED)
    async with db.write() as conn:
        account = await _coordinator(conn, account_id)
        if account.status == PENDING:
            raise Conflict(
                "this person asked for access: approve or refuse it", {"status": PENDING}
            )
        await conn.execute(update(Account).where(Account.id == account_id).values(status=status))
        if status == DISABLED:
            await logins.revoke_in(conn, account_id)
        return str(account.name)


async def refuse(db: Database, account_id: int) -> str:
    """Refuse a pending access request: the account and its agency links go (they may ask
    again). Returns the name; raises ``NotFound`` and ``Conflict`` (not pending)."""
    async with db.write() as conn:
        account = await _coordinator(conn, account_id)
        if account.status != PENDING:
            raise Conflict("only a pending request can be refused", {"status": account.status})
        await conn.execute(delete(AccountAgency).where(AccountAgency.account_id == account_id))
        await conn.execute(delete(Account).where(Account.id == account_id))
        return str(account.name)


async def is_pending(db: Database, account_id: int) -> bool:
    async with db.read() as conn:
        account = await _coordinator(conn, account_id)
    return bool(account.status == PENDING)
