"""Find my registrations: ``POST /registrations/lookup`` on both backends, mail to aiosmtpd.

One email lists every active registration of the address, whatever its letter case; an
unknown address gets nothing; the two answers are the same bytes; the address and the client
are each rate limited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import time_machine
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from notifications.models import Message
from scheduler.app import create_app
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import html_of, smtp_dispatcher, text_of
from tests.support.smtp import SmtpSink
from tests.web.page_client import csrf_from

MINUTE = datetime.now(UTC).replace(second=5, microsecond=0) + timedelta(minutes=1)


async def ask(client: httpx.AsyncClient, email: str) -> httpx.Response:
    form = await client.get("/registrations/lookup")
    assert form.status_code == 200
    return await client.post(
        "/registrations/lookup", data={"email": email, "csrf_token": csrf_from(form.text)}
    )


async def lookups(db) -> list[Message]:
    async with db.read() as conn:
        return list((await conn.execute(select(Message).where(Message.kind == "lookup"))).all())


async def deliver(db, settings, smtp: SmtpSink) -> list:
    before = smtp.count()
    dispatcher = smtp_dispatcher(db, settings, smtp.url)
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    return smtp.messages[before:]


async def setup_registrations(client, admin_headers) -> dict[str, str]:
    """Sam holds a seat in two sessions (one virtual, one waitlisted) and cancelled a third."""
    await make_course(client, admin_headers)
    one = await make_session(client, admin_headers, days=5)
    two = await make_session(client, admin_headers, mode="virtual", days=6, virtual=1)
    three = await make_session(client, admin_headers, days=7)
    sam = {**person(1), "email": "Sam.Rivera@PD.example.org", "name": "Sam Rivera"}
    tokens = {}
    for key, sid, body in [
        ("seat", one["id"], sam),
        ("other", two["id"], {**person(2), "attendance": "virtual"}),
        ("waiting", two["id"], {**sam, "attendance": "virtual"}),
        ("cancelled", three["id"], sam),
        ("stranger", one["id"], person(3)),
    ]:
        made = await client.post(f"/api/sessions/{sid}/registrations", json=body)
        assert made.status_code == 201, made.text
        tokens[key] = made.json()["token"]
    assert (await client.delete(f"/api/registrations/{tokens['cancelled']}")).status_code == 200
    return tokens


async def test_one_email_with_every_active_link_in_any_letter_case(
    client, db, settings, admin_headers, smtp_server
):
    tokens = await setup_registrations(client, admin_headers)
    await deliver(db, settings, smtp_server)  # the confirmations, out of the way

    answer = await ask(client, "  sAM.rivera@pd.EXAMPLE.ORG ")
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    mail = await deliver(db, settings, smtp_server)
    assert len(mail) == 1
    message = mail[0]
    assert message["To"].addresses[0].addr_spec == "Sam.Rivera@pd.example.org"
    assert message["X-Outbox-Kind"] == "lookup"
    text, html = text_of(message), html_of(message)
    for body in (text, html):
        assert f"http://testserver/registrations/{tokens['seat']}" in body
        assert f"http://testserver/registrations/{tokens['waiting']}" in body
        assert tokens["cancelled"] not in body
        assert tokens["stranger"] not in body and tokens["other"] not in body
    assert "Central Time (America/Chicago), CST, UTC−06:00" in text
    assert text.count("In UTC:") == 1  # only the virtual seat gives UTC
    assert "Status: waitlisted, virtual" in text


async def test_an_unknown_address_gets_nothing_and_the_same_bytes(
    client, db, settings, admin_headers, smtp_server
):
    await setup_registrations(client, admin_headers)
    await deliver(db, settings, smtp_server)
    known = await ask(client, "sam.rivera@pd.example.org")
    unknown = await ask(client, "nobody@pd.example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert [m.recipient for m in await lookups(db)] == ["Sam.Rivera@pd.example.org"]
    assert len(await deliver(db, settings, smtp_server)) == 1


async def test_a_registration_cancelled_before_sending_is_left_out(
    client, db, settings, admin_headers, smtp_server
):
    tokens = await setup_registrations(client, admin_headers)
    await deliver(db, settings, smtp_server)
    await ask(client, "sam.rivera@pd.example.org")
    await client.delete(f"/api/registrations/{tokens['seat']}")
    await client.delete(f"/api/registrations/{tokens['waiting']}")
    mail = await deliver(db, settings, smtp_server)
    assert [m["X-Outbox-Kind"] for m in mail] == ["registration_cancelled"] * 2


async def test_each_address_gets_at_most_three_a_minute_whoever_asks(
    client, db, admin_headers, settings
):
    await setup_registrations(client, admin_headers)
    with time_machine.travel(MINUTE, tick=False):
        answers = [(await ask(client, "SAM.RIVERA@pd.example.org")).content for _ in range(5)]
    assert len(set(answers)) == 1
    assert len(await lookups(db)) == 3
    with time_machine.travel(MINUTE + timedelta(minutes=1), tick=False):
        await ask(client, "sam.rivera@pd.example.org")
    assert len(await lookups(db)) == 4


async def test_each_client_is_limited_too(settings, db):
    app = create_app(settings.with_(rate_limit=2))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            with time_machine.travel(MINUTE, tick=False):
                codes = [(await ask(c, f"p{n}@example.org")).status_code for n in range(3)]
                refused = await ask(c, "p9@example.org")
    assert codes == [200, 200, 429]
    assert refused.status_code == 429
    assert refused.headers["retry-after"]


async def test_a_malformed_address_is_shown_with_its_error_and_csrf_is_required(client, db):
    answer = await ask(client, "not an address")
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.text and "not a valid email address" in answer.text
    assert 'value="not an address"' in answer.text
    forged = await client.post("/registrations/lookup", data={"email": "sam@example.org"})
    assert forged.status_code == 403
    assert await lookups(db) == []
