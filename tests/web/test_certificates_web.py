"""Verification, downloads, the training record and the exports, through the app, both backends."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

from sqlalchemy import update

from scheduler.certificates import Issuer, new_code, sync_session
from scheduler.config import Settings
from scheduler.models import Certificate, Registration, TrainingSession
from tests.completion_setup import held_session, set_completions
from tests.support.pdf import pdf_qr_codes, pdf_text

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


async def finalize(db, settings: Settings, held, completed: dict[str, bool], reason=None):
    await set_completions(db, held, completed)
    async with db.write() as conn:
        await conn.execute(
            update(TrainingSession)
            .where(TrainingSession.id == held.session_id)
            .values(finalized_at=NOW, finalized_by="admin@example.org")
        )
        return await sync_session(
            conn,
            held.session_id,
            actor="admin@example.org",
            reason=reason,
            now=NOW,
            issuer=Issuer.from_settings(settings),
        )


async def code_of(db, registration_id: int, status: str = "valid") -> str:
    from sqlalchemy import select

    async with db.read() as conn:
        return str(
            (
                await conn.execute(
                    select(Certificate.code)
                    .where(
                        Certificate.registration_id == registration_id,
                        Certificate.status == status,
                    )
                    .order_by(Certificate.id.desc())
                )
            )
            .scalars()
            .first()
        )


async def test_verify_valid_then_revoked_after_reissue(client, admin_headers, db, settings):
    held = await held_session(client, admin_headers, db)
    await finalize(db, settings, held, {"José Ñúñez": True, "Sam Rivera": True})
    sam = held.by_name("Sam Rivera")
    first = await code_of(db, sam["id"])

    answer = await client.get(f"/api/verify/{first}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-robots-tag"] == "noindex"
    body = answer.json()
    assert set(body) == {"status", "name", "course", "completed_on", "credit_hours"}
    assert body["status"] == "valid"
    assert body["name"] == "Sam Rivera"
    assert body["course"] == "Managing Bias"
    assert body["credit_hours"] == 14.5
    datetime.fromisoformat(body["completed_on"])
    # Typed from paper: lower case, spaces instead of hyphens.
    typed = await client.get(f"/api/verify/{first.lower().replace('-', ' ')}")
    assert typed.json() == body

    page = await client.get(f"/verify/{first}")
    assert page.status_code == 200
    assert "Valid." in page.text and "Sam Rivera" in page.text and "14.5" in page.text
    assert "Sam.Rivera@pd.example.org" not in page.text  # nothing more than the four facts

    async with db.write() as conn:
        await conn.execute(
            update(Registration).where(Registration.id == sam["id"]).values(name="Samuel Rivera")
        )
    await finalize(db, settings, held, {"José Ñúñez": True, "Sam Rivera": True}, reason="name")
    second = await code_of(db, sam["id"])
    assert second != first
    revoked = (await client.get(f"/api/verify/{first}")).json()
    assert revoked == {**body, "status": "revoked"}
    assert "Revoked." in (await client.get(f"/verify/{first}")).text
    assert (await client.get(f"/api/verify/{second}")).json()["name"] == "Samuel Rivera"


async def test_unknown_and_malformed_codes_get_the_same_404(client):
    unknown = await client.get(f"/api/verify/{new_code()}")
    route_404 = await client.get("/api/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.content == route_404.content  # like any other 404
    for malformed in ("x", "0000-0000-0000-0000", "A" * 300, "%27%3B--", "ZZZZ-ZZZZ-ZZZZ-ZZZ1"):
        answer = await client.get(f"/api/verify/{malformed}")
        assert (answer.status_code, answer.content) == (404, unknown.content), malformed
        assert answer.headers["cache-control"] == unknown.headers["cache-control"]
    page_unknown = await client.get(f"/verify/{new_code()}")
    page_malformed = await client.get("/verify/not-a-code")
    assert page_unknown.status_code == page_malformed.status_code == 404
    assert page_unknown.text == page_malformed.text


async def test_malformed_and_unknown_take_the_same_time(client):
    """Both run one rate-limit count and one indexed lookup: their medians agree closely.

    The two kinds of request alternate, so a busy machine slows both alike.
    """
    paths = {"unknown": f"/api/verify/{new_code()}", "malformed": "/api/verify/nonsense"}
    times: dict[str, list[float]] = {"unknown": [], "malformed": []}
    for _ in range(25):
        for kind, path in paths.items():
            start = time.perf_counter()
            assert (await client.get(path)).status_code == 404
            times[kind].append(time.perf_counter() - start)
    unknown, malformed = (sorted(t)[len(t) // 2] for t in times.values())
    assert abs(unknown - malformed) < max(0.005, 0.5 * unknown)


async def test_verification_is_rate_limited_per_client(settings):
    limited = settings.with_(rate_limit=3)
    from asgi_lifespan import LifespanManager

    from scheduler.app import create_app

    application = create_app(limited)
    async with LifespanManager(application) as manager:
        import httpx

        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answers = [(await c.get(f"/api/verify/{new_code()}")).status_code for _ in range(4)]
            page = await c.get(f"/verify/{new_code()}")
    assert answers == [404, 404, 404, 429]
    assert page.status_code == 429


async def test_registrant_downloads_only_their_own_certificate(client, admin_headers, db, settings):
    held = await held_session(client, admin_headers, db)
    await finalize(db, settings, held, {"José Ñúñez": True, "Sam Rivera": False})
    jose, sam = held.by_name("José Ñúñez"), held.by_name("Sam Rivera")

    pdf = await client.get(f"/registrations/{jose['token']}/certificate.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    code = await code_of(db, jose["id"])
    assert "José Ñúñez" in pdf_text(pdf.content)
    assert pdf_qr_codes(pdf.content) == [f"http://testserver/verify/{code}"]

    assert (await client.get(f"/registrations/{sam['token']}/certificate.pdf")).status_code == 404
    nobody = await client.get("/registrations/not-a-token/certificate.pdf")
    assert (nobody.status_code, nobody.headers["cache-control"]) == (404, "no-store")


async def test_training_record_lists_the_person_s_courses_across_sessions(
    client, admin_headers, db, settings
):
    first = await held_session(client, admin_headers, db, days=10)
    await finalize(db, settings, first, {"José Ñúñez": True, "Sam Rivera": True})
    # The same officer (the address in another letter case) in a later session of a course.
    jose_again = [
        {
            "name": "José Ñúñez",
            "email": "JOSE@pd.example.org",
            "post_id": "DPSST-40112",
            "post_state": "OR",
        }
    ]
    second = await held_session(
        client, admin_headers, db, slug="report-writing", people=jose_again, days=20
    )
    await finalize(db, settings, second, {"José Ñúñez": True})

    token = first.by_name("José Ñúñez")["token"]
    page = await client.get(f"/registrations/{token}/training")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.text.count("(PDF)") == 2
    other_token = second.registrations[0]["token"]
    assert other_token not in page.text  # links go through this token, never another one
    sam_token = first.by_name("Sam Rivera")["token"]
    assert sam_token not in page.text

    links = [
        part.split('"')[0]
        for part in page.text.split('href="')[1:]
        if part.startswith(f"/registrations/{token}/certificates/")
    ]
    assert len(links) == 2
    for link in links:
        answer = await client.get(link)
        assert answer.status_code == 200
        assert "José Ñúñez" in pdf_text(answer.content)
    # Sam's token cannot open José's certificates.
    stolen = links[0].replace(token, sam_token)
    assert (await client.get(stolen)).status_code == 404
    assert (await client.get(f"/registrations/{token}/certificates/abc.pdf")).status_code == 404

    sam_page = await client.get(f"/registrations/{sam_token}/training")
    assert sam_page.text.count("(PDF)") == 1
    assert (await client.get("/registrations/unknown/training")).status_code == 404
    manage = await client.get(f"/registrations/{token}")
    assert f"/registrations/{token}/training" in manage.text


async def test_exports_carry_the_shared_columns_formula_safe_with_bom(
    client, admin_headers, db, settings
):
    people = [
        {
            "name": '=HYPERLINK("http://x")',
            "email": "evil@pd.example.org",
            "post_id": "",
            "post_state": "",
        },
        {
            "name": "José Ñúñez",
            "email": "jose@pd.example.org",
            "post_id": "DPSST-40112",
            "post_state": "OR",
        },
        {"name": "Pat Lee", "email": "pat@pd.example.org", "post_id": "", "post_state": ""},
    ]
    held = await held_session(client, admin_headers, db, people=people, agency="+Portland PD")
    await finalize(
        db, settings, held, {people[0]["name"]: True, "José Ñúñez": True, "Pat Lee": False}
    )

    answer = await client.get(
        f"/api/sessions/{held.session_id}/training-records?format=csv", headers=admin_headers
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "Name",
        "Certification number",
        "State",
        "Agency",
        "ORI",
        "Course",
        "Course number",
        "Provider",
        "Instructors",
        "Dates",
        "Hours",
        "Result",
        "Verification code",
        "Session",
    ]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {'\'=HYPERLINK("http://x")', "José Ñúñez", "Pat Lee"}
    jose = by_name["José Ñúñez"]
    assert jose[1:4] == ["DPSST-40112", "OR", "'+Portland PD"]
    assert jose[5:9] == ["Managing Bias", "MB-101", settings.provider_name, "Dana Cruz"]
    assert len(jose[9].split("; ")) == 2
    assert jose[10:12] == ["14.5", "completed"]
    assert jose[12] == await code_of(db, held.by_name("José Ñúñez")["id"])
    assert by_name["Pat Lee"][10:13] == ["0", "not completed", ""]

    as_json = await client.get(
        f"/api/sessions/{held.session_id}/training-records", headers=admin_headers
    )
    assert len(as_json.json()["records"]) == 3

    last_day = jose[9].split("; ")[-1]
    inside = await client.get(
        "/api/training-records", params={"from": last_day, "to": last_day}, headers=admin_headers
    )
    assert len(inside.json()["records"]) == 3
    after = await client.get(
        "/api/training-records", params={"from": "2100-01-01"}, headers=admin_headers
    )
    assert after.json()["records"] == []
    bad = await client.get(
        "/api/training-records", params={"from": "yesterday"}, headers=admin_headers
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == {"from": "use a date like 2026-11-04"}
    backwards = await client.get(
        "/api/training-records",
        params={"from": "2026-02-01", "to": "2026-01-01"},
        headers=admin_headers,
    )
    assert backwards.json()["error"]["fields"] == {"to": "must not be before from"}
    # Year 1 overflowed turning into an instant (a 500 schemathesis found); now a field error.
    far = await client.get(
        "/api/training-records", params={"from": "0001-01-01"}, headers=admin_headers
    )
    assert far.status_code == 422
    assert far.json()["error"]["fields"] == {"from": "must be in the years 2000-2199"}
    twice = await client.get(
        f"/api/sessions/{held.session_id}/training-records?format=csv&format=csv",
        headers=admin_headers,
    )
    assert twice.status_code == 422
    assert twice.json()["error"]["fields"] == {"format": "must be json or csv, given once"}
    assert (await client.get("/api/training-records")).status_code == 401
    assert (
        await client.get("/api/sessions/999999/training-records", headers=admin_headers)
    ).status_code == 404
