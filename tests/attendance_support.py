"""Builders for the attendance tests: a two-day hybrid session, its people, report files.

The report files follow the layouts Zoom and Teams export (see ``scheduler.attendance_reports``),
written by hand here so each test states exactly what the platform would have sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.helpers import future_local, make_course

ZONE = "America/Chicago"


async def two_day_session(
    client: httpx.AsyncClient, headers: dict[str, str], *, days: int = 5, **course: Any
) -> dict[str, Any]:
    """A hybrid session of two 4-hour meetings (8:00-12:00 local) starting in ``days`` days."""
    await make_course(client, headers, slug="report-writing", **course)
    first = future_local(days, 8, ZONE)
    meetings = [
        {
            "starts_at": (first + timedelta(days=n)).isoformat(timespec="minutes"),
            "ends_at": (first + timedelta(days=n, hours=4)).isoformat(timespec="minutes"),
        }
        for n in range(2)
    ]
    body = {
        "timezone": ZONE,
        "mode": "hybrid",
        "in_person_capacity": 10,
        "virtual_capacity": 10,
        "venue": {
            "name": "Metro Training Center",
            "address": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
        "join_url": "https://meet.example.org/room-9",
        "meetings": meetings,
    }
    response = await client.post("/api/courses/report-writing/sessions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def utc_start(session: dict[str, Any], index: int) -> datetime:
    return datetime.fromisoformat(session["meetings"][index]["starts_at"]).astimezone(UTC)


async def register(
    client: httpx.AsyncClient, session_id: int, name: str, email: str, attendance: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/sessions/{session_id}/registrations",
        json={"name": name, "email": email, "agency": "Springfield PD", "attendance": attendance},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def zoom_time(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo(ZONE)).strftime("%m/%d/%Y %I:%M:%S %p")


def zoom_report(start: datetime, rows: list[tuple[str, str, int, int]]) -> bytes:
    """Zoom's participants export "with meeting data": rows of (name, email, from, minutes)."""
    lines = [
        "Meeting ID,Topic,Start Time,End Time,User Email,Duration (Minutes),Participants",
        f"821 5555 1234,Report Writing,{zoom_time(start)},{zoom_time(start + timedelta(hours=4))},"
        "host@example.org,240,4",
        "",
        "Name (Original Name),User Email,Join Time,Leave Time,Duration (Minutes),Guest",
    ]
    for name, email, offset, minutes in rows:
        joined = start + timedelta(minutes=offset)
        left = joined + timedelta(minutes=minutes)
        lines.append(
            f'"{name}",{email},{zoom_time(joined)},{zoom_time(left)},{minutes},'
            f"{'Yes' if not email else 'No'}"
        )
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def teams_time(instant: datetime) -> str:
    local = instant.astimezone(ZoneInfo(ZONE))
    return f"{local.month}/{local.day}/{local:%y}, {local:%I:%M:%S %p}".replace(", 0", ", ")


def teams_report(start: datetime, rows: list[tuple[str, str, int, int]]) -> bytes:
    """Teams' attendance download: UTF-16 with BOM, tab-separated, three numbered sections.

    Section 2 holds one row per person (rejoins already summed by Teams); section 3 one row per
    join, which must not be counted a second time."""
    total: dict[str, list[Any]] = {}
    for name, email, offset, minutes in rows:
        entry = total.setdefault(email or name, [name, email, offset, 0, offset])
        entry[3] += minutes
        entry[4] = max(entry[4], offset + minutes)
    lines = [
        "1. Summary",
        "Meeting title\tReport Writing (Day 2 of 2)",
        f"Attended participants\t{len(total)}",
        f"Start time\t{teams_time(start)}",
        f"End time\t{teams_time(start + timedelta(hours=4))}",
        "Meeting duration\t4h 0m 0s",
        "Average attendance time\t3h 1m 10s",
        "",
        "2. Participants",
        "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole",
    ]
    for name, email, first, minutes, last in total.values():
        lines.append(
            f"{name}\t{teams_time(start + timedelta(minutes=first))}\t"
            f"{teams_time(start + timedelta(minutes=last))}\t{minutes // 60}h {minutes % 60}m 0s"
            f"\t{email}\t{email}\tAttendee"
        )
    lines += ["", "3. In-Meeting Activities", "Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole"]
    for name, email, offset, minutes in rows:
        lines.append(
            f"{name}\t{teams_time(start + timedelta(minutes=offset))}\t"
            f"{teams_time(start + timedelta(minutes=offset + minutes))}\t"
            f"{minutes // 60}h {minutes % 60}m 0s\t{email}\tAttendee"
        )
    return ("\r\n".join(lines) + "\r\n").encode("utf-16")


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    session_id: int,
    meeting_id: int,
    platform: str,
    data: bytes,
    filename: str = "participants.csv",
) -> httpx.Response:
    return await client.post(
        f"/api/sessions/{session_id}/attendance/import",
        data={"meeting_id": str(meeting_id), "platform": platform},
        files={"file": (filename, data, "text/csv")},
        headers=headers,
    )
