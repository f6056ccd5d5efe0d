"""International addresses through a real server and real SMTP relays (issue 9, point 13).

A domain outside ASCII is stored in its ASCII (IDNA) form, which every relay delivers to. A
local part outside ASCII is refused at input unless the operator says the relay offers
SMTPUTF8 (``SCHEDULER_SMTPUTF8``); then the relay is asked at send time, and a relay without it
fails the message for good, with the reason on the outbox page, instead of retrying forever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from notifications.models import Message
from scheduler import accounts
from scheduler.db import Database
from scheduler.models import Account, AdminUser, Instructor, Registration
from scheduler.tokens import create_token
from tests.helpers import session_body
from tests.support.servers import ServerProcess
from tests.support.smtp import SmtpSink, parse_message
from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_from, make_admin

IDN = "user@bücher.de"
IDN_STORED = "user@xn--bcher-kva.de"
UTF8_LOCAL = "usér@example.org"
FULL_WIDTH = "ｕｓｅｒ@example.org"


@dataclass
class Site:
    server: ServerProcess
    http: httpx.AsyncClient
    admin: dict[str, str]
    session_id: int
    agency_id: int


@pytest.fixture
def relay() -> Any:
    sinks: list[SmtpSink] = []

    def start(*, smtputf8: bool) -> SmtpSink:
        sinks.append(SmtpSink(smtputf8=smtputf8).start())
        return sinks[-1]

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
async def open_site(db: Database, database_url: str, live_server_factory: Any) -> Any:
    """``await open_site(**env)``: a real server with a course, a session and an agency."""
    clients: list[httpx.AsyncClient] = []

    async def start(**env: str) -> Site:
        server = live_server_factory(database_url, **env)
        admin = {"Authorization": f"Bearer {await create_token(db, f'intl-{len(clients)}')}"}
        http = httpx.AsyncClient(base_url=server.url, timeout=30)
        clients.append(http)
        if len(clients) == 1:
            course = {"slug": "managing-bias", "title": "Managing Bias"}
            assert (await http.post("/api/courses", json=course, headers=admin)).status_code == 201
        made = await http.post(
            "/api/courses/managing-bias/sessions", json=session_body("hybrid"), headers=admin
        )
        assert made.status_code == 201, made.text
        agency = await http.post(
            "/api/agencies",
            json={"name": f"Springfield PD {len(clients)}", "state": "IL", "type": "municipal"},
            headers=admin,
        )
        assert agency.status_code == 201, agency.text
        return Site(server, http, admin, made.json()["id"], agency.json()["id"])

    yield start
    for http in clients:
        await http.aclose()


def registrant(email: str, name: str = "Zoë Ünal") -> dict[str, str]:
    return {"name": name, "email": email, "agency": "PD", "attendance": "in_person"}


async def wait_for(predicate: Any, within: float = 20) -> Any:
    """The first truthy answer of ``predicate``, polled; fails after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not (found := await predicate()):  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError("timed out waiting") from None
    return found


async def messages_to(db: Database, recipient: str, kind: str = "confirmation") -> list[Any]:
    """The messages of one kind to one address (reminders wait for later)."""
    query = select(Message).where(Message.recipient == recipient, Message.kind == kind)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def test_an_idn_domain_is_stored_in_ascii_everywhere_and_mail_arrives_there(
    db: Database, open_site: Any, relay: Any
) -> None:
    sink = relay(smtputf8=False)
    site = await open_site(SCHEDULER_SMTP_URL=sink.url)
    http, admin = site.http, site.admin

    seat = await http.post(f"/api/sessions/{site.session_id}/registrations", json=registrant(IDN))
    assert seat.status_code == 201, seat.text
    mine = (await http.get(f"/api/registrations/{seat.json()['token']}")).json()
    assert mine["email"] == IDN_STORED

    batch = await http.post(
        f"/api/sessions/{site.session_id}/registrations/batch",
        json={
            "agency_id": site.agency_id,
            "attendance": "virtual",
            "people": [{"name": "Jörg", "email": "joerg@Straße.example"}],
        },
        headers=admin,
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["status"] == "confirmed", batch.text
    coordinator = await http.post(
        f"/api/agencies/{site.agency_id}/coordinators",
        json={"name": "Chef", "email": "chef@müller.example"},
        headers=admin,
    )
    assert coordinator.status_code == 201, coordinator.text
    instructor = await http.post(
        "/api/instructors",
        json={"name": "Ana", "email": "ana@bücher.de", "credentials": "", "public": True},
        headers=admin,
    )
    assert instructor.status_code == 201, instructor.text

    async with db.read() as conn:
        registered = set((await conn.scalars(select(Registration.email))).all())
        people = set((await conn.scalars(select(Account.email))).all())
        teachers = set((await conn.scalars(select(Instructor.email))).all())
    assert registered == {IDN_STORED, "joerg@xn--strae-oqa.example"}
    assert "chef@xn--mller-kva.example" in people
    assert teachers == {"ana@xn--bcher-kva.de"}

    # The lookup form takes the Unicode spelling and mails the stored address.
    form = await http.get("/registrations/lookup")
    looked = await http.post(
        "/registrations/lookup",
        data={"email": "USER@BÜCHER.de", "csrf_token": csrf_from(form.text)},
    )
    assert looked.status_code in (200, 303), looked.text

    def arrived() -> Any:
        async def check() -> Any:
            kinds = [
                (m["To"].addresses[0].addr_spec, m["X-Outbox-Kind"])
                for m in sink.messages
                if m["To"] is not None
            ]
            return kinds if sum(1 for to, _ in kinds if to == IDN_STORED) >= 2 else None

        return check

    received = await wait_for(arrived())
    assert (IDN_STORED, "confirmation") in received
    assert any(kind == "lookup" or "link" in kind for to, kind in received if to == IDN_STORED)
    assert ("chef@xn--mller-kva.example", "coordinator_invitation") in received
    envelopes = [rcpt for _, rcpts, _ in sink.received for rcpt in rcpts]
    assert IDN_STORED in envelopes and all(r.isascii() for r in envelopes)
    # Nothing needed SMTPUTF8, so nothing asked for it; the To header reads back without defects.
    assert all("SMTPUTF8" not in options for options in sink.options)
    for mail in sink.messages:
        assert mail["To"].defects == ()
    confirmation = next(m for m in sink.messages if m["X-Outbox-Kind"] == "confirmation")
    assert confirmation["To"].addresses[0].display_name == "Zoë Ünal"

    # An admin made with a Unicode domain signs in with either spelling.
    await make_admin(db)
    stored = await accounts.create_admin(db, "boss@bücher.de", ADMIN_PASSWORD)
    assert stored == "boss@xn--bcher-kva.de"
    async with db.read() as conn:
        admins = set((await conn.scalars(select(AdminUser.email))).all())
    assert {ADMIN_EMAIL, "boss@xn--bcher-kva.de"} <= admins
    login = await http.get("/admin/login")
    signed = await http.post(
        "/admin/login",
        data={
            "email": "boss@BÜCHER.de",
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(login.text),
            "next": "/admin",
        },
    )
    assert signed.status_code == 303, signed.text


@pytest.mark.parametrize("address", [UTF8_LOCAL, FULL_WIDTH])
async def test_a_non_ascii_local_part_is_refused_by_default_naming_the_field(
    db: Database, open_site: Any, address: str
) -> None:
    site = await open_site()
    http, admin = site.http, site.admin
    refusals = [
        await http.post(f"/api/sessions/{site.session_id}/registrations", json=registrant(address)),
        await http.post(
            f"/api/agencies/{site.agency_id}/coordinators",
            json={"name": "Chef", "email": address},
            headers=admin,
        ),
        await http.post(
            "/api/instructors",
            json={"name": "Ana", "email": address, "credentials": "", "public": True},
            headers=admin,
        ),
    ]
    for answer in refusals:
        assert answer.status_code == 422, answer.text
        why = answer.json()["error"]["fields"]["email"]
        assert "ASCII" in why and "before the @" in why, why
    batch = await http.post(
        f"/api/sessions/{site.session_id}/registrations/batch",
        json={
            "agency_id": site.agency_id,
            "attendance": "in_person",
            "people": [{"name": "Ana", "email": address}],
        },
        headers=admin,
    )
    assert batch.status_code == 200, batch.text
    row = batch.json()["results"][0]
    assert row["status"] == "error" and "ASCII" in row["fields"]["email"], row
    # The lookup form keeps what was typed and says why.
    form = await http.get("/registrations/lookup")
    looked = await http.post(
        "/registrations/lookup", data={"email": address, "csrf_token": csrf_from(form.text)}
    )
    assert looked.status_code == 422 and "ASCII" in looked.text
    assert address in looked.text
    async with db.read() as conn:
        assert (await conn.scalars(select(Registration.email))).all() == []
        assert (await conn.scalars(select(Instructor.email))).all() == []
        assert (await conn.scalars(select(Message.id))).all() == []


async def test_a_relay_without_smtputf8_fails_the_message_for_good_with_the_reason_shown(
    db: Database, open_site: Any, relay: Any
) -> None:
    sink = relay(smtputf8=False)
    site = await open_site(SCHEDULER_SMTP_URL=sink.url, SCHEDULER_SMTPUTF8="1")
    http = site.http
    seat = await http.post(
        f"/api/sessions/{site.session_id}/registrations", json=registrant("usér@Bücher.de")
    )
    assert seat.status_code == 201, seat.text
    stored = "usér@xn--bcher-kva.de"
    ascii_seat = await http.post(
        f"/api/sessions/{site.session_id}/registrations", json=registrant("plain@example.org")
    )
    assert ascii_seat.status_code == 201

    async def failed() -> Any:
        rows = await messages_to(db, stored)
        return rows if rows and all(r.status == "failed" for r in rows) else None

    rows = await wait_for(failed)
    assert [r.attempts for r in rows] == [1]
    assert "SMTPUTF8" in rows[0].last_error
    # Several dispatcher ticks later it is still failed after one try: not retried.
    await asyncio.sleep(3)
    again = await messages_to(db, stored)
    assert [(r.status, r.attempts, r.due_at) for r in again] == [
        (r.status, r.attempts, r.due_at) for r in rows
    ]
    # The plain address was delivered meanwhile; nothing went to the other.
    await wait_for(lambda: _has(sink, "plain@example.org"))
    assert all(stored not in rcpts for _, rcpts, _ in sink.received)

    # The admin's outbox page shows the message as failed, with the reason.
    await make_admin(db)
    login = await http.get("/admin/login")
    signed = await http.post(
        "/admin/login",
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(login.text),
            "next": "/admin",
        },
    )
    assert signed.status_code == 303
    page = await http.get("/admin/outbox", params={"status": "failed"})
    assert page.status_code == 200
    assert "SMTPUTF8" in page.text and stored in page.text


async def _has(sink: SmtpSink, address: str) -> bool:
    return any(address in rcpts for _, rcpts, _ in sink.received)


async def test_a_relay_with_smtputf8_gets_the_message_and_the_file_transport_writes_rfc_6532(
    db: Database, open_site: Any, relay: Any
) -> None:
    sink = relay(smtputf8=True)
    site = await open_site(SCHEDULER_SMTP_URL=sink.url, SCHEDULER_SMTPUTF8="yes")
    seat = await site.http.post(
        f"/api/sessions/{site.session_id}/registrations", json=registrant("usér@bücher.de")
    )
    assert seat.status_code == 201, seat.text
    stored = "usér@xn--bcher-kva.de"
    await wait_for(lambda: _has(sink, stored))
    index = next(i for i, (_, rcpts, _) in enumerate(sink.received) if stored in rcpts)
    assert "SMTPUTF8" in sink.options[index]
    mail = sink.messages[index]
    assert mail["To"].addresses[0].addr_spec == stored
    assert mail["To"].addresses[0].display_name == "Zoë Ünal"
    (rows,) = [await messages_to(db, stored)]
    assert [r.status for r in rows] == ["sent"]

    # Without a relay the same address goes to a .eml file that the email package reads back.
    site.server.stop()  # else its dispatcher, sharing the database, would send this one too
    files = await open_site(SCHEDULER_SMTPUTF8="1")
    seat = await files.http.post(
        f"/api/sessions/{files.session_id}/registrations", json=registrant("zoë@example.org")
    )
    assert seat.status_code == 201, seat.text
    mail_dir = files.server.workdir / "mail"

    async def written() -> Any:
        for path in mail_dir.glob("*.eml"):
            parsed = parse_message(path.read_bytes())
            if (
                parsed["To"] is not None
                and parsed["To"].addresses[0].addr_spec == "zoë@example.org"
            ):
                return path
        return None

    path = await wait_for(written)
    raw = path.read_bytes()
    to_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"To:"))
    # RFC 6532: the address as UTF-8, not an encoded word glued to an @.
    assert to_line.decode("utf-8") == "To: Zoë Ünal <zoë@example.org>"
    parsed = parse_message(raw)
    # The email package notes every non-ASCII local part; RFC 6532 allows it, nothing else is amiss.
    assert {type(d).__name__ for d in parsed["To"].defects} <= {"NonASCIILocalPartDefect"}
