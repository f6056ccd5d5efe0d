"""Hostile names and titles can never add or break a header, checked on what SMTP receives."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.models import Course, Registration
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import smtp_dispatcher, text_of
from tests.support.smtp import SmtpSink

HOSTILE_NAMES = [
    'Zoë "The Boss" O\'Brien, Jr. <boss@evil.example>',
    "Renée Ñúñez-Łukasiewicz 山田太郎",
    "Sam\r\nBcc: victim@evil.example",
    "Sam\nSubject: owned\r\n\r\nforged body",
    "Line\u2028Separator\u0085Next =?utf-8?q?encoded?=",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
async def test_hostile_names_stay_in_their_header(
    name: str,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    body = person(1, agency="Agency\u2028with \"quotes\" and 'más'")
    response = await client.post(f"/api/sessions/{session['id']}/registrations", json=body)
    assert response.status_code == 201, response.text
    # The API refuses CR/LF, so put the hostile text in place the way an import or an older
    # version could have: straight into the rows the mail is made from.
    async with db.write() as conn:
        await conn.execute(update(Registration).values(name=name))
        await conn.execute(update(Course).values(title=f"Managing Bias\r\nX-Injected: {name}"))

    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    await dispatcher.drain()
    await dispatcher.close()

    [(mail_from, rcpt_tos, raw)] = smtp_server.received
    assert mail_from == "no-reply@training.invalid"
    assert rcpt_tos == ["officer1@example.org"]  # no smuggled Bcc became a recipient
    [mail] = smtp_server.messages
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    assert sorted(mail.keys()) == sorted(
        [
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "X-Outbox-Kind",
            "MIME-Version",
            "Content-Type",
        ]
    )
    [to] = mail["To"].addresses
    assert to.addr_spec == "officer1@example.org"
    flat = " ".join(name.replace("\u2028", " ").replace("\u0085", " ").split())
    flat = flat.replace("=?", "= ?")  # shown literally, never decoded as an encoded word
    # Compared without spaces: when a long name is folded into two RFC 2047 encoded words,
    # the stdlib parser keeps the folding space between them although RFC 2047 drops it.
    assert to.display_name.replace(" ", "") == flat.replace(" ", "")
    if "=?" in name:
        assert "?q?encoded?=" in to.display_name  # still literal text, not decoded
    assert str(mail["Subject"]).startswith("Confirmed: Managing Bias X-Injected: ")
    assert "\n" not in str(mail["Subject"])
    # Every header line of the raw message is a header or a folded continuation.
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line, line
        assert all(b < 128 for b in line), line  # non-ASCII travels RFC 2047-encoded
    assert flat.split()[0] in text_of(mail)
