"""Admin pages of the agency directory through the app, on both databases: list, search, pages,
create and edit with field errors, merge with its confirmation step, and the CSV import."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from scheduler import agency_import
from scheduler.models import Agency, AgencyImport, Registration
from tests.helpers import make_course, make_session
from tests.test_agencies import make_agency
from tests.web.page_client import post_form, sign_in

AGENCY = {"name": "Springfield Police Department", "state": "IL", "type": "municipal", "ori": ""}


async def agency_count(db) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Agency))).scalar_one())


async def test_create_edit_and_refusals_keep_what_was_typed(client, db):
    csrf = await sign_in(client, db)
    form = (await client.get("/admin/agencies/new")).text
    assert 'name="ori"' in form and '<option value="IL"' in form

    bad = await post_form(
        client, "/admin/agencies/new", {**AGENCY, "ori": "WI0160000", "name": "Spring <b>"}, csrf
    )
    assert bad.status_code == 422
    assert "starts with WI, but the agency is in IL" in bad.text
    assert 'value="WI0160000"' in bad.text and 'value="Spring &lt;b&gt;"' in bad.text
    assert 'aria-invalid="true" aria-describedby="ori-error"' in bad.text
    malformed = await post_form(
        client, "/admin/agencies/new", {**AGENCY, "ori": "IL01", "type": "posse"}, csrf
    )
    assert malformed.status_code == 422
    assert "must be nine letters or digits" in malformed.text
    assert "must be one of municipal" in malformed.text
    assert await agency_count(db) == 0

    made = await post_form(client, "/admin/agencies/new", {**AGENCY, "ori": "il0160000"}, csrf)
    assert made.status_code == 303, made.text
    page = await client.get(made.headers["location"])
    assert "added to the directory" in page.text and 'value="IL0160000"' in page.text
    same_ori = await post_form(
        client, "/admin/agencies/new", {**AGENCY, "name": "Other", "ori": "IL0160000"}, csrf
    )
    assert same_ori.status_code == 409 and "IL0160000" in same_ori.text

    url = made.headers["location"]
    moved_state = await post_form(client, url, {**AGENCY, "state": "WI", "ori": "IL0160000"}, csrf)
    assert moved_state.status_code == 422 and "but the agency is in WI" in moved_state.text
    assert '<option value="WI" selected>' in moved_state.text
    saved = await post_form(
        client, url, {**AGENCY, "name": "Springfield PD", "type": "campus", "ori": ""}, csrf
    )
    assert saved.status_code == 303
    async with db.read() as conn:
        row = (await conn.execute(select(Agency))).one()
    assert (row.name, row.type, row.ori) == ("Springfield PD", "campus", None)
    assert (await client.get("/admin/agencies/999999")).status_code == 404
    assert (await client.get("/admin/agencies/abc")).status_code == 404


async def test_list_searches_and_pages(client, db, admin_headers):
    csrf = await sign_in(client, db)
    for n in range(55):
        await make_agency(client, admin_headers, name=f"Agency {n:02d} PD")
    await make_agency(client, admin_headers, name="Sangamon County Sheriff", ori="IL0840000")
    first = (await client.get("/admin/agencies")).text
    assert first.count('<td class="name">') == 50 and 'rel="next"' in first
    second = (await client.get("/admin/agencies?page=2")).text
    assert second.count('<td class="name">') == 6 and "Sangamon" in second
    assert 'rel="prev"' in second and 'rel="next"' not in second
    by_ori = (await client.get("/admin/agencies?q=IL084")).text
    assert by_ori.count('<td class="name">') == 1 and "Sangamon County Sheriff" in by_ori
    none = (await client.get("/admin/agencies?q=zzz")).text
    assert "No agency matches “zzz”" in none
    assert (await client.get("/admin/agencies?page=-3")).status_code == 200
    assert csrf


async def test_merge_asks_first_and_says_what_moves(client, db, admin_headers):
    csrf = await sign_in(client, db)
    keep = await make_agency(client, admin_headers, name="Springfield Police Department")
    dup = await make_agency(client, admin_headers, name="Springfeld PD", ori="IL0160000")
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=5)
    for n in range(2):
        body = {"name": f"O {n}", "email": f"o{n}@pd.example.org", "agency_id": dup["id"]}
        made = await client.post(
            f"/api/sessions/{session['id']}/registrations",
            json={**body, "attendance": "in_person"},
        )
        assert made.status_code == 201, made.text
    url = f"/admin/agencies/{dup['id']}/merge"
    search = await client.get(url, params={"q": "springfield"})
    assert search.status_code == 200
    assert f'value="{keep["id"]}"' in search.text and f'value="{dup["id"]}"' not in search.text
    asked = await post_form(client, url, {"into": keep["id"]}, csrf)
    assert asked.status_code == 200
    assert "2 registrations (2 active), 0 active holds, 0 coordinators" in asked.text
    assert "The ORI IL0160000 moves to it too" in asked.text
    async with db.read() as conn:  # nothing moved yet
        ids = set((await conn.scalars(select(Registration.agency_id))).all())
    assert ids == {dup["id"]}
    wrong = await post_form(client, url, {"into": dup["id"], "confirm": "yes"}, csrf)
    assert wrong.status_code == 422 and "Choose another agency" in wrong.text
    missing = await post_form(client, url, {"into": "999999", "confirm": "yes"}, csrf)
    assert missing.status_code == 422
    done = await post_form(client, url, {"into": keep["id"], "confirm": "yes"}, csrf)
    assert done.status_code == 303 and done.headers["location"] == f"/admin/agencies/{keep['id']}"
    async with db.read() as conn:
        ids = set((await conn.scalars(select(Registration.agency_id))).all())
        survivor = (await conn.execute(select(Agency).where(Agency.id == keep["id"]))).one()
    assert ids == {keep["id"]} and survivor.ori == "IL0160000"
    assert (
        "Merged “Springfeld PD” into “Springfield Police Department”"
        in (await client.get(done.headers["location"])).text
    )
    listing = (await client.get("/admin/agencies")).text
    assert "Springfeld PD" not in listing
    gone = await client.get(f"/admin/agencies/{dup['id']}")
    assert gone.status_code == 303  # a merged duplicate's page leads to the survivor
    assert (await client.get(url)).status_code == 404


def csv_of(rows: list[str], header: str = "name,state,type,ori") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


async def upload(client, csrf, content: bytes, filename: str = "agencies.csv"):
    return await client.post(
        "/admin/agencies/import",
        data={"csrf_token": csrf},
        files={"file": (filename, content, "text/csv")},
    )


async def test_import_previews_every_row_then_writes_the_good_ones(client, db, admin_headers):
    csrf = await sign_in(client, db)
    await make_agency(client, admin_headers, name="Existing PD", ori="IL0990000")
    content = csv_of(
        [
            "Springfield Police Department,IL,municipal,IL0160000",
            "Sangamon County Sheriff,il,Sheriff,",
            "Bad ORI PD,IL,municipal,IL01",
            "Wrong State PD,IL,municipal,WI0130000",
            "Posse,IL,posse,",
            "Again PD,IL,municipal,IL0160000",
            "Existing PD,IL,municipal,",
            "Taken ORI PD,IL,municipal,IL0990000",
            "springfield  police department,IL,municipal,",
            "Extra PD,IL,municipal,,surplus",
            "",
        ]
    )
    made = await upload(client, csrf, content)
    assert made.status_code == 303, made.text
    preview = await client.get(made.headers["location"])
    text = preview.text
    assert "2 agencies can be imported, 8 rows cannot" in text
    assert "this line has more than the four columns" in text
    assert "must be nine letters or digits" in text
    assert "starts with WI, but the agency is in IL" in text
    assert "must be one of municipal" in text
    assert "IL0160000 is also on line 2" in text
    assert "Existing PD (IL) is already in the directory" in text
    assert "IL0990000 is already in the directory" in text
    assert "the same agency is also on line 2" in text
    assert await agency_count(db) == 1  # the preview writes no agency

    job = int(made.headers["location"].rsplit("/", 1)[1])
    imported = await post_form(client, f"/admin/agencies/imports/{job}", {}, csrf)
    assert imported.status_code == 303
    result = await client.get(imported.headers["location"])
    assert "Imported: 2 agencies added" in result.text
    assert await agency_count(db) == 3
    async with db.read() as conn:
        sheriff = (
            await conn.execute(select(Agency).where(Agency.name == "Sangamon County Sheriff"))
        ).one()
    assert (sheriff.state, sheriff.type, sheriff.ori) == ("IL", "sheriff", None)
    again = await post_form(client, f"/admin/agencies/imports/{job}", {}, csrf)
    assert again.status_code == 303 and await agency_count(db) == 3  # starting twice: once


async def test_import_refuses_whole_files_and_writes_nothing(client, db):
    csrf = await sign_in(client, db)
    cases = [
        (csv_of(["A,IL,municipal,"], header="name,state,kind"), "must name the columns"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "is not a CSV file"),
        (b"", "the file is empty"),
        (csv_of([]), "no agencies"),
        (
            csv_of([f"Agency {n},IL,municipal," for n in range(agency_import.MAX_ROWS + 1)]),
            "has more than 10,000 rows",
        ),
    ]
    for content, message in cases:
        refused = await upload(client, csrf, content)
        assert refused.status_code == 422, message
        assert message in refused.text
        assert 'aria-describedby="file-error"' in refused.text
    no_file = await post_form(client, "/admin/agencies/import", {}, csrf)
    assert no_file.status_code == 422 and "choose a CSV file" in no_file.text
    async with db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(AgencyImport))).scalar_one()
    assert stored == 0 and await agency_count(db) == 0
    huge = await upload(client, csrf, b"name,state,type,ori\n" + b"x" * (5 * 1024 * 1024))
    assert huge.status_code == 413
    # 10,000 rows exactly is allowed (the limit, not one under it).
    ok = await upload(
        client,
        csrf,
        csv_of([f"Agency {n},IL,municipal," for n in range(agency_import.MAX_ROWS)]),
    )
    assert ok.status_code == 303


async def test_a_large_import_runs_in_chunks_and_shows_progress(client, db):
    csrf = await sign_in(client, db)
    rows = [f"Agency {n},TX,municipal,TX{n:07d}" for n in range(agency_import.CHUNK * 3 + 7)]
    made = await upload(client, csrf, csv_of(rows))
    job = int(made.headers["location"].rsplit("/", 1)[1])
    # Start without running, then run one chunk: the page shows the bar at that point.
    await agency_import.start(db, job)
    assert await agency_import.run_chunk(db, job) is True
    page = (await client.get(f"/admin/agencies/imports/{job}")).text
    total = len(rows)
    assert f'<progress id="import-progress" max="{total}" value="{agency_import.CHUNK}">' in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert '<script src="/static/import_progress.js" defer></script>' in page
    assert await agency_count(db) == agency_import.CHUNK
    await agency_import.run(db, job)
    done = (await client.get(f"/admin/agencies/imports/{job}")).text
    assert f"Imported: {total} agencies added" in done and "import_progress.js" not in done
    assert await agency_count(db) == total
    assert await agency_import.run_chunk(db, job) is False  # nothing left, nothing written twice
    assert await agency_count(db) == total
    script = await client.get("/static/import_progress.js")
    assert script.status_code == 200 and "import-status" in script.text
    assert re.search(r"max=\"\d+\"", done)
    assert (await client.get("/admin/agencies/imports/999999")).status_code == 404
