"""Admin coordinator pages through the app, on both databases: invite with one email naming
every agency, the list, disable and enable (sign-in ends at once), access requests approved or
refused, and bad input that keeps what was typed."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from notifications.models import Message
from scheduler import sign_in
from scheduler.models import Account
from tests.test_agencies import make_agency
from tests.web.agency_client import follow_link, last_link
from tests.web.page_client import post_form
from tests.web.page_client import sign_in as admin_sign_in


async def invitations(db, recipient: str) -> list[dict]:
    async with db.read() as conn:
        rows = await conn.scalars(
            select(Message.payload).where(
                Message.kind == "coordinator_invitation", Message.recipient == recipient
            )
        )
        return list(rows.all())


async def test_invite_finds_agencies_without_script_and_sends_one_email(
    client, db, admin_headers, app
):
    csrf = await admin_sign_in(client, db)
    a = await make_agency(client, admin_headers, name="Springfield Police Department")
    b = await make_agency(client, admin_headers, name="Springfield Campus Police", type="campus")
    page = await client.get(f"/admin/coordinators/invite?agency_id={a['id']}")
    assert f'id="agency-{a["id"]}" name="agency_id" value="{a["id"]}" checked' in page.text

    typed = {"name": "Casey <Coordinator>", "email": "casey@pd.example.org", "q": "campus"}
    found = await post_form(
        client,
        "/admin/coordinators/invite",
        {**typed, "agency_id": str(a["id"]), "action": "search"},
        csrf,
    )
    assert found.status_code == 200
    assert 'value="Casey &lt;Coordinator&gt;"' in found.text  # what was typed stays
    assert f'value="{a["id"]}" checked' in found.text and f'value="{b["id"]}"' in found.text

    none = await post_form(client, "/admin/coordinators/invite", {**typed, "action": "x"}, csrf)
    assert none.status_code == 422 and "tick at least one agency" in none.text
    bad = await post_form(
        client,
        "/admin/coordinators/invite",
        {"name": "", "email": "not-an-address", "agency_id": str(a["id"])},
        csrf,
    )
    assert bad.status_code == 422
    assert "is not a valid email address" in bad.text and "is required" in bad.text
    assert await invitations(db, "casey@pd.example.org") == []

    sent = await client.post(
        "/admin/coordinators/invite",
        data={
            **typed,
            "agency_id": [str(a["id"]), str(b["id"])],
            "action": "invite",
            "csrf_token": csrf,
        },
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/coordinators"
    [payload] = await invitations(db, "casey@pd.example.org")
    assert payload["agency"] == "Springfield Police Department, Springfield Campus Police"
    listing = (await client.get("/admin/coordinators")).text
    assert "Invitation sent to casey@pd.example.org" in listing
    assert "casey@pd.example.org" in listing and "Springfield Campus Police" in listing

    # The invited coordinator signs in (their own browser) and sees the console.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        signed = await follow_link(browser, await last_link(db, "casey@pd.example.org"))
        assert signed.status_code == 303
        assert (await browser.get("/agency")).status_code == 200

        async with db.read() as conn:
            account_id = (
                await conn.execute(
                    select(Account.id).where(Account.email == "casey@pd.example.org")
                )
            ).scalar_one()
        off = await post_form(client, f"/admin/coordinators/{account_id}/disable", {}, csrf)
        assert off.status_code == 303
        assert "can no longer sign in" in (await client.get("/admin/coordinators")).text
        # Their open sign-in ends at once, and no new link goes out.
        kept = await browser.get("/agency", follow_redirects=False)
        assert kept.status_code == 303
        assert await sign_in.request_link(db, "casey@pd.example.org") is False

        on = await post_form(client, f"/admin/coordinators/{account_id}/enable", {}, csrf)
        assert on.status_code == 303
        assert await sign_in.request_link(db, "casey@pd.example.org") is True

    assert (
        await post_form(client, "/admin/coordinators/999999/disable", {}, csrf)
    ).status_code == 404
    refused = await client.post(f"/admin/coordinators/{account_id}/disable", data={})
    assert refused.status_code == 403  # no CSRF token


async def test_access_requests_are_approved_or_refused(client, db, admin_headers):
    csrf = await admin_sign_in(client, db)
    agency = await make_agency(client, admin_headers)
    for who in ("robin", "sam"):
        await sign_in.request_access(
            db, {"name": who.title(), "email": f"{who}@pd.example.org", "agency_id": agency["id"]}
        )
    page = (await client.get("/admin/coordinators")).text
    assert "Access requests (2)" in page and "robin@pd.example.org" in page
    async with db.read() as conn:
        ids = dict(
            (
                await conn.execute(
                    select(Account.email, Account.id).where(Account.role == "coordinator")
                )
            ).all()
        )
    robin, sam = ids["robin@pd.example.org"], ids["sam@pd.example.org"]
    # A pending request cannot be disabled: it is answered.
    wrong = await post_form(client, f"/admin/coordinators/{robin}/disable", {}, csrf)
    assert wrong.status_code == 303
    assert "approve or refuse it" in (await client.get("/admin/coordinators")).text

    approved = await post_form(client, f"/admin/coordinators/{robin}/approve", {}, csrf)
    assert approved.status_code == 303
    [payload] = await invitations(db, "robin@pd.example.org")
    assert payload["agency"] == "Springfield Police Department" and payload["path"]
    again = await post_form(client, f"/admin/coordinators/{robin}/approve", {}, csrf)
    assert again.status_code == 303
    assert len(await invitations(db, "robin@pd.example.org")) == 1  # answered once

    refused = await post_form(client, f"/admin/coordinators/{sam}/refuse", {}, csrf)
    assert refused.status_code == 303
    page = (await client.get("/admin/coordinators")).text
    assert "Access requests (0)" in page and "sam@pd.example.org" not in page
    assert await invitations(db, "sam@pd.example.org") == []
    # Refused, they may ask again.
    await sign_in.request_access(
        db, {"name": "Sam", "email": "sam@pd.example.org", "agency_id": agency["id"]}
    )
    assert "Access requests (1)" in (await client.get("/admin/coordinators")).text
    assert (
        await post_form(client, f"/admin/coordinators/{robin}/refuse", {}, csrf)
    ).status_code == 303
    assert "only a pending request" in (await client.get("/admin/coordinators")).text
