"""The coordinator console's forms, driven over HTTP as a browser without script would.

Batch (rows and CSV, preview, one submit, mail read back from a real SMTP sink), holds (create
with field errors, name into, release), substitute and cancel (each after a confirmation page).
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlalchemy import func, select

from scheduler.db import Database
from scheduler.models import Registration
from tests.helpers import future_local, make_course, make_session, person
from tests.notifications.mailbox import by_recipient, kinds, text_of
from tests.test_agencies import make_agency
from tests.test_batch import deliver
from tests.web.agency_client import sign_in_coordinator

COORD = "coord@alpha.example"


class _Forms(HTMLParser):
    """The fields of every form on a page, by the form's action (hidden and typed alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and a.get("name") and a.get("type") != "file":
            self.forms[-1][1][a["name"]] = a.get("value", "")


def form_fields(page: str, action: str, index: int = 0) -> dict[str, str]:
    parser = _Forms()
    parser.feed(page)
    found = [fields for act, fields in parser.forms if act == action]
    assert found, f"no form posting to {action}"
    return dict(found[index])


def rows(*people: dict[str, str]) -> dict[str, str]:
    data = {"row_count": str(len(people))}
    for i, p in enumerate(people):
        for key, value in p.items():
            data[f"{key}_{i}"] = value
    return data


async def console(client: httpx.AsyncClient, db: Database, headers: dict[str, str]) -> Any:
    agency = await make_agency(client, headers, name="Alpha PD")
    await make_course(client, headers)
    session = await make_session(client, headers, in_person=4)
    csrf = await sign_in_coordinator(client, db, headers, agency["id"], COORD)
    return agency, session, csrf


async def count_registrations(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Registration))).scalar())


async def test_batch_rows_preview_then_one_submit(client, admin_headers, db, settings, smtp_server):
    _, session, csrf = await console(client, db, admin_headers)
    sid = session["id"]
    base = f"/agency/sessions/{sid}/batch"
    already = await client.post(f"/api/sessions/{sid}/registrations", json=person(9))
    assert already.status_code == 201
    await deliver(db, settings, smtp_server)  # the invitation and that confirmation

    page = await client.get(base)
    assert page.status_code == 200 and page.text.count("<legend>Officer ") == 5
    # "Add rows" keeps what was typed and adds five more.
    more = await client.post(
        base,
        data={
            "csrf_token": csrf,
            "action": "add_rows",
            "attendance": "in_person",
            **rows({"name": "Ann Able", "email": "ann@alpha.example"}),
        },
    )
    assert more.status_code == 200 and more.text.count("<legend>Officer ") == 6
    assert 'value="ann@alpha.example"' in more.text

    # Nothing typed: a clear error, the form again.
    empty = await client.post(
        base, data={"csrf_token": csrf, "action": "preview", "attendance": "in_person"}
    )
    assert empty.status_code == 422 and "enter at least one officer" in empty.text

    people = [
        {"name": "Ann Able", "email": "ann@alpha.example", "rank": "Officer"},
        {"name": "Ben Baker", "email": "ben@alpha.example", "post_id": "IL-1", "post_state": "IL"},
        {"name": "Cat Cole", "email": "cat@alpha.example"},
        {"name": "Dan Dye", "email": "dan@alpha.example"},
        {"name": "Eve Easton", "email": "eve@alpha.example"},
        {"name": "Ann Again", "email": "ANN@alpha.example"},  # duplicate in the batch
        {"name": "No Mail", "email": "not-an-address"},  # invalid email
        {"name": "Officer 9", "email": "officer9@example.org"},  # already registered
        {"name": "Far Away", "email": "far@alpha.example", "post_id": "X1", "post_state": "ZZ"},
    ]
    preview = await client.post(
        base,
        data={"csrf_token": csrf, "action": "preview", "attendance": "in_person", **rows(*people)},
    )
    assert preview.status_code == 200, preview.text
    assert "4 rows have a problem" in preview.text
    assert "appears twice in this batch" in preview.text
    assert "already has an active registration in this session" in preview.text
    assert "post state:" in preview.text
    assert await count_registrations(db) == 1  # the preview wrote nothing

    carried = form_fields(preview.text, f"{base}/register")
    assert carried["row_count"] == "9" and carried["email_6"] == "not-an-address"
    # "Change the rows" goes back to the form with every row as typed.
    back = await client.post(base, data=form_fields(preview.text, base))
    assert back.status_code == 200 and 'value="far@alpha.example"' in back.text

    result = await client.post(f"{base}/register", data=carried)
    assert result.status_code == 200, result.text
    # Three seats were left: three confirmed, two waitlisted, four errors, in row order.
    assert "3 confirmed, 2 waitlisted, 4 not registered" in result.text
    assert result.text.count("Confirmed</span>") == 3
    assert "Waitlisted, position 2" in result.text

    received = await deliver(db, settings, smtp_server)
    mailbox = by_recipient(received)
    officers = {p["email"] for p in people[:5]}
    assert set(mailbox) == officers | {COORD}
    assert all(len(mails) == 1 for mails in mailbox.values())
    assert Counter(kinds(received)) == {"confirmation": 3, "waitlisted": 2, "batch_summary": 1}
    assert "not-an-address" in text_of(mailbox[COORD][0])


async def test_csv_upload_checks_columns_and_size(client, admin_headers, db):
    _, session, csrf = await console(client, db, admin_headers)
    url = f"/agency/sessions/{session['id']}/batch/upload"
    form = {"csrf_token": csrf, "attendance": "in_person"}

    def upload(text: str) -> Any:
        return client.post(url, data=form, files={"file": ("squad.csv", text.encode(), "text/csv")})

    wrong = await upload("full_name,mail\nAnn,ann@alpha.example\n")
    assert wrong.status_code == 422
    assert "must name the columns name,email,rank,post_id,post_state" in wrong.text
    assert "unknown: full_name, mail" in wrong.text and "missing: name, email" in wrong.text

    huge = "name,email\n" + "".join(f"Officer {n},o{n}@alpha.example\n" for n in range(10_000))
    assert len(huge.encode()) > settings_limit()
    refused = await upload(huge)
    assert refused.status_code == 422
    assert "has 10000 officers; at most 200 fit in one batch" in refused.text
    assert await count_registrations(db) == 0
    # Only the console's upload posts get the larger limit; the API keeps its own.
    api = await client.post(
        f"/api/sessions/{session['id']}/registrations/batch",
        content=huge.encode(),
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert api.status_code == 413

    missing = await client.post(url, data=form)
    assert missing.status_code == 422 and "Choose a CSV file" in missing.text

    good = await upload(
        "\ufeffName,Email,Rank,post_id,post_state\n"
        "Ann Able,ann@alpha.example,Sergeant,IL-7,IL\n\n"
        "Ben Baker,ben@alpha.example,,,\n"
    )
    assert good.status_code == 200, good.text
    assert "Check 2 officers" in good.text and "Every row looks right" in good.text
    assert (
        form_fields(good.text, f"/agency/sessions/{session['id']}/batch/register")["rank_0"]
        == "Sergeant"
    )


def settings_limit() -> int:
    from scheduler.config import Settings

    return Settings().max_body_bytes


async def test_holds_from_the_console(client, admin_headers, db, settings):
    _, session, csrf = await console(client, db, admin_headers)
    sid = session["id"]
    url = f"/agency/sessions/{sid}/holds/new"
    assert (await client.get(url)).status_code == 200
    body = {"csrf_token": csrf, "attendance": "in_person", "seats": "5", "release_at": ""}
    too_many = await client.post(url, data=body)
    assert too_many.status_code == 409
    assert "the pool has 4 free seats; a hold of 5 does not fit" in too_many.text.lower()
    assert 'aria-invalid="true" aria-describedby="seats-error"' in too_many.text
    assert 'value="5"' in too_many.text  # what was typed stays
    late = future_local(30).isoformat(timespec="minutes")
    after_start = await client.post(url, data={**body, "seats": "2", "release_at": late})
    assert after_start.status_code == 422
    assert "must not be after the session starts" in after_start.text
    assert f'value="{late}"' in after_start.text

    made = await client.post(url, data={**body, "seats": "3"})
    assert made.status_code == 303 and made.headers["location"] == "/agency/holds"
    listed = await client.get("/agency/holds")
    assert "Holding 3 seats" in listed.text and "Name an officer" in listed.text
    seats = (await client.get(f"/api/sessions/{sid}")).json()["seats"]["in_person"]
    assert seats["held"] == 3
    [hid] = await hold_ids(db)

    name_url = f"/agency/holds/{hid}/name"
    bad = await client.post(name_url, data={"csrf_token": csrf, "name": "Ann", "email": "nope"})
    assert bad.status_code == 422 and 'value="Ann"' in bad.text
    named = await client.post(
        name_url, data={"csrf_token": csrf, "name": "Ann Able", "email": "ann@alpha.example"}
    )
    assert named.status_code == 303
    seats = (await client.get(f"/api/sessions/{sid}")).json()["seats"]["in_person"]
    assert (seats["confirmed"], seats["held"]) == (1, 2)

    assert "1: Ann Able" in (await client.get("/agency/holds")).text
    confirm = await client.get(f"/agency/holds/{hid}/release")
    assert confirm.status_code == 200 and "Yes, release 2 seats" in confirm.text
    released = await client.post(
        f"/agency/holds/{hid}/release", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert released.status_code == 303
    seats = (await client.get(f"/api/sessions/{sid}")).json()["seats"]["in_person"]
    assert (seats["confirmed"], seats["held"], seats["available"]) == (1, 0, 3)
    # Without the CSRF token nothing happens.
    refused = await client.post(url, data={**body, "csrf_token": "forged", "seats": "1"})
    assert refused.status_code == 403


async def hold_ids(db: Database) -> list[int]:
    from scheduler.models import Hold

    async with db.read() as conn:
        return list((await conn.scalars(select(Hold.id).order_by(Hold.id))).all())


async def test_substitute_and_cancel_after_confirmation(
    client, admin_headers, db, settings, smtp_server
):
    agency, session, csrf = await console(client, db, admin_headers)
    sid = session["id"]
    made = await client.post(
        f"/api/sessions/{sid}/registrations", json={**person(1), "agency_id": agency["id"]}
    )
    reg = made.json()
    await deliver(db, settings, smtp_server)
    listing = await client.get("/agency/registrations")
    assert f"/agency/registrations/{reg['id']}/substitute" in listing.text

    url = f"/agency/registrations/{reg['id']}/substitute"
    assert "Substitute Officer 1" in (await client.get(url)).text
    new = {
        "name": "Zed Zane",
        "email": "zed@alpha.example",
        "rank": "",
        "post_id": "",
        "post_state": "",
    }
    wrong = await client.post(url, data={"csrf_token": csrf, "step": "check", **new, "email": "x"})
    assert wrong.status_code == 422 and 'value="Zed Zane"' in wrong.text
    check = await client.post(url, data={"csrf_token": csrf, "step": "check", **new})
    assert check.status_code == 200 and "Pass Officer 1's seat to Zed Zane?" in check.text
    assert (await client.get(f"/api/registrations/{reg['token']}")).json()["status"] == "confirmed"
    back = await client.post(url, data=form_fields(check.text, url, index=1))
    assert back.status_code == 200 and 'value="zed@alpha.example"' in back.text
    done = await client.post(url, data=form_fields(check.text, url))
    assert done.status_code == 303
    assert (await client.get(f"/api/registrations/{reg['token']}")).json()["status"] == "cancelled"
    received = await deliver(db, settings, smtp_server)
    assert sorted(kinds(received)) == ["confirmation", "registration_cancelled"]

    async with db.read() as conn:
        zed = (
            await conn.execute(
                select(Registration).where(Registration.email == "zed@alpha.example")
            )
        ).one()
    assert zed.status == "confirmed"
    cancel_url = f"/agency/registrations/{zed.id}/cancel"
    page = await client.get(cancel_url)
    assert page.status_code == 200 and "Yes, cancel this registration" in page.text
    cancelled = await client.post(cancel_url, data={"csrf_token": csrf, "confirm": "yes"})
    assert cancelled.status_code == 303
    assert (await client.get(f"/api/registrations/{zed.token}")).json()["status"] == "cancelled"


async def test_console_forms_keep_each_attribute_separate(client, admin_headers, db):
    from tests.web.test_form_markup import check_page

    agency, session, csrf = await console(client, db, admin_headers)
    sid = session["id"]
    made = await client.post(
        f"/api/sessions/{sid}/registrations", json={**person(1), "agency_id": agency["id"]}
    )
    hold = await client.post(
        f"/api/sessions/{sid}/holds",
        json={"agency_id": agency["id"], "attendance": "in_person", "seats": 1},
        headers=admin_headers,
    )
    reg, hid = made.json()["id"], hold.json()["id"]
    for url in [
        f"/agency/sessions/{sid}/batch",
        f"/agency/sessions/{sid}/holds/new",
        f"/agency/holds/{hid}/name",
        f"/agency/holds/{hid}/release",
        f"/agency/registrations/{reg}/substitute",
        f"/agency/registrations/{reg}/cancel",
        "/agency/calendar",
    ]:
        page = await client.get(url)
        assert page.status_code == 200, url
        check_page(url, page.text)
    refused = await client.post(
        f"/agency/sessions/{sid}/holds/new", data={"csrf_token": csrf, "seats": "x"}
    )
    assert refused.status_code == 422
    check_page("refused hold form", refused.text)
