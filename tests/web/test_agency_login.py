"""Coordinator sign-in by emailed link: single use, 15 minutes, rate limited, CSRF-safe, and
the same answer for known and unknown addresses."""

from __future__ import annotations

from datetime import timedelta

from notifications.models import utcnow
from scheduler import sign_in
from tests.test_agencies import make_agency
from tests.web.agency_client import follow_link, invite, last_link
from tests.web.page_client import csrf_from


async def test_an_invited_coordinator_signs_in_once(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    await invite(client, admin_headers, agency["id"], "Casey@PD.example.org")
    path = await last_link(db, "casey@pd.example.org")
    # Looking at the link (a mail scanner does) spends nothing.
    assert (await client.get(path)).status_code == 200
    signed = await follow_link(client, path)
    assert signed.status_code == 303 and signed.headers["location"] == "/agency"
    assert (await client.get("/agency")).status_code == 200

    client.cookies.clear()
    again = await client.get(path)
    assert again.status_code == 410
    # Posting it with a valid form token of a fresh page is refused too.
    page = await client.get("/agency/login")
    reused = await client.post(path, data={"csrf_token": csrf_from(page.text)})
    assert reused.status_code == 410
    assert (await client.get("/agency", follow_redirects=False)).status_code == 303


async def test_a_link_without_the_form_token_is_refused(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    await invite(client, admin_headers, agency["id"], "casey@pd.example.org")
    path = await last_link(db, "casey@pd.example.org")
    assert (await client.post(path, data={})).status_code == 403
    # The refused post spent nothing.
    assert (await follow_link(client, path)).status_code == 303


async def test_an_expired_link_is_refused(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    await invite(client, admin_headers, agency["id"], "casey@pd.example.org")
    token = (await last_link(db, "casey@pd.example.org")).rsplit("/", 1)[1]
    later = utcnow() + timedelta(minutes=15, seconds=1)
    assert not await sign_in.peek(db, token, now=later)
    try:
        await sign_in.redeem(db, token, now=later)
    except Exception as exc:
        assert type(exc).__name__ == "Gone"
    else:
        raise AssertionError("an expired link signed in")
    assert await sign_in.redeem(db, token)  # still good within its 15 minutes


async def test_asking_for_a_link_tells_nothing_and_is_limited(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    await invite(client, admin_headers, agency["id"], "casey@pd.example.org")  # link 1
    page = await client.get("/agency/login")
    token = csrf_from(page.text)
    known = await client.post(
        "/agency/login", data={"email": "casey@pd.example.org", "csrf_token": token}
    )
    unknown = await client.post(
        "/agency/login", data={"email": "nobody@pd.example.org", "csrf_token": token}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("casey", "X") == unknown.text.replace("nobody", "X")
    # Three links per account per 15 minutes: the invitation, the one above, one more.
    assert await sign_in.request_link(db, "casey@pd.example.org")
    assert not await sign_in.request_link(db, "casey@pd.example.org")
    assert await sign_in.request_link(
        db, "casey@pd.example.org", now=utcnow() + timedelta(minutes=16)
    )


async def test_asking_for_access_then_approval(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    page = await client.get("/agency/request-access")
    assert "Springfield Police Department" in page.text
    asked = await client.post(
        "/agency/request-access",
        data={
            "name": "Pat Lee",
            "email": "pat@pd.example.org",
            "agency_id": str(agency["id"]),
            "csrf_token": csrf_from(page.text),
        },
    )
    assert asked.status_code == 200
    # Pending: no link yet.
    assert not await sign_in.request_link(db, "pat@pd.example.org")
    listed = await client.get(f"/api/agencies/{agency['id']}/coordinators", headers=admin_headers)
    pending = listed.json()["coordinators"]
    assert [(c["email"], c["status"]) for c in pending] == [("pat@pd.example.org", "pending")]
    await sign_in.approve(db, pending[0]["id"])
    assert (await follow_link(client, await last_link(db, "pat@pd.example.org"))).status_code == 303


async def test_signing_out_ends_the_account_session(client, admin_headers, db):
    agency = await make_agency(client, admin_headers)
    await invite(client, admin_headers, agency["id"], "casey@pd.example.org")
    await follow_link(client, await last_link(db, "casey@pd.example.org"))
    cookie = dict(client.cookies)
    console = await client.get("/agency")
    out = await client.post("/agency/logout", data={"csrf_token": csrf_from(console.text)})
    assert out.status_code == 303
    # The old cookie, replayed, no longer signs anyone in.
    client.cookies.clear()
    client.cookies.update(cookie)
    assert (await client.get("/agency", follow_redirects=False)).status_code == 303
