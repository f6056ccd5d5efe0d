"""Pages that list history: paged, upcoming first, and a bounded number of queries however
much history the database holds (counted with a SQLAlchemy event, never timed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import Engine

from bench import bench_history
from notifications.models import Message, MessageStatus, utcnow
from scheduler import catalog
from scheduler.db import Database
from scheduler.models import Registration, SeatPool, TrainingSession
from scheduler.web.admin import PAST_PAGE_SIZE
from scheduler.web.admin_tools import PAGE_SIZE
from tests.helpers import session_body
from tests.web.page_client import sign_in


@contextmanager
def counted() -> Iterator[list[str]]:
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", note)


async def add_history(db: Database, past: int, *, people: int = 4, mails: int = 6) -> None:
    """``past`` more sessions that ended, with registrations and sent mail."""
    now = utcnow()
    for n in range(past):
        created = await catalog.create_session(db, "managing-bias", session_body(in_person=10))
        start = now - timedelta(days=3 + n)
        async with db.write() as conn:
            await conn.execute(
                update(TrainingSession)
                .where(TrainingSession.id == created.id)
                .values(starts_at=start, ends_at=start + timedelta(hours=4))
            )
            pool = (
                await conn.execute(select(SeatPool.id).where(SeatPool.session_id == created.id))
            ).scalar_one()
            await conn.execute(
                insert(Registration),
                [
                    {
                        "session_id": created.id,
                        "pool_id": pool,
                        "attendance": "in_person",
                        "name": f"Officer {k}",
                        "email": f"o{created.id}.{k}@pd.example.org",
                        "email_key": f"o{created.id}.{k}@pd.example.org",
                        "agency": "Albany PD",
                        "agency_key": "albany pd",
                        "status": "confirmed",
                        "token": f"t{created.id}-{k}",
                        "created_at": start,
                        "updated_at": start,
                    }
                    for k in range(people)
                ],
            )
            await conn.execute(
                insert(Message),
                [
                    {
                        "kind": "confirmation",
                        "recipient": "x@pd.example.org",
                        "session_id": created.id,
                        "payload": {},
                        "due_at": start,
                        "status": MessageStatus.SENT,
                        "attempts": 1,
                        "created_at": start,
                        "sent_at": start,
                    }
                    for _ in range(mails)
                ],
            )


# Beyond bench/bench_history.py's everyday requests: second pages and the failed mail tab.
MORE_PAGES = (
    "/admin/courses/managing-bias?past=2",
    "/admin/outbox?status=failed",
)


async def statements_per_request(client: httpx.AsyncClient, sid: int, n: int) -> dict[str, int]:
    """Statements each everyday request of the history benchmark issues, by its label."""
    requests = {
        **bench_history.everyday_paths("managing-bias", sid),
        **{page: page for page in MORE_PAGES},
    }
    counts = {}
    for label, page in requests.items():
        with counted() as statements:
            response = await client.get(page)
        assert response.status_code == 200, (page, response.text[:300])
        counts[label] = len(statements)
    body = bench_history.registration_body(n, "in_person")
    with counted() as statements:
        response = await client.post(f"/api/sessions/{sid}/registrations", json=body)
    assert response.status_code == 201, response.text[:300]
    counts[bench_history.REGISTER] = len(statements)
    return counts


async def test_history_pages_issue_the_same_queries_whatever_the_history(
    client: httpx.AsyncClient, db: Database
) -> None:
    await sign_in(client, db)
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    upcoming = await catalog.create_session(db, "managing-bias", session_body(in_person=10))
    await add_history(db, PAST_PAGE_SIZE + 2)  # enough for a second page
    small = await statements_per_request(client, upcoming.id, 1)
    await add_history(db, 2 * PAST_PAGE_SIZE, people=10, mails=20)
    large = await statements_per_request(client, upcoming.id, 2)
    assert large == small
    # The sign-in check (a row per sign-in, issue 9) is one of them.
    assert max(large.values()) <= 14


async def test_past_sessions_are_paged_newest_first_with_upcoming_on_top(
    client: httpx.AsyncClient, db: Database
) -> None:
    await sign_in(client, db)
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    upcoming = await catalog.create_session(db, "managing-bias", session_body(in_person=10))
    await add_history(db, PAST_PAGE_SIZE + 3, people=1, mails=1)
    async with db.read() as conn:
        past_ids = (
            (
                await conn.execute(
                    select(TrainingSession.id)
                    .where(TrainingSession.id != upcoming.id)
                    .order_by(TrainingSession.starts_at.desc())
                )
            )
            .scalars()
            .all()
        )

    def listed(page: str) -> list[int]:
        return [int(i) for i in re.findall(r'href="/admin/sessions/(\d+)"', page)]

    for base in ("/admin", "/admin/courses/managing-bias"):
        first = (await client.get(base)).text
        second = (await client.get(f"{base}?past=2")).text
        assert listed(first)[0] == upcoming.id  # upcoming first
        assert 'href="?past=2#past"' in first and 'href="?past=3#past"' not in second
        seen = [i for i in listed(first) if i != upcoming.id] + [
            i for i in listed(second) if i != upcoming.id
        ]
        assert seen == list(past_ids)  # every past session once, newest first


async def test_outbox_pages_go_back_through_sent_mail(
    client: httpx.AsyncClient, db: Database
) -> None:
    await sign_in(client, db)
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    sent = PAGE_SIZE + 5  # two pages
    await add_history(db, 1, people=1, mails=sent)
    first = (await client.get("/admin/outbox?status=sent")).text
    match = re.search(r"before=(\d+)", first)
    assert match and f"Sent ({sent})" in first
    second = (await client.get(f"/admin/outbox?status=sent&before={match.group(1)}")).text
    rows = re.findall(r'href="/admin/outbox/(\d+)"', first) + re.findall(
        r'href="/admin/outbox/(\d+)"', second
    )
    assert len(rows) == len(set(rows)) == sent


async def test_outbox_page_reads_what_it_shows_and_has_one_form(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A page of sent mail: no payloads or copies read, one CSRF form whatever its rows."""
    await sign_in(client, db)
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    await add_history(db, 1, people=1, mails=PAGE_SIZE + 1)
    with counted() as statements:
        page = (await client.get("/admin/outbox?status=sent")).text
    listing = [s for s in statements if "FROM messages LEFT OUTER JOIN" in s]
    assert len(listing) == 1 and "sent_copy" not in listing[0] and "payload" not in listing[0]
    assert page.count('name="csrf_token"') == 2  # the page's resend form and sign-out's
    buttons = re.findall(
        r'form="resend" formaction="(/admin/outbox/\d+/resend\?status=sent)"', page
    )
    assert len(buttons) == PAGE_SIZE
    csrf = re.search(
        r'form method="post" id="resend"[^>]*><input type="hidden" name="csrf_token" value="([^"]+)"',
        page,
    )
    assert csrf
    resent = await client.post(buttons[0], data={"csrf_token": csrf.group(1)})
    assert resent.status_code == 303
    async with db.read() as conn:
        status = (
            await conn.execute(
                select(Message.status).where(Message.id == int(buttons[0].split("/")[3]))
            )
        ).scalar_one()
    assert status == MessageStatus.PENDING
