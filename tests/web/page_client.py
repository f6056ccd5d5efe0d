"""Helpers for driving the HTML pages with httpx: sign in, read CSRF tokens, post forms."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from scheduler import accounts
from scheduler.db import Database

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "the page has no CSRF token"
    return html.unescape(match.group(1))


async def make_admin(db: Database) -> None:
    await accounts.create_admin(db, ADMIN_EMAIL, ADMIN_PASSWORD)


async def sign_in(client: httpx.AsyncClient, db: Database) -> str:
    """Create the admin, sign in through the login form, return the session's CSRF token."""
    await make_admin(db)
    return await log_in(client)


async def log_in(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> str:
    """Sign the existing admin in through the login form (e.g. again, after the clock moved)."""
    login_page = await client.get("/admin/login")
    response = await client.post(
        "/admin/login",
        data={
            "email": ADMIN_EMAIL,
            "password": password,
            "csrf_token": csrf_from(login_page.text),
            "next": "/admin",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin"
    dashboard = await client.get("/admin")
    assert dashboard.status_code == 200
    return csrf_from(dashboard.text)


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, Any], csrf: str
) -> httpx.Response:
    return await client.post(url, data={**data, "csrf_token": csrf})


def session_form(
    mode: str = "hybrid",
    *,
    starts: str = "2031-03-04T09:00",
    ends: str = "2031-03-04T13:00",
    zone: str = "America/Chicago",
    in_person: str = "2",
    virtual: str = "1",
) -> dict[str, str]:
    return {
        "starts_at": starts,
        "ends_at": ends,
        "timezone": zone,
        "mode": mode,
        "in_person_capacity": in_person,
        "virtual_capacity": virtual,
        "venue_name": "Metro Training Center",
        "venue_address": "1 Main St",
        "venue_city": "Springfield",
        "venue_state": "IL",
        "venue_postal_code": "62701",
        "join_url": "https://meet.example.org/secret-room-123",
        "platform": "Zoom",
        "max_per_agency": "",
        "registration_closes_at": "",
    }


def person_form(n: int, attendance: str = "in_person", **extra: str) -> dict[str, str]:
    return {
        "name": f"Officer {n}",
        "email": f"officer{n}@example.org",
        "agency": "Springfield PD",
        "rank": "",
        "attendance": attendance,
        **extra,
    }
