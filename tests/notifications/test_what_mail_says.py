"""What the emails say, read back from a real SMTP server (aiosmtpd) with the ``email`` package.

Subjects parse back exactly as written, however long or non-ASCII; a cancellation says who did
it and why and carries no manage link to a dead registration; a reschedule marks only what
changed; an in-person seat at a hybrid session is given its own place; every email says how
to reach a person (``SCHEDULER_REPLY_TO``).
"""

from __future__ import annotations

import email
from datetime import datetime
from email.policy import default
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from notifications.messages import fold_header, format_when
from scheduler.config import Settings
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import event_of, html_of, invite_of, smtp_dispatcher, text_of
from tests.web.page_client import post_form, sign_in

CONTACT = "Training Team <training@network.example.org>"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        base_url="http://testserver",
        secret_key="test-secret-key-not-for-production",
        mail_dir=tmp_path / "mail",
        run_jobs=False,
        rate_limit=0,
        reply_to=CONTACT,
    )


async def deliver(db, settings, smtp) -> list[Any]:
    before = smtp.count()
    dispatcher = smtp_dispatcher(db, settings, smtp.url)
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    return smtp.messages[before:]


async def seat(client, session_id: int, n: int, attendance: str = "in_person") -> dict[str, Any]:
    made = await client.post(
        f"/api/sessions/{session_id}/registrations", json=person(n, attendance=attendance)
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


TITLES = [
    # 70 characters of subject: Python 3.11's folder put "Subject:" alone on its first line,
    # so the subject read back with a leading space.
    "Managing Bias Officers",
    # Next to encoded words it dropped the space: "préjugéspréjugés".
    "Bias (CIT) Überwachung préjugés préjugés",
    # Long ASCII: folded at spaces, with a word too long for any line.
    "De-escalation for Patrol Officers: Managing Bias in Split-Second Decisions, "
    "Procedural-Justice-and-Legitimacy-for-Supervisors-and-Field-Training-Officers Extended",
    "Désescalade et gestion des préjugés — Überwachung, 山田太郎の研修, for officers of all ranks",
]


@pytest.mark.parametrize("title", TITLES, ids=["70-chars", "encoded-words", "long-ascii", "cjk"])
async def test_subjects_parse_back_exactly_as_written(
    title, client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers, title=title)
    session = await make_session(client, admin_headers)
    await seat(client, session["id"], 1)
    [mail] = await deliver(db, settings, smtp_server)
    starts = datetime.fromisoformat(session["starts_at"]).astimezone(ZoneInfo("America/Chicago"))
    assert mail["Subject"] == f"Confirmed: {title}, {format_when(starts)}"

    [(_, _, raw)] = smtp_server.received
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    [first] = [line for line in head if line.startswith(b"Subject:")]
    assert first != b"Subject:" and first.startswith(b"Subject: ")  # never alone on its line
    assert all(len(line) <= 998 for line in head)


def test_fold_header_unfolds_to_the_text_for_any_mix_of_words():
    words = ["Bias", "x" * 90, "Ünïcödé", "—", "山田", "a,b", ":", "=", "e\u0301"]
    for size in range(1, 40):
        text = " ".join(words[(i * 7 + size) % len(words)] for i in range(size))
        folded = fold_header("Subject", text) + "\r\n"
        parsed = email.message_from_string(folded, policy=default)
        assert parsed["Subject"] == text, folded


async def test_an_admin_cancellation_says_who_and_why_and_links_no_dead_registration(
    client, admin_headers, db, settings, smtp_server
):
    csrf = await sign_in(client, db)
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    mine = await seat(client, session["id"], 1)
    waiting = await seat(client, session["id"], 2)
    await deliver(db, settings, smtp_server)

    url = f"/admin/registrations/{mine['id']}/cancel"
    done = await post_form(client, url, {"confirm": "yes", "reason": "Duplicate booking"}, csrf)
    assert done.status_code == 303
    received = {m["X-Outbox-Kind"]: m for m in await deliver(db, settings, smtp_server)}
    cancelled = received["registration_cancelled"]
    assert (
        cancelled["Subject"]
        == "Cancelled by the training team: your registration for Managing Bias"
    )
    text = text_of(cancelled)
    assert "The training team cancelled your seat: Duplicate booking" in text
    assert "as you asked" not in text
    for body in (text, html_of(cancelled)):
        assert mine["token"] not in body and "Manage or cancel" not in body
    assert "Questions? Reply to this email or write to training@network.example.org." in text
    assert str(cancelled["Reply-To"]) == CONTACT
    # The person promoted into the seat still gets their manage link.
    assert waiting["token"] in text_of(received["promoted"])

    # The registrant's own cancellation reads differently, and links no dead registration either.
    other = await seat(client, session["id"], 3)
    await deliver(db, settings, smtp_server)
    gone = await client.delete(f"/api/registrations/{other['token']}")
    assert gone.status_code == 200
    [own] = await deliver(db, settings, smtp_server)
    assert own["Subject"] == "Cancelled: your registration for Managing Bias"
    assert "you have left the waitlist, as you asked" in text_of(own)
    assert other["token"] not in text_of(own) and "training team" not in text_of(own)


async def test_a_session_cancellation_gives_the_reason_as_a_sentence(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    mine = await seat(client, session["id"], 1)
    await deliver(db, settings, smtp_server)
    reason = "The instructor is unavailable. We will let you know."
    await client.post(
        f"/api/sessions/{session['id']}/cancel", json={"reason": reason}, headers=admin_headers
    )
    [mail] = await deliver(db, settings, smtp_server)
    text = text_of(mail)
    assert "We are sorry: the training team cancelled this session." in text
    assert f"Their reason: {reason}" in text
    assert f"({reason})" not in text and f"({reason})" not in html_of(mail)
    assert mine["token"] not in text


async def test_a_reschedule_marks_only_what_changed(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    await seat(client, session["id"], 1)
    await deliver(db, settings, smtp_server)
    starts = datetime.fromisoformat(session["starts_at"])
    later = starts.replace(hour=13).replace(tzinfo=None).isoformat(timespec="minutes")
    ends = starts.replace(hour=16).replace(tzinfo=None).isoformat(timespec="minutes")

    moved = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"starts_at": later, "ends_at": ends},
        headers=admin_headers,
    )
    assert moved.status_code == 200
    [timed] = await deliver(db, settings, smtp_server)
    assert "a new time, the same place" in text_of(timed)
    assert "When, before:" in text_of(timed) and "Where, before:" not in text_of(timed)
    assert html_of(timed).count("<s>") == 1

    venue = {"name": "North Station", "address": "9 Elm St", "city": "Springfield", "state": "IL"}
    await client.patch(
        f"/api/sessions/{session['id']}", json={"venue": venue}, headers=admin_headers
    )
    [placed] = await deliver(db, settings, smtp_server)
    assert "a new place, the same time" in text_of(placed)
    assert "Where, now:    North Station" in text_of(placed)
    assert "When, before:" not in text_of(placed)
    assert html_of(placed).count("<s>") == 1


async def test_an_in_person_seat_at_a_hybrid_session_is_given_its_own_place(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid")
    mine = await seat(client, session["id"], 1, "in_person")
    [mail] = await deliver(db, settings, smtp_server)
    location = str(event_of(invite_of(mail))["LOCATION"])
    assert location.startswith("Metro Training Center") and "virtual" not in location.lower()
    google = parse_qs(urlsplit(mine["calendar"]["google"]).query)
    assert "virtual" not in google["location"][0].lower()


async def test_without_a_reply_to_every_email_says_the_mailbox_is_not_read(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    await seat(client, session["id"], 1)
    [mail] = await deliver(db, settings.with_(reply_to=None), smtp_server)
    assert mail["Reply-To"] is None
    assert "Please do not reply: this mailbox is not read." in text_of(mail)
    assert "http://testserver/courses/managing-bias" in text_of(mail)
