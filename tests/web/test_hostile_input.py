"""Hostile input against a real server, on both databases: never a 500, never a forged log.

Each case here answered 500 (or wrote something it should not) before; the adversarial probe of
issue 9 found them. The server is a real ``scheduler serve`` so what reaches the database, the
log and the client is what production would see.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scheduler.db import Database
from scheduler.tokens import create_token
from tests.helpers import session_body
from tests.support.servers import ServerProcess


@dataclass
class Site:
    server: ServerProcess
    http: httpx.AsyncClient
    admin: dict[str, str]
    session_id: int
    token: str

    def log(self) -> str:
        return self.server.log.read_text(encoding="utf-8", errors="backslashreplace")


@pytest.fixture
async def site(db: Database, database_url: str, live_server_factory: Any) -> AsyncIterator[Site]:
    server = live_server_factory(database_url)
    admin = {"Authorization": f"Bearer {await create_token(db, 'hostile')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        course = {"slug": "managing-bias", "title": "Managing Bias"}
        assert (await http.post("/api/courses", json=course, headers=admin)).status_code == 201
        made = await http.post(
            "/api/courses/managing-bias/sessions", json=session_body("hybrid"), headers=admin
        )
        assert made.status_code == 201, made.text
        person = {"name": "A B", "email": "a@example.org", "agency": "PD", "attendance": "virtual"}
        registered = await http.post(
            f"/api/sessions/{made.json()['id']}/registrations", json=person
        )
        assert registered.status_code == 201, registered.text
        yield Site(server, http, admin, made.json()["id"], registered.json()["token"])


def person(**changes: Any) -> dict[str, Any]:
    body = {"name": "Sam", "email": "sam@example.org", "agency": "PD", "attendance": "in_person"}
    return {**body, **changes}


async def test_a_nul_byte_in_any_slug_or_token_is_404(site: Site) -> None:
    bad = "a%00b"
    requests = [
        ("GET", f"/api/courses/{bad}"),
        ("GET", f"/api/courses/{bad}/sessions"),
        ("PATCH", f"/api/courses/{bad}"),
        ("POST", f"/api/courses/{bad}/sessions"),
        ("GET", f"/courses/{bad}"),
        ("GET", f"/courses/{bad}/calendar.ics"),
        ("GET", f"/api/registrations/{bad}"),
        ("DELETE", f"/api/registrations/{bad}"),
        ("GET", f"/registrations/{bad}"),
        ("GET", f"/registrations/{bad}/result"),
        ("GET", f"/registrations/{bad}/calendar.ics"),
        ("POST", f"/registrations/{bad}/cancel"),
        ("GET", f"/registrations/{site.token}%00"),
    ]
    for method, path in requests:
        answer = await site.http.request(method, path, headers=site.admin, json={})
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:200])
    for query in ("state=%00", "mode=%00", "state=I%00L"):
        answer = await site.http.get(f"/calendar.ics?{query}")
        assert answer.status_code in (200, 422), (query, answer.status_code)
    assert "Traceback" not in site.log()


async def test_a_lone_surrogate_in_text_is_422_naming_the_field(site: Site) -> None:
    url = f"/api/sessions/{site.session_id}/registrations"
    for field in ("name", "agency", "rank", "email"):
        raw = json.dumps(person(**{field: "bad\\ud800x"})).replace("\\\\ud800", "\\ud800")
        answer = await site.http.post(
            url, content=raw, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.json()["error"]["fields"], answer.json()
    title = '{"slug": "x-y", "title": "bad\\ud800x"}'
    answer = await site.http.post("/api/courses", content=title, headers=site.admin)
    assert answer.status_code == 422 and "title" in answer.json()["error"]["fields"]
    platform = json.dumps(session_body("virtual", platform="PLATFORM"))
    platform = platform.replace("PLATFORM", "\\udfff")
    answer = await site.http.post(
        "/api/courses/managing-bias/sessions", content=platform, headers=site.admin
    )
    assert answer.status_code == 422 and "platform" in answer.json()["error"]["fields"]
    # The connection survived all of that: the same client goes on.
    assert (await site.http.get("/healthz")).status_code == 200
    assert "Traceback" not in site.log()


async def test_deeply_nested_json_is_422(site: Site) -> None:
    url = f"/api/sessions/{site.session_id}/registrations"
    for body in ("[" * 20000 + "]" * 20000, '{"name": ' + "[" * 20000 + "]" * 20000 + "}"):
        answer = await site.http.post(url, content=body[:40_000])
        assert answer.status_code == 422, answer.text[:200]
        assert answer.json()["error"]["code"] == "invalid"
    nested = '{"name": "A", "venue": ' + "[" * 30 + "]" * 30 + "}"
    answer = await site.http.post(url, content=nested)
    assert answer.status_code == 422 and answer.json()["error"]["fields"] == {
        "venue": "is nested too deeply"
    }


async def test_an_absurd_if_modified_since_is_ignored(site: Site) -> None:
    for since in (
        "Sat, 01 Jan 99999999999999999999 00:00:00 GMT",
        "Mon, 99 Foo 2026 99:99:99 GMT",
        "Tue, 01 Jan 0000 00:00:00 GMT",
    ):
        for path in ("/calendar.ics", "/courses/managing-bias/calendar.ics"):
            answer = await site.http.get(path, headers={"if-modified-since": since})
            assert answer.status_code == 200, (since, path, answer.text[:200])
            assert answer.text.startswith("BEGIN:VCALENDAR")


async def test_a_session_in_year_9999_is_422_with_the_range(site: Site) -> None:
    url = "/api/courses/managing-bias/sessions"
    for starts, ends in (("9999-12-31T09:00", "9999-12-31T12:00"), ("0001-01-01T09:00", None)):
        body = session_body("in_person", starts_at=starts, ends_at=ends or "2030-01-01T10:00")
        answer = await site.http.post(url, json=body, headers=site.admin)
        assert answer.status_code == 422, answer.text
        assert "between 2000 and 2199" in answer.json()["error"]["fields"]["starts_at"]
    patch = await site.http.patch(
        f"/api/sessions/{site.session_id}",
        json={"registration_closes_at": "9999-01-01T00:00"},
        headers=site.admin,
    )
    assert patch.status_code == 422, patch.text


async def test_every_personal_answer_is_no_store(site: Site) -> None:
    url = f"/api/sessions/{site.session_id}/registrations"
    answers = [
        await site.http.get(f"/api/registrations/{site.token}"),
        await site.http.post(url, json=person()),
        await site.http.get(url, headers=site.admin),
        await site.http.get(url + "?format=csv", headers=site.admin),
        await site.http.patch(
            f"/api/sessions/{site.session_id}", json={"virtual_capacity": 11}, headers=site.admin
        ),
        await site.http.delete(f"/api/registrations/{site.token}"),
    ]
    for answer in answers:
        assert answer.is_success, answer.text
        assert answer.headers["cache-control"] == "no-store", answer.request.url


async def test_invisible_characters_are_dropped_from_names_agencies_and_ranks(site: Site) -> None:
    spoof = {
        "name": "\u202eexe.gnp\u202c Smith\u200b",
        "agency": "\u2066Albany\u2069 PD\ufeff",
        "rank": "Sgt\u200f.",
        "email": "spoof@example.org",
        "attendance": "in_person",
    }
    made = await site.http.post(f"/api/sessions/{site.session_id}/registrations", json=spoof)
    assert made.status_code == 201, made.text
    mine = (await site.http.get(f"/api/registrations/{made.json()['token']}")).json()
    assert (mine["name"], mine["agency"], mine["rank"]) == ("exe.gnp Smith", "Albany PD", "Sgt.")
    csv = await site.http.get(
        f"/api/sessions/{site.session_id}/registrations?format=csv", headers=site.admin
    )
    assert not any(0x200B <= ord(c) <= 0x206F or c == "\ufeff" for c in csv.text)
    # Scripts that need joiners keep them; a name that is only invisible is no name.
    persian = await site.http.post(
        f"/api/sessions/{site.session_id}/registrations",
        json={
            **spoof,
            "name": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "email": "p@x.org",
        },
    )
    assert persian.status_code == 201
    mine = (await site.http.get(f"/api/registrations/{persian.json()['token']}")).json()
    assert "\u200c" in mine["name"]
    blank = await site.http.post(
        f"/api/sessions/{site.session_id}/registrations",
        json={**spoof, "name": "\u200b\u202e", "email": "b@x.org"},
    )
    assert blank.status_code == 422 and blank.json()["error"]["fields"]["name"] == "is required"


async def test_control_characters_in_a_path_cannot_forge_a_log_line(site: Site) -> None:
    forged = "2026-12-02 08:00:00,000 ERROR scheduler.web [-] forged"
    path = "/nope%0d%0a" + forged.replace(" ", "%20") + "%00end"
    assert (await site.http.get(path)).status_code == 404
    assert (await site.http.get("/healthz")).status_code == 200  # flushes past the line above
    raw = site.server.log.read_bytes()
    assert b"\x00" not in raw and b"\r" not in raw
    lines = raw.decode("utf-8").splitlines()
    assert not any(line.startswith(forged) for line in lines)
    assert any("/nope\\x0d\\x0a2026-12-02" in line and "\\x00end" in line for line in lines)


async def test_registration_tokens_never_reach_the_access_log(site: Site) -> None:
    token = site.token
    for path in (
        f"/registrations/{token}",
        f"/registrations/{token}/result",
        f"/registrations/{token}/calendar.ics",
        f"/api/registrations/{token}",
        f"/registrations/{token}/no-such-page",
    ):
        await site.http.get(path)
    await site.http.post(f"/registrations/{token}/cancel", data={})
    await site.http.delete(f"/api/registrations/{token}")
    await site.http.get("/healthz")
    log = site.log()
    assert token not in log
    assert log.count("/registrations/<redacted>") >= 7
