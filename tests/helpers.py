"""Small builders the tests share: a course and a session through the admin API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx


def future_local(days: int = 10, hour: int = 9, zone: str = "America/Chicago") -> datetime:
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, 0)


async def make_course(
    client: httpx.AsyncClient, headers: dict[str, str], slug: str = "managing-bias", **extra: Any
) -> dict[str, Any]:
    body = {"slug": slug, "title": "Managing Bias", "description": "Bias and decisions.", **extra}
    response = await client.post("/api/courses", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def session_body(
    mode: str = "in_person",
    *,
    in_person: int | None = 10,
    virtual: int | None = 10,
    days: int = 10,
    zone: str = "America/Chicago",
    **extra: Any,
) -> dict[str, Any]:
    start = future_local(days, 9, zone)
    body: dict[str, Any] = {
        "starts_at": start.isoformat(timespec="minutes"),
        "ends_at": (start + timedelta(hours=4)).isoformat(timespec="minutes"),
        "timezone": zone,
        "mode": mode,
    }
    if mode in ("in_person", "hybrid"):
        body["in_person_capacity"] = in_person
        body["venue"] = {
            "name": "Metro Training Center",
            "address": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        }
    if mode in ("virtual", "hybrid"):
        body["virtual_capacity"] = virtual
        body["join_url"] = "https://meet.example.org/secret-room-123"
    body.update(extra)
    return body


async def make_session(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    slug: str = "managing-bias",
    mode: str = "in_person",
    **kwargs: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/courses/{slug}/sessions", json=session_body(mode, **kwargs), headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def person(n: int, agency: str = "Springfield PD", attendance: str = "in_person") -> dict[str, str]:
    return {
        "name": f"Officer {n}",
        "email": f"officer{n}@example.org",
        "agency": agency,
        "attendance": attendance,
    }
