"""Helpers for the agency console: invite a coordinator and sign them in by the emailed link."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from notifications.models import Message
from scheduler.db import Database
from tests.web.page_client import csrf_from


async def last_link(db: Database, recipient: str) -> str:
    """The path of the newest sign-in link emailed to ``recipient`` (read from the outbox)."""
    async with db.read() as conn:
        payload = (
            await conn.execute(
                select(Message.payload)
                .where(Message.recipient == recipient.lower())
                .where(Message.kind.in_(("coordinator_invitation", "sign_in_link")))
                .order_by(Message.id.desc())
                .limit(1)
            )
        ).scalar_one()
    return str(payload["path"])


async def invite(
    client: httpx.AsyncClient, headers: dict[str, str], agency_id: int, email: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/agencies/{agency_id}/coordinators",
        json={"name": "Casey Coordinator", "email": email},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def follow_link(client: httpx.AsyncClient, path: str) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data={"csrf_token": csrf_from(page.text)})


async def sign_in_coordinator(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], agency_id: int, email: str
) -> str:
    """Invite ``email`` for ``agency_id``, follow the link; returns the console's CSRF token."""
    await invite(client, headers, agency_id, email)
    response = await follow_link(client, await last_link(db, email))
    assert response.status_code == 303 and response.headers["location"] == "/agency"
    console = await client.get("/agency")
    assert console.status_code == 200, console.text
    return csrf_from(console.text)
