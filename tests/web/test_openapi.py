"""``/openapi.json`` against the app: every route described, every real answer matching it.

Responses are validated with ``jsonschema`` against the spec's own schemas, and more strictly
than JSON Schema alone does: a field the service sends that the spec does not name fails too,
so the description cannot silently fall behind the code.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from scheduler.app import create_app
from scheduler.web.openapi import build_spec
from tests.helpers import person, session_body

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec("http://testserver")


def described_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and (
            route.path.startswith("/api/") or route.path in ("/healthz", "/metrics")
        ):
            found |= {(route.path, m.lower()) for m in (route.methods or ()) if m in METHODS}
    return found


async def test_the_app_serves_the_spec(client, spec):
    served = (await client.get("/openapi.json")).json()
    assert served == spec


def test_every_schema_is_valid_json_schema(spec):
    assert spec["openapi"].startswith("3.1")
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_api_route_is_in_the_spec_with_its_methods(settings, spec):
    in_app = described_routes(create_app(settings))
    in_spec = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method.upper() in METHODS
    }
    assert in_app - in_spec == set(), "routes the spec does not describe"
    assert in_spec - in_app == set(), "the spec describes routes the app does not have"
    for path, method in in_spec:
        operation = spec["paths"][path][method]
        assert operation.get("summary") and operation.get("responses"), (path, method)
        params = {p["name"] for p in spec["paths"][path].get("parameters", [])}
        assert params == set(re.findall(r"{(\w+)}", path)), path


# -- real answers against the schemas ------------------------------------------------------------


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def undocumented(spec: dict[str, Any], schema: dict[str, Any], value: Any, at: str) -> list[str]:
    """Places in ``value`` that carry a field its schema does not name."""
    schema = resolve(spec, schema)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(resolve(spec, part).get("properties", {}))
        schema = {"type": "object", "properties": merged}
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        for key, item in value.items():
            if key not in props:
                if "additionalProperties" not in schema:
                    found.append(f"{at}.{key}")
            else:
                found += undocumented(spec, props[key], item, f"{at}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += undocumented(spec, schema["items"], item, f"{at}[{index}]")
    return found


def template_of(spec: dict[str, Any], path: str) -> str:
    for template in spec["paths"]:
        pattern = "^" + re.sub(r"{\w+}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"no path in the spec matches {path}")


class Checker:
    """Checks each answer of the API against the spec, and counts what it covered."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.covered: set[tuple[str, str, str]] = set()

    def schema(self, schema: dict[str, Any]) -> Draft202012Validator:
        # The components travel with the schema, so "#/components/..." references resolve.
        return Draft202012Validator({**schema, "components": self.spec["components"]})

    def __call__(self, response: httpx.Response) -> httpx.Response:
        request = response.request
        path = template_of(self.spec, request.url.path)
        method = request.method.lower()
        operation = self.spec["paths"][path][method]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path} answered {status} undocumented"
        content = operation["responses"][status]["content"]
        media = response.headers["content-type"].split(";")[0]
        assert media in content, (method, path, status, media)
        if media == "application/json":
            schema = content[media]["schema"]
            body = response.json()
            errors = [e.message for e in self.schema(schema).iter_errors(body)]
            assert errors == [], (method, path, status, errors)
            extra = undocumented(self.spec, schema, body, "body")
            assert extra == [], (method, path, status, extra)
        self.covered.add((path, method, status))
        return response

    def request_body(self, path: str, method: str, body: Any) -> None:
        """A body the API accepts must also be one the spec allows."""
        schema = self.spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        errors = [e.message for e in self.schema(schema["schema"]).iter_errors(body)]
        assert errors == [], (method, path, errors)


async def test_real_answers_match_the_spec(client, admin_headers, spec):
    check = Checker(spec)
    admin = admin_headers

    course_body = {
        "slug": "managing-bias",
        "title": "Managing Bias",
        "description": "Bias and decisions.",
        "audience": "All ranks",
        "provider": "The network",
        "delivery": ["in_person", "virtual"],
    }
    check.request_body("/api/courses", "post", course_body)
    check(await client.post("/api/courses", json=course_body, headers=admin))
    check(await client.post("/api/courses", json=course_body, headers=admin))  # 409
    check(await client.post("/api/courses", json={"slug": "Bad Slug!"}, headers=admin))  # 422
    check(await client.post("/api/courses", json=course_body))  # 401
    online = {
        "slug": "pj-online",
        "title": "Procedural Justice",
        "delivery": ["online"],
        "online_url": "https://learn.example.org/pj",
    }
    check(await client.post("/api/courses", json=online, headers=admin))
    check(await client.get("/api/courses"))
    check(await client.get("/api/courses/managing-bias"))
    check(await client.get("/api/courses/nope"))  # 404
    patch = {"description": "Updated.", "audience": "Recruits"}
    check.request_body("/api/courses/{slug}", "patch", patch)
    check(await client.patch("/api/courses/managing-bias", json=patch, headers=admin))

    hybrid = session_body("hybrid", in_person=1, virtual=1, max_per_agency=5, platform="Zoom")
    check.request_body("/api/courses/{slug}/sessions", "post", hybrid)
    created = check(
        await client.post("/api/courses/managing-bias/sessions", json=hybrid, headers=admin)
    ).json()
    sid = created["id"]
    virtual = session_body(
        "virtual", virtual=5, registration_closes_at="2020-01-01T00:00", record_past=True
    )
    closed = check(
        await client.post("/api/courses/managing-bias/sessions", json=virtual, headers=admin)
    ).json()
    bad = dict(hybrid, timezone="Mars/Olympus")
    check(await client.post("/api/courses/managing-bias/sessions", json=bad, headers=admin))
    check(await client.get("/api/courses/managing-bias/sessions"))
    teacher = check(
        await client.post(
            "/api/instructors",
            json={"name": "Dana Cruz", "email": "dana@example.org"},
            headers=admin,
        )
    ).json()
    check(await client.post("/api/instructors", json={"name": ""}, headers=admin))  # 422
    check(await client.get("/api/instructors", headers=admin))
    check(
        await client.patch(
            f"/api/instructors/{teacher['id']}", json={"public": True}, headers=admin
        )
    )
    check(await client.patch("/api/instructors/999999", json={}, headers=admin))  # 404
    check(await client.post("/api/venues", json={"name": "Hall", "room": "2"}, headers=admin))
    check(await client.get("/api/venues", headers=admin))
    check(await client.get("/api/venues"))  # 401
    check(await client.get(f"/api/sessions/{sid}"))
    check(await client.get("/api/sessions", params={"mode": "hybrid", "limit": "1"}))
    check(await client.get("/api/sessions", params={"state": "nowhere"}))  # 422
    check(await client.get("/api/sessions/999999"))

    url = f"/api/sessions/{sid}/registrations"
    seat_body = dict(person(1), rank="Sergeant")
    check.request_body("/api/sessions/{session_id}/registrations", "post", seat_body)
    seat = check(await client.post(url, json=seat_body)).json()
    wait = check(await client.post(url, json=person(2))).json()
    online_seat = check(await client.post(url, json=person(3, attendance="virtual"))).json()
    check(await client.post(url, json=person(1)))  # 409
    check(await client.post(url, json={"name": "A"}))  # 422
    check(await client.post(url, content=b"x" * 70_000))  # 413
    check(await client.post(f"/api/sessions/{closed['id']}/registrations", json=person(4)))  # 410
    for token in (seat["token"], wait["token"], online_seat["token"]):
        check(await client.get(f"/api/registrations/{token}"))
    check(await client.get("/api/registrations/unknown-token"))
    # Certificates and training records (tests/web/test_certificates_web.py has the 200s).
    check(await client.get("/api/verify/AAAA-BBBB-CCCC-DDDD"))  # 404
    check(await client.get("/api/training-records", params={"from": "2026-01-01"}, headers=admin))
    check(await client.get("/api/training-records", params={"to": "soon"}, headers=admin))  # 422
    check(await client.get(f"/api/sessions/{sid}/training-records?format=csv", headers=admin))

    check(await client.get(url, headers=admin))
    check(await client.get(url + "?format=csv", headers=admin))
    check(await client.get(url))  # 401
    check(await client.delete(f"/api/registrations/{seat['token']}"))  # promotes person 2
    check(await client.delete(f"/api/registrations/{seat['token']}"))  # twice is harmless

    raise_seats = {"in_person_capacity": 3, "venue": {"name": "Hall B"}}
    check.request_body("/api/sessions/{session_id}", "patch", raise_seats)
    check(await client.patch(f"/api/sessions/{sid}", json=raise_seats, headers=admin))
    # Agencies, their coordinators, held seats, batches, substitutions and moves.
    agency_body = {"name": "Albany Police Department", "state": "NY", "type": "municipal"}
    check.request_body("/api/agencies", "post", agency_body)
    agency = check(await client.post("/api/agencies", json=agency_body, headers=admin)).json()
    duplicate = check(
        await client.post(
            "/api/agencies",
            json={"name": "Albany PD", "state": "NY", "type": "municipal"},
            headers=admin,
        )
    ).json()
    bad_ori = dict(agency_body, name="Other", ori="IL0010100")
    check(await client.post("/api/agencies", json=bad_ori, headers=admin))  # 422
    check(await client.get("/api/agencies", params={"q": "albany"}, headers=admin))
    check(await client.get(f"/api/agencies/{agency['id']}", headers=admin))
    check(
        await client.patch(
            f"/api/agencies/{agency['id']}", json={"name": "Albany Police Dept."}, headers=admin
        )
    )
    check(
        await client.post(
            f"/api/agencies/{duplicate['id']}/merge", json={"into": agency["id"]}, headers=admin
        )
    )
    coordinator = {"name": "Casey Lee", "email": "casey@albany.example.org"}
    check(
        await client.post(
            f"/api/agencies/{agency['id']}/coordinators", json=coordinator, headers=admin
        )
    )
    check(await client.get(f"/api/agencies/{agency['id']}/coordinators", headers=admin))
    check(
        await client.get(
            "/api/registrations", params={"email": "OFFICER2@example.org"}, headers=admin
        )
    )
    hold_body = {"agency_id": agency["id"], "attendance": "in_person", "seats": 2}
    hold = check(
        await client.post(f"/api/sessions/{sid}/holds", json=hold_body, headers=admin)
    ).json()
    too_many = dict(hold_body, seats=50)
    check(await client.post(f"/api/sessions/{sid}/holds", json=too_many, headers=admin))  # 409
    check(await client.get(f"/api/holds/{hold['id']}", headers=admin))
    named = dict(person(20), agency_id=agency["id"])
    check(await client.post(f"/api/holds/{hold['id']}/registrations", json=named, headers=admin))
    check(await client.delete(f"/api/holds/{hold['id']}", headers=admin))
    batch = {
        "agency_id": agency["id"],
        "attendance": "in_person",
        "people": [{"name": "Officer 21", "email": "officer21@example.org"}],
    }
    check(await client.post(f"{url}/batch", json=batch, headers=admin))
    substitute = dict(person(22), agency_id=agency["id"])
    swapped = check(
        await client.post(
            f"/api/registrations/{wait['id']}/transfer", json=substitute, headers=admin
        )
    ).json()
    other = check(
        await client.post(
            "/api/courses/managing-bias/sessions",
            json=session_body("in_person", in_person=5, virtual=None, days=12),
            headers=admin,
        )
    ).json()
    check(
        await client.post(
            f"/api/registrations/{swapped['id']}/move",
            json={"session_id": other["id"], "attendance": "in_person"},
            headers=admin,
        )
    )
    check(await client.post(f"/api/registrations/{online_seat['id']}/cancel", headers=admin))

    # Attendance per meeting, a Zoom report, completions; finalizing before the session is held.
    meeting_id = check(await client.get(f"/api/sessions/{sid}")).json()["meetings"][0]["id"]
    marks = {
        "meeting_id": meeting_id,
        "marks": [{"registration_id": online_seat["id"], "present": True, "minutes": 200}],
    }
    check.request_body("/api/sessions/{session_id}/attendance", "put", marks)
    check(await client.put(f"/api/sessions/{sid}/attendance", json=marks, headers=admin))
    check(await client.put(f"/api/sessions/{sid}/attendance", json={}, headers=admin))  # 422
    check(await client.get(f"/api/sessions/{sid}/attendance", headers=admin))
    report = b"Name (Original Name),User Email,Duration (Minutes)\r\nOfficer 3,x@y.org,90\r\n"
    check(
        await client.post(
            f"/api/sessions/{sid}/attendance/import",
            data={"meeting_id": str(meeting_id), "platform": "zoom"},
            files={"file": ("participants.csv", report, "text/csv")},
            headers=admin,
        )
    )
    check(await client.post(f"/api/sessions/{sid}/finalize", headers=admin))  # 409: not held
    check(await client.get(f"/api/sessions/{sid}/completions", headers=admin))

    lower = {"virtual_capacity": 0}
    check(await client.patch(f"/api/sessions/{sid}", json=lower, headers=admin))  # 409
    reason = {"reason": "Instructor ill"}
    check.request_body("/api/sessions/{session_id}/cancel", "post", reason)
    check(await client.post(f"/api/sessions/{sid}/cancel", json=reason, headers=admin))
    check(await client.post(f"/api/sessions/{sid}/registrations", json=person(9)))  # 410
    check(await client.get("/healthz"))
    check(await client.get("/metrics"))

    answered = {(path, method) for path, method, _ in check.covered}
    every = {(p, m) for p, item in spec["paths"].items() for m in item if m.upper() in METHODS}
    assert every - answered == set(), "operations this test never exercised"
    assert {status for *_, status in check.covered} >= {
        "200",
        "201",
        "401",
        "404",
        "409",
        "410",
        "413",
        "422",
    }
