"""Security of the pages: sign-in walls, CSRF, escaping, CSV injection, token isolation, headers."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import httpx
import time_machine
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from starlette.routing import Route

from notifications.models import Message
from scheduler.app import create_app
from scheduler.models import (
    Account,
    Agency,
    ApiToken,
    Course,
    Hold,
    Registration,
    SeatPool,
    TrainingSession,
)
from scheduler.web import admin
from tests.web.page_client import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_from,
    make_admin,
    person_form,
    post_form,
    session_form,
    sign_in,
)

XSS_NAMES = ("<script>alert('x')</script>", '"><img src=x onerror=alert(1)>')
FORMULAS = ('=HYPERLINK("http://evil.example")', "+1+2", "-3+4", "@SUM(A1:A2)")
PATH_VALUES = {
    "slug": "managing-bias",
    "session_id": "1",
    "registration_id": "1",
    "message_id": "1",
    "token_id": "1",
    "instructor_id": "1",
    "venue_id": "1",
    "agency_id": "1",
    "import_id": "1",
    "account_id": "1",
    "hold_id": "1",
}


async def snapshot(db) -> dict[str, list]:
    """Every row a form could change, to prove a refused post changed nothing."""
    tables = {
        "courses": Course,
        "sessions": TrainingSession,
        "pools": SeatPool,
        "registrations": Registration,
        "messages": Message,
        "tokens": ApiToken,
        "agencies": Agency,
        "accounts": Account,
        "holds": Hold,
    }
    async with db.read() as conn:
        return {
            name: [tuple(row) for row in (await conn.execute(select(table))).all()]
            for name, table in tables.items()
        }


async def seeded(client, db) -> tuple[str, int, list[str]]:
    """An admin session, a hybrid session with two people in person and one waiting."""
    csrf = await sign_in(client, db)
    course = {"slug": "managing-bias", "title": "Managing Bias", "delivery": ["in_person"]}
    assert (await post_form(client, "/admin/courses/new", course, csrf)).status_code == 303
    made = await post_form(
        client, "/admin/courses/managing-bias/sessions/new", session_form(in_person="2"), csrf
    )
    session_id = int(made.headers["location"].rsplit("/", 1)[1])
    tokens = []
    for n in (1, 2, 3):
        done = await post_form(client, f"/sessions/{session_id}/register", person_form(n), csrf)
        tokens.append(done.headers["location"].split("/")[2])
    await post_form(client, "/admin/tokens", {"name": "t"}, csrf)
    return csrf, session_id, tokens


def admin_routes() -> list[tuple[str, str]]:
    found = []
    for route in admin.routes:
        assert isinstance(route, Route)
        if route.path == "/admin/login":
            continue
        path = re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], route.path)
        found.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return found


ADMIN_ROUTES = admin_routes()


async def test_every_admin_page_and_form_sends_anonymous_visitors_to_login(client, db):
    await seeded(client, db)
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with anonymous:
        assert len(ADMIN_ROUTES) >= 20
        for method, path in ADMIN_ROUTES:
            response = await anonymous.request(method, path, data={"csrf_token": "x"})
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/admin/login"), (method, path)
        api = await anonymous.post("/api/courses", json={"slug": "x", "title": "X"})
        assert api.status_code == 401


async def test_login_redirects_only_inside_admin_and_renews_the_csrf_token(client, db):
    await make_admin(db)
    before = csrf_from((await client.get("/admin/login?next=//evil.example/")).text)
    response = await client.post(
        "/admin/login",
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": before,
            "next": "//evil.example/admin",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    after = csrf_from((await client.get("/admin")).text)
    assert after != before
    no_csrf = await client.post("/admin/login", data={"email": ADMIN_EMAIL, "password": "x"})
    assert no_csrf.status_code == 403


def changing_forms(session_id: int, tokens: list[str]) -> list[tuple[str, dict[str, str]]]:
    good_session = session_form(in_person="9", starts="2031-03-06T09:00", ends="2031-03-06T10:00")
    return [
        ("/admin/courses/new", {"slug": "other", "title": "Other", "delivery": "in_person"}),
        ("/admin/courses/managing-bias", {"title": "Renamed", "delivery": "in_person"}),
        ("/admin/courses/managing-bias/sessions/new", session_form()),
        (f"/admin/sessions/{session_id}/edit", good_session),
        (f"/admin/sessions/{session_id}/cancel", {"reason": "x"}),
        ("/admin/registrations/1/cancel", {"confirm": "yes"}),
        ("/admin/registrations/3/promote", {}),
        ("/admin/registrations/1/outcome", {"outcome": "attended"}),
        ("/admin/outbox/1/resend", {}),
        ("/admin/tokens", {"name": "sneaky"}),
        ("/admin/tokens/1/revoke", {}),
        ("/admin/agencies/new", {"name": "X PD", "state": "IL", "type": "municipal"}),
        (
            "/admin/coordinators/invite",
            {"name": "C", "email": "c@pd.example.org", "agency_id": "1"},
        ),
        (f"/admin/sessions/{session_id}/add", person_form(8)),
        ("/admin/registrations/1/move", {"session_id": str(session_id)}),
        ("/admin/holds/1/release", {}),
        (f"/sessions/{session_id}/register", person_form(9)),
        (f"/registrations/{tokens[0]}/cancel", {"confirm": "yes"}),
    ]


async def test_forms_without_the_right_csrf_token_are_refused_and_change_nothing(client, db):
    _, session_id, tokens = await seeded(client, db)
    before = await snapshot(db)
    for token in (None, "", "wrong-token-0123456789abcdefghijklmnopqrstuvwxyz"):
        for url, data in changing_forms(session_id, tokens):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            response = await client.post(url, data=body)
            assert response.status_code == 403, (url, token)
            assert "Form expired" in response.text
    assert await snapshot(db) == before
    assert (await client.get("/admin")).status_code == 200  # still signed in


async def test_hostile_names_show_as_text_everywhere_and_csv_cells_are_neutralised(client, db):
    csrf, session_id, _ = await seeded(client, db)
    await post_form(
        client, f"/admin/sessions/{session_id}/edit", session_form(in_person="20"), csrf
    )
    tokens = []
    hostile = [*XSS_NAMES, *FORMULAS]
    for n, name in enumerate(hostile, start=10):
        done = await post_form(
            client,
            f"/sessions/{session_id}/register",
            person_form(n, name=name, agency=name, rank=name),
            csrf,
        )
        assert done.status_code == 303, done.text
        tokens.append(done.headers["location"].split("/")[2])
    pages = [
        await client.get(f"/admin/sessions/{session_id}"),
        *[await client.get(f"/registrations/{t}") for t in tokens],
        *[await client.get(f"/registrations/{t}/result") for t in tokens],
    ]
    for page in pages:
        assert page.status_code == 200
        for name in XSS_NAMES:
            assert name not in page.text
        # Escaped, a payload cannot open a tag: no page has any <script> or <img> but our own
        # static local-time script.
        text = page.text.replace('<script src="/static/localtime.js" defer></script>', "")
        assert "<script" not in text and "<img" not in text
    roster = pages[0].text
    assert "&lt;script&gt;alert(" in roster
    assert "&lt;img src=x onerror=alert(1)&gt;" in roster
    rows = list(
        csv.DictReader(
            io.StringIO((await client.get(f"/admin/sessions/{session_id}/roster.csv")).text)
        )
    )
    exported = {row["email"]: row for row in rows}
    for n, name in enumerate(hostile, start=10):
        row = exported[f"officer{n}@example.org"]
        for column in ("name", "agency", "rank"):
            if name[0] in "=+-@":
                assert row[column] == "'" + name
            else:
                assert row[column] == name
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


async def test_one_registration_token_cannot_read_or_cancel_another(client, db):
    csrf, _, tokens = await seeded(client, db)
    mine, theirs = tokens[0], tokens[1]
    page = (await client.get(f"/registrations/{mine}")).text
    assert "officer1@example.org" in page
    assert "officer2@example.org" not in page and "Officer 2" not in page
    forged = theirs[:-1] + ("A" if theirs[-1] != "A" else "B")
    assert (await client.get(f"/registrations/{forged}")).status_code == 404
    assert (await post_form(client, f"/registrations/{forged}/cancel", {}, csrf)).status_code == 404
    confirmed = {"confirm": "yes"}
    assert (
        await post_form(client, f"/registrations/{mine}/cancel", confirmed, csrf)
    ).status_code == 303
    async with db.read() as conn:
        statuses = dict((await conn.execute(select(Registration.token, Registration.status))).all())
    assert statuses[mine] == "cancelled"
    assert statuses[theirs] == "confirmed"
    # The cancelled seat went to the waitlisted third person, not to anyone else's token.
    assert statuses[tokens[2]] == "confirmed"


async def test_every_html_page_carries_the_security_headers_and_no_inline_code(client, db):
    _, session_id, tokens = await seeded(client, db)
    urls = [
        "/",
        "/courses/managing-bias",
        f"/registrations/{tokens[0]}",
        f"/registrations/{tokens[0]}/result",
        "/admin",
        "/admin/courses",
        "/admin/courses/new",
        "/admin/courses/managing-bias",
        "/admin/courses/managing-bias/sessions/new",
        f"/admin/sessions/{session_id}",
        f"/admin/sessions/{session_id}/edit",
        f"/admin/sessions/{session_id}/cancel",
        "/admin/outbox",
        "/admin/tokens",
        "/admin/registrations?q=officer",
        "/sessions",
        "/sessions?mode=bogus",
        "/registrations/lookup",
        "/courses/no-such-course",
    ]
    for url in urls:
        response = await client.get(url)
        assert response.headers["content-type"].startswith("text/html"), url
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
        # Script only from /static: every <script> has a src and no body.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
        assert response.text.count("<script") == len(scripts), url
        assert all(' src="/static/' in attrs and not body.strip() for attrs, body in scripts)
        assert "<style" not in response.text
        assert " style=" not in response.text
        for label_for in re.findall(r'<input id="([^"]+)"', response.text):
            assert f'for="{label_for}"' in response.text, (url, label_for)
    assert (await client.get(f"/registrations/{tokens[0]}")).headers["cache-control"] == "no-store"


async def test_session_cookie_is_httponly_lax_and_secure_behind_https(settings):
    for base_url, secure in (("http://testserver", False), ("https://training.example", True)):
        app = create_app(settings.with_(base_url=base_url))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
                cookie = (await c.get("/admin/login")).headers["set-cookie"].lower()
        assert cookie.startswith("scheduler_session=")
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert ("secure" in cookie.split("; ")) is secure


async def test_login_and_register_posts_are_rate_limited_with_an_html_429(settings, db):
    await make_admin(db)
    app = create_app(settings.with_(rate_limit=2))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            csrf = csrf_from((await c.get("/admin/login")).text)
            wrong = {"email": ADMIN_EMAIL, "password": "nope nope nope", "csrf_token": csrf}
            # One fixed instant: three posts that straddled a minute would count in two windows.
            minute = datetime.now(UTC).replace(second=5, microsecond=0) + timedelta(minutes=1)
            with time_machine.travel(minute, tick=False):
                statuses = [
                    (await c.post("/admin/login", data=wrong)).status_code for _ in range(3)
                ]
                limited = await c.post("/admin/login", data=wrong)
                # Registration counts in its own bucket: two tries pass the limiter, the third not.
                form = {**person_form(1), "csrf_token": csrf}
                tries = [
                    (await c.post("/sessions/999/register", data=form)).status_code for _ in "abc"
                ]
            assert statuses == [401, 401, 429]
            assert limited.headers["content-type"].startswith("text/html")
            assert int(limited.headers["retry-after"]) >= 1
            assert "Too many attempts" in limited.text
            assert tries == [404, 404, 429]
