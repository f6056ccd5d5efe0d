"""Invariant 10: a coordinator of agency A sees and changes nothing of agency B (404)."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from scheduler.agencies import get_agency
from scheduler.app import create_app
from tests.helpers import make_course, make_session, person
from tests.test_agencies import make_agency
from tests.web.agency_client import sign_in_coordinator


async def two_agencies(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    a = await make_agency(client, headers, name="Alpha PD")
    b = await make_agency(client, headers, name="Bravo County Sheriff", type="sheriff")
    await make_course(client, headers)
    session = await make_session(client, headers, in_person=10)
    sid = session["id"]
    url = f"/api/sessions/{sid}/registrations"
    reg_a = (await client.post(url, json={**person(1), "agency_id": a["id"]})).json()
    reg_b = (await client.post(url, json={**person(2), "agency_id": b["id"]})).json()
    hold_body = {"attendance": "in_person", "seats": 2}
    hold_b = (
        await client.post(
            f"/api/sessions/{sid}/holds", json={**hold_body, "agency_id": b["id"]}, headers=headers
        )
    ).json()
    return {"a": a, "b": b, "sid": sid, "reg_a": reg_a, "reg_b": reg_b, "hold_b": hold_b}


async def test_a_coordinator_gets_404_for_everything_of_another_agency(client, admin_headers, db):
    w = await two_agencies(client, admin_headers)
    csrf = await sign_in_coordinator(client, db, admin_headers, w["a"]["id"], "a@alpha.example")
    h = {"X-CSRF-Token": csrf}
    sid, b, hold_b, reg_b = w["sid"], w["b"]["id"], w["hold_b"]["id"], w["reg_b"]["id"]
    somebody = {"name": "Someone Else", "email": "else@example.org"}
    calls = [
        (
            "POST",
            f"/api/sessions/{sid}/holds",
            {"agency_id": b, "attendance": "in_person", "seats": 1},
        ),
        ("GET", f"/api/holds/{hold_b}", None),
        ("DELETE", f"/api/holds/{hold_b}", None),
        ("POST", f"/api/holds/{hold_b}/registrations", somebody),
        (
            "POST",
            f"/api/sessions/{sid}/registrations/batch",
            {"agency_id": b, "attendance": "in_person", "people": [somebody]},
        ),
        ("POST", f"/api/registrations/{reg_b}/transfer", somebody),
        ("POST", f"/api/registrations/{reg_b}/move", {"session_id": sid}),
        ("POST", f"/api/registrations/{reg_b}/cancel", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code == 404, (method, path, response.text)
    # Nothing of B changed.
    got = await client.get(f"/api/holds/{hold_b}", headers=admin_headers)
    assert got.json()["status"] == "active" and got.json()["remaining"] == 2
    b_reg = (await client.get(f"/api/registrations/{w['reg_b']['token']}")).json()
    assert b_reg["status"] == "confirmed"

    # The console lists only A's people, on the page and in the CSV.
    page = await client.get("/agency/registrations")
    assert "officer1@example.org" in page.text and "officer2@example.org" not in page.text
    exported = await client.get("/agency/registrations?format=csv")
    assert "officer1@example.org" in exported.text and "officer2@example.org" not in exported.text
    home = await client.get("/agency")
    assert "Alpha PD" in home.text and "Bravo" not in home.text

    # Their own agency works, with the CSRF header.
    own = await client.post(
        f"/api/sessions/{sid}/holds",
        json={"agency_id": w["a"]["id"], "attendance": "in_person", "seats": 1},
        headers=h,
    )
    assert own.status_code == 201, own.text
    cancel_own = await client.post(f"/api/registrations/{w['reg_a']['id']}/cancel", headers=h)
    assert cancel_own.status_code == 200


async def test_a_cookie_change_without_the_csrf_header_is_refused(client, admin_headers, db):
    w = await two_agencies(client, admin_headers)
    await sign_in_coordinator(client, db, admin_headers, w["a"]["id"], "a@alpha.example")
    response = await client.post(
        f"/api/sessions/{w['sid']}/holds",
        json={"agency_id": w["a"]["id"], "attendance": "in_person", "seats": 1},
    )
    assert response.status_code == 401


async def test_admin_only_routes_refuse_a_coordinator(client, admin_headers, db):
    w = await two_agencies(client, admin_headers)
    csrf = await sign_in_coordinator(client, db, admin_headers, w["a"]["id"], "a@alpha.example")
    h = {"X-CSRF-Token": csrf}
    for method, path in [
        ("PATCH", f"/api/agencies/{w['a']['id']}"),
        ("POST", f"/api/agencies/{w['b']['id']}/coordinators"),
        ("GET", "/api/registrations?email=officer2@example.org"),
    ]:
        response = await client.request(method, path, json={"name": "X"}, headers=h)
        assert response.status_code == 401, (method, path)


async def test_every_console_form_of_another_agency_answers_404(
    settings, client, admin_headers, db
):
    """Each console route, GET and POST, tried by A's coordinator on B's hold, registration and
    agency id: 404, and nothing of B changed."""
    w = await two_agencies(client, admin_headers)
    csrf = await sign_in_coordinator(client, db, admin_headers, w["a"]["id"], "a@alpha.example")
    sid, b, hold_b, reg_b = w["sid"], w["b"]["id"], w["hold_b"]["id"], w["reg_b"]["id"]
    someone = {"name": "Someone Else", "email": "else@example.org"}
    as_b = {"csrf_token": csrf, "agency_id": str(b), "attendance": "in_person"}
    row = {"row_count": "1", "name_0": "Someone Else", "email_0": "else@example.org"}
    ids = {"session_id": sid, "hold_id": hold_b, "registration_id": reg_b, "b": b}
    calls: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", "/agency/sessions/{session_id}/batch?agency_id={b}", None),
        ("POST", "/agency/sessions/{session_id}/batch", {**as_b, "action": "preview", **row}),
        ("POST", "/agency/sessions/{session_id}/batch/register", {**as_b, **row}),
        ("GET", "/agency/sessions/{session_id}/holds/new?agency_id={b}", None),
        ("POST", "/agency/sessions/{session_id}/holds/new", {**as_b, "seats": "1"}),
        ("GET", "/agency/holds/{hold_id}/name", None),
        ("POST", "/agency/holds/{hold_id}/name", {"csrf_token": csrf, **someone}),
        ("GET", "/agency/holds/{hold_id}/release", None),
        ("POST", "/agency/holds/{hold_id}/release", {"csrf_token": csrf, "confirm": "yes"}),
        ("GET", "/agency/registrations/{registration_id}/substitute", None),
        (
            "POST",
            "/agency/registrations/{registration_id}/substitute",
            {"csrf_token": csrf, "step": "confirm", **someone},
        ),
        ("GET", "/agency/registrations/{registration_id}/cancel", None),
        (
            "POST",
            "/agency/registrations/{registration_id}/cancel",
            {"csrf_token": csrf, "confirm": "yes"},
        ),
        ("POST", "/agency/calendar/new-url", {"csrf_token": csrf, "agency_id": str(b)}),
    ]
    for method, template, form in calls:
        path = template.format(**ids)
        response = await client.request(method, path, data=form)
        assert response.status_code == 404, (method, path, response.status_code)
    upload = await client.post(
        f"/agency/sessions/{sid}/batch/upload",
        data=as_b,
        files={"file": ("s.csv", b"name,email\nSomeone Else,else@example.org\n", "text/csv")},
    )
    assert upload.status_code == 404
    # Every console route that acts on something is in the list above (or is the upload).
    tried = {(m, t.split("?")[0]) for m, t, _ in calls} | {
        ("POST", "/agency/sessions/{session_id}/batch/upload")
    }
    own_pages = {"/agency", "/agency/registrations", "/agency/holds", "/agency/calendar"}
    console_routes = {
        (method, route.path)
        for route in create_app(settings).routes
        if isinstance(route, Route)
        and route.path.startswith("/agency/")
        and not route.path.startswith(("/agency/login", "/agency/logout", "/agency/request-access"))
        for method in (route.methods or ())
        if method != "HEAD" and route.path not in own_pages
    }
    assert console_routes - tried == set()

    # Nothing of B changed, and B's people and holds are on none of A's pages.
    got = await client.get(f"/api/holds/{hold_b}", headers=admin_headers)
    assert got.json()["status"] == "active" and got.json()["remaining"] == 2
    assert (await client.get(f"/api/registrations/{w['reg_b']['token']}")).json()[
        "status"
    ] == "confirmed"
    roster = await client.get(f"/api/sessions/{sid}/registrations", headers=admin_headers)
    assert "else@example.org" not in roster.text
    for page in ("/agency/holds", "/agency/calendar", "/agency/registrations"):
        shown = await client.get(page)
        assert shown.status_code == 200
        assert "Bravo" not in shown.text and "officer2@example.org" not in shown.text
    async with db.read() as conn:
        b_token = (await get_agency(conn, b)).feed_token
    assert b_token not in (await client.get("/agency/calendar")).text
