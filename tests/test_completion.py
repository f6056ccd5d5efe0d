"""A two-day hybrid session from attendance to credit, end to end through the app: check-in in
and out of its window, a Zoom and a Teams report (a rejoin summed, one person under the
threshold), finalize, certificates mailed to the completers only through a real SMTP server,
and amendments after finalizing (refused without a reason, audited and followed with one)."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from scheduler.models import Certificate, Meeting, RosterAudit
from tests.attendance_support import register, teams_report, two_day_session, utc_start, zoom_report
from tests.notifications.test_delivery import deliver
from tests.support.pdf import pdf_text
from tests.web.page_client import csrf_from


async def check_in(client, code: str, email: str) -> str:
    page = await client.get(f"/checkin/{code}")
    answer = await client.post(
        f"/checkin/{code}", data={"email": email, "csrf_token": csrf_from(page.text)}
    )
    return answer.text


def certificate_mails(messages) -> dict[str, object]:
    return {
        m["To"].addresses[0].addr_spec.lower(): m
        for m in messages
        if m["X-Outbox-Kind"] == "certificate"
    }


async def test_two_day_session_to_certificates_and_amendments(
    client, admin_headers, db, settings, smtp_server
):
    session = await two_day_session(client, admin_headers, course_number="RW-101")
    sid = session["id"]
    day1, day2 = (m["id"] for m in session["meetings"])
    ana = await register(client, sid, "Ana Diaz", "ana@pd.example.org", "in_person")
    dev = await register(client, sid, "Dev Late", "dev@pd.example.org", "in_person")
    ben = await register(client, sid, "Ben Ode", "ben@pd.example.org", "virtual")
    cara = await register(client, sid, "Cara Short", "cara@pd.example.org", "virtual")
    async with db.read() as conn:
        codes = dict(
            (
                await conn.execute(
                    select(Meeting.id, Meeting.checkin_code).where(Meeting.session_id == sid)
                )
            ).all()
        )
    start1, start2 = utc_start(session, 0), utc_start(session, 1)
    url = f"/api/sessions/{sid}"

    # Day 1: Ana checks in on time; Dev arrives 40 minutes late and is refused.
    with time_machine.travel(start1 + timedelta(minutes=5), tick=False):
        assert "You are checked in" in await check_in(client, codes[day1], "ana@pd.example.org")
        before = await client.get(f"/api/sessions/{sid}/completions", headers=admin_headers)
        assert before.json() | {"contact_minutes": 0} == {
            "session_id": sid,
            "finalized_at": None,
            "finalized_by": None,
            "contact_minutes": 0,
            "completions": [],
        }
        early = await client.post(f"{url}/finalize", headers=admin_headers)
        assert early.status_code == 409  # day 2 has not started
    with time_machine.travel(start1 + timedelta(minutes=40), tick=False):
        assert "closed" in await check_in(client, codes[day1], "dev@pd.example.org")
    zoom = zoom_report(
        start1,
        [
            ("Ben Ode", "ben@pd.example.org", 0, 110),
            ("Ben Ode (iPhone)", "ben@pd.example.org", 115, 120),  # rejoin: 230 of 240
            ("Cara Short", "cara@pd.example.org", 0, 238),
        ],
    )
    imported = await _upload(client, admin_headers, sid, day1, "zoom", zoom)
    assert {m["name"]: m["minutes"] for m in imported["matched"]} == {
        "Ben Ode": 230,
        "Cara Short": 238,
    }

    # Day 2: Ana and Dev check in; Teams says Cara stayed 150 of 240 minutes (under 80 %).
    with time_machine.travel(start2 - timedelta(minutes=20), tick=False):
        assert "You are checked in" in await check_in(client, codes[day2], "ana@pd.example.org")
        assert "You are checked in" in await check_in(client, codes[day2], "dev@pd.example.org")
    teams = teams_report(
        start2,
        [
            ("Ben Ode", "ben@pd.example.org", 0, 120),
            ("Ben Ode", "ben@pd.example.org", 121, 118),
            ("Cara Short", "cara@pd.example.org", 30, 150),
        ],
    )
    imported = await _upload(client, admin_headers, sid, day2, "teams", teams)
    assert {m["name"]: m["present"] for m in imported["matched"]} == {
        "Ben Ode": True,
        "Cara Short": False,
    }

    # Finalize after the last meeting: Ana and Ben completed; Dev missed day 1, Cara day 2.
    with time_machine.travel(start2 + timedelta(hours=5), tick=False):
        done = await client.post(f"{url}/finalize", headers=admin_headers)
        assert done.status_code == 200, done.text
        completed = {c["name"]: c["completed"] for c in done.json()["completions"]}
        assert completed == {
            "Ana Diaz": True,
            "Ben Ode": True,
            "Cara Short": False,
            "Dev Late": False,
        }
        again = await client.post(f"{url}/finalize", headers=admin_headers)
        assert again.status_code == 409
        mails = certificate_mails(await deliver(db, settings, smtp_server))
        assert set(mails) == {"ana@pd.example.org", "ben@pd.example.org"}
        attachments = list(mails["ana@pd.example.org"].iter_attachments())
        assert [a.get_content_type() for a in attachments] == ["application/pdf"]
        printed = pdf_text(attachments[0].get_content())
        assert "Ana Diaz" in printed and "RW-101" in printed and "Managing Bias" in printed
        assert "http://testserver/verify/" in printed

        # After finalizing, a change needs a reason.
        fix = {"meeting_id": day1, "marks": [{"registration_id": dev["id"], "present": True}]}
        refused = await client.put(f"{url}/attendance", json=fix, headers=admin_headers)
        assert refused.status_code == 422
        assert set(refused.json()["error"]["fields"]) == {"reason"}
        fix["reason"] = "Dev signed the paper sheet; check-in was refused for lateness."
        amended = await client.put(f"{url}/attendance", json=fix, headers=admin_headers)
        assert amended.status_code == 200 and amended.json()["audited"] == 1
        demote = {
            "meeting_id": day2,
            "marks": [{"registration_id": ben["id"], "present": False, "minutes": 60}],
            "reason": "The Teams report counted a muted laptop left in the room.",
        }
        assert (
            await client.put(f"{url}/attendance", json=demote, headers=admin_headers)
        ).status_code == 200
        completions = (await client.get(f"{url}/completions", headers=admin_headers)).json()[
            "completions"
        ]
        assert {c["name"]: c["completed"] for c in completions} == {
            "Ana Diaz": True,
            "Ben Ode": False,
            "Cara Short": False,
            "Dev Late": True,
        }
        later = certificate_mails(await deliver(db, settings, smtp_server))
        assert set(later) == {"dev@pd.example.org"}

    async with db.read() as conn:
        trail = (
            await conn.execute(
                select(RosterAudit).where(RosterAudit.session_id == sid).order_by(RosterAudit.id)
            )
        ).all()
        certificates = (
            await conn.execute(select(Certificate.registration_id, Certificate.status))
        ).all()
    assert [a.action for a in trail] == ["finalize", "attendance", "attendance"]
    dev_change = trail[1]
    assert dev_change.registration_id == dev["id"] and dev_change.meeting_id == day1
    assert dev_change.before is None and dev_change.after == {"present": True, "minutes": None}
    assert dev_change.reason.startswith("Dev signed") and dev_change.actor == "token:tests"
    assert trail[2].before == {"present": True, "minutes": 238}
    status = {(c.registration_id, c.status) for c in certificates}
    assert (ana["id"], "valid") in status and (dev["id"], "valid") in status
    assert (ben["id"], "revoked") in status and (ben["id"], "valid") not in status
    assert not any(c.registration_id == cara["id"] for c in certificates)


async def _upload(client, headers, sid, meeting_id, platform, data) -> dict:
    response = await client.post(
        f"/api/sessions/{sid}/attendance/import",
        data={"meeting_id": str(meeting_id), "platform": platform},
        files={"file": ("report.csv", data, "text/csv")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_percent_of_contact_hours_counts_minutes_of_present_marks(client, admin_headers):
    session = await two_day_session(
        client, admin_headers, completion={"rule": "percent_hours", "percent": 75}
    )
    sid = session["id"]
    day1, day2 = (m["id"] for m in session["meetings"])
    ana = await register(client, sid, "Ana Diaz", "ana@pd.example.org", "virtual")
    ben = await register(client, sid, "Ben Ode", "ben@pd.example.org", "in_person")
    url = f"/api/sessions/{sid}"
    for meeting, marks in (
        (day1, [(ana, True, None), (ben, True, None)]),
        (day2, [(ana, True, 125), (ben, False, None)]),  # 240 + 125 of 480: 76 %
    ):
        body = {
            "meeting_id": meeting,
            "marks": [
                {"registration_id": r["id"], "present": p, "minutes": m} for r, p, m in marks
            ],
        }
        assert (
            await client.put(f"{url}/attendance", json=body, headers=admin_headers)
        ).status_code == 200
    with time_machine.travel(utc_start(session, 1) + timedelta(hours=4), tick=False):
        done = await client.post(f"{url}/finalize", headers=admin_headers)
    assert done.status_code == 200, done.text
    outcome = {
        c["name"]: (c["completed"], c["attended_minutes"]) for c in done.json()["completions"]
    }
    assert outcome == {"Ana Diaz": (True, 365), "Ben Ode": (False, 240)}
    assert done.json()["certificates"]["issued"] == 1
    listed = (await client.get(f"{url}/completions", headers=admin_headers)).json()
    assert listed["contact_minutes"] == 480 and listed["finalized_by"] == "token:tests"
