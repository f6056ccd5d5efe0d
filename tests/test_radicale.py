"""Radicale, a real CalDAV server, stores every feed event and every invite and gives them back.

Each event is PUT as its own calendar object (one UID each, with the VTIMEZONEs it needs, no
METHOD: what a client does when it files an invite); reading the collection back must parse
and hold every UID. Radicale is strict about what it accepts, so this catches objects that
icalendar writes but a server would refuse.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import icalendar
import pytest

from tests.helpers import make_course, person, session_body
from tests.support.ports import free_port
from tests.test_calendar_meetings import DAYS, emailed_invites, meetings
from tests.test_double_booking import instructor


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "radicale.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--auth-type",
            "none",
            "--storage-filesystem-folder",
            str(tmp_path / "collections"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "radicale.log").read_text()
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "radicale did not come up"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def objects(data: bytes) -> list[tuple[str, bytes]]:
    """One calendar object per VEVENT, with the file's VTIMEZONEs and without METHOD."""
    cal = icalendar.Calendar.from_ical(data)
    zones = cal.walk("VTIMEZONE")
    found = []
    for event in cal.walk("VEVENT"):
        one = icalendar.Calendar()
        one.add("prodid", cal["PRODID"])
        one.add("version", "2.0")
        for zone in zones:
            one.add_component(zone)
        one.add_component(event)
        found.append((str(event["UID"]), one.to_ical()))
    return found


async def test_radicale_stores_every_feed_event_and_invite(
    client, admin_headers, db, settings, radicale
):
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    body = session_body("hybrid", in_person=5, virtual=5, instructors=[teacher["id"]])
    body.pop("starts_at"), body.pop("ends_at")
    body["meetings"] = meetings(*DAYS)
    body["registration_closes_at"] = "2027-11-01T09:00"
    made = (
        await client.post("/api/courses/managing-bias/sessions", json=body, headers=admin_headers)
    ).json()
    await client.post(
        "/api/courses/managing-bias/sessions", json=session_body(), headers=admin_headers
    )
    token = (await client.post(f"/api/sessions/{made['id']}/registrations", json=person(1))).json()[
        "token"
    ]
    ids = [m["id"] for m in made["meetings"]]
    await client.patch(
        f"/api/sessions/{made['id']}",
        json={
            "meetings": [{"id": i, **m} for i, m in zip(ids[:2], meetings(*DAYS[:2]), strict=True)]
        },
        headers=admin_headers,
    )
    files = [
        (await client.get("/courses/managing-bias/calendar.ics")).content,
        (await client.get("/calendar.ics?deadlines=1")).content,
        (await client.get(f"/registrations/{token}/calendar.ics")).content,
        (await client.get(teacher["feed_url"].removeprefix("http://testserver"))).content,
    ]
    for kind in ("confirmation", "session_changed"):
        files += [invite["data"] for _, invite in await emailed_invites(db, settings, kind)]

    async with httpx.AsyncClient(base_url=radicale, auth=("tests", "x"), timeout=10) as dav:
        stored: set[str] = set()
        for n, data in enumerate(files):
            collection = f"/tests/cal{n}/"
            made_col = await dav.request("MKCOL", collection, content=_MKCALENDAR)
            assert made_col.status_code == 201, made_col.text
            uids = []
            for index, (uid, obj) in enumerate(objects(data)):
                put = await dav.put(
                    f"{collection}{index}.ics",
                    content=obj,
                    headers={"content-type": "text/calendar; charset=utf-8"},
                )
                assert put.status_code == 201, (uid, put.status_code, put.text)
                uids.append(uid)
            back = await dav.get(collection)
            assert back.status_code == 200, back.text
            parsed = icalendar.Calendar.from_ical(back.content)
            assert sorted(str(e["UID"]) for e in parsed.walk("VEVENT")) == sorted(uids)
            stored |= set(uids)
    assert any("registration-closes" in uid for uid in stored)
    assert any(uid.startswith("instructor-") for uid in stored)


_MKCALENDAR = b"""<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
  </D:prop></D:set>
</D:mkcol>"""
