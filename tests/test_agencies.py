"""The agency directory: ORI rules, search, edit, merge; registrations that name an agency."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from scheduler import agencies
from tests.helpers import make_course, make_session, person


async def make_agency(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"name": "Springfield Police Department", "state": "IL", "type": "municipal", **body}
    response = await client.post("/api/agencies", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_search_and_edit(client, admin_headers):
    created = await make_agency(client, admin_headers, ori="il0160000")
    assert created["ori"] == "IL0160000"
    assert created["post_id_label"] == agencies.GENERIC_POST_ID_LABEL
    await make_agency(client, admin_headers, name="Sangamon County Sheriff", type="sheriff")

    found = (await client.get("/api/agencies", params={"q": "spring"})).json()["agencies"]
    assert [a["name"] for a in found] == ["Springfield Police Department"]
    by_ori = (await client.get("/api/agencies", params={"q": "IL016"})).json()["agencies"]
    assert [a["id"] for a in by_ori] == [created["id"]]

    patched = await client.patch(
        f"/api/agencies/{created['id']}", json={"name": "Springfield PD"}, headers=admin_headers
    )
    assert patched.status_code == 200 and patched.json()["name"] == "Springfield PD"
    texas = await make_agency(client, admin_headers, name="Austin PD", state="TX")
    assert texas["post_id_label"] == "TCOLE PID"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"ori": "IL01600"}, "ori", "nine"),
        ({"ori": "IL01600$0"}, "ori", "nine"),
        ({"ori": "TX0160000"}, "ori", "agency is in IL"),
        ({"ori": "ZZ0160000"}, "ori", "state code"),
        ({"state": "Illinois"}, "state", "two-letter"),
        ({"type": "county"}, "type", "municipal"),
    ],
)
async def test_bad_agencies_are_refused_and_nothing_is_written(
    client, admin_headers, body, field, words
):
    full = {"name": "Springfield PD", "state": "IL", "type": "municipal", **body}
    response = await client.post("/api/agencies", json=full, headers=admin_headers)
    assert response.status_code == 422
    assert words in response.json()["error"]["fields"][field]
    assert (await client.get("/api/agencies")).json()["agencies"] == []


async def test_a_state_change_must_still_match_the_ori(client, admin_headers):
    agency = await make_agency(client, admin_headers, ori="IL0160000")
    response = await client.patch(
        f"/api/agencies/{agency['id']}", json={"state": "WI"}, headers=admin_headers
    )
    assert response.status_code == 422 and "ori" in response.json()["error"]["fields"]


async def test_an_ori_is_unique(client, admin_headers):
    await make_agency(client, admin_headers, ori="IL0160000")
    again = await client.post(
        "/api/agencies",
        json={"name": "Other", "state": "IL", "type": "state", "ori": "IL0160000"},
        headers=admin_headers,
    )
    assert again.status_code == 409


async def test_creating_needs_an_admin(client):
    response = await client.post(
        "/api/agencies", json={"name": "X", "state": "IL", "type": "municipal"}
    )
    assert response.status_code == 401


async def test_registration_names_the_directory_agency_and_the_cap_counts_by_it(
    client, admin_headers
):
    agency = await make_agency(client, admin_headers)
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=10, max_per_agency=2)
    url = f"/api/sessions/{session['id']}/registrations"
    first = {**person(1), "agency": None, "agency_id": agency["id"], "post_id": "A-123"}
    first.pop("agency")
    one = await client.post(url, json=first)
    assert one.status_code == 201 and one.json()["status"] == "confirmed"
    details = (await client.get(f"/api/registrations/{one.json()['token']}")).json()
    assert details["agency"] == "Springfield Police Department"
    assert (details["post_id"], details["post_state"]) == ("A-123", "IL")
    # Two more of the same agency, spelled differently by hand: the cap counts the agency.
    two = await client.post(url, json={**person(2, agency="whatever"), "agency_id": agency["id"]})
    three = await client.post(url, json={**person(3, agency="SPD"), "agency_id": agency["id"]})
    assert two.json()["status"] == "confirmed"
    assert three.json()["status"] == "waitlisted"


async def test_an_unknown_agency_is_a_clear_error(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    response = await client.post(
        f"/api/sessions/{session['id']}/registrations", json={**person(1), "agency_id": 999}
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"agency_id": "unknown agency 999"}


async def test_bad_certification_fields(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    response = await client.post(
        f"/api/sessions/{session['id']}/registrations",
        json={**person(1), "post_id": "<script>", "post_state": "XX"},
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"post_id", "post_state"}


async def test_merge_moves_registrations_and_counts_them_as_the_survivor(client, admin_headers):
    keep = await make_agency(client, admin_headers, name="Springfield PD")
    dup = await make_agency(client, admin_headers, name="Springfield Police", ori="IL0160000")
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=10, max_per_agency=2)
    url = f"/api/sessions/{session['id']}/registrations"
    assert (await client.post(url, json={**person(1), "agency_id": keep["id"]})).status_code == 201
    assert (await client.post(url, json={**person(2), "agency_id": dup["id"]})).status_code == 201

    merged = await client.post(
        f"/api/agencies/{dup['id']}/merge", json={"into": keep["id"]}, headers=admin_headers
    )
    assert merged.status_code == 200 and merged.json()["ori"] == "IL0160000"
    listed = (await client.get("/api/agencies")).json()["agencies"]
    assert [a["id"] for a in listed] == [keep["id"]]
    # Both now count for the survivor, and the duplicate's id still resolves to it.
    third = await client.post(url, json={**person(3), "agency_id": dup["id"]})
    assert third.json()["status"] == "waitlisted"
    roster = (await client.get(url, headers=admin_headers)).json()["registrations"]
    assert {r["agency_id"] for r in roster} == {keep["id"]}
    assert {r["agency"] for r in roster} == {"Springfield PD"}

    self_merge = await client.post(
        f"/api/agencies/{keep['id']}/merge", json={"into": keep["id"]}, headers=admin_headers
    )
    assert self_merge.status_code == 409


async def test_history_by_email_is_one_query(client, admin_headers, db):
    await make_course(client, admin_headers)
    ids = [(await make_session(client, admin_headers, days=d))["id"] for d in (5, 9, 3)]
    for n, session_id in enumerate(ids):
        body = {
            **person(1),
            "email": "Sam.Rivera@PD.example.org" if n else "sam.rivera@pd.example.org",
        }
        response = await client.post(f"/api/sessions/{session_id}/registrations", json=body)
        assert response.status_code == 201

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.read() as conn:
            entries = await agencies.history(conn, "SAM.RIVERA@pd.example.org")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert [e["session_id"] for e in entries] == [ids[2], ids[0], ids[1]]

    api = await client.get(
        "/api/registrations", params={"email": "sam.RIVERA@pd.example.org"}, headers=admin_headers
    )
    assert len(api.json()["registrations"]) == 3
