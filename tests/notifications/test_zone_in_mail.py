"""Emails name the session's time zone in words; a virtual seat's also give the time in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from notifications.messages import format_utc, format_zone
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import by_recipient, html_of, smtp_dispatcher, text_of


async def test_confirmations_name_the_zone_and_virtual_ones_give_utc(
    client, db, settings, admin_headers, smtp_server
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid", zone="America/Phoenix")
    for n, attendance in [(1, "in_person"), (2, "virtual")]:
        body = person(n, attendance=attendance)
        made = await client.post(f"/api/sessions/{session['id']}/registrations", json=body)
        assert made.status_code == 201
    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    mail = by_recipient(smtp_server.messages)
    starts = datetime.fromisoformat(session["starts_at"])
    zone_words = "Arizona time (Mountain Standard Time all year) (America/Phoenix), MST, UTC−07:00"
    in_person, virtual = mail["officer1@example.org"][0], mail["officer2@example.org"][0]
    for message in (in_person, virtual):
        assert zone_words in text_of(message)
        assert zone_words in html_of(message)
    utc_start = f"{starts.astimezone(UTC):%A, %B} {starts.astimezone(UTC).day}"
    assert "In UTC:" not in text_of(in_person)
    assert "In UTC:" in text_of(virtual) and utc_start in text_of(virtual)
    assert "UTC</td>" in html_of(virtual)


def test_zone_words_follow_daylight_saving_and_fall_back_to_the_city():
    winter = datetime(2027, 1, 12, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    summer = datetime(2027, 7, 12, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    assert format_zone(winter) == "Central Time (America/Chicago), CST, UTC−06:00"
    assert format_zone(summer) == "Central Time (America/Chicago), CDT, UTC−05:00"
    berlin = datetime(2027, 1, 12, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert format_zone(berlin) == "Berlin time (Europe/Berlin), CET, UTC+01:00"
    assert format_utc(winter) == "Tuesday, January 12, 2027, 3:00 PM UTC"
