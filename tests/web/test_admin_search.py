"""Admin search of registrations across every session, at ``/admin/registrations?q=``."""

from __future__ import annotations

import re

from scheduler.search import searched_columns
from tests.helpers import make_course, make_session
from tests.web.page_client import sign_in


async def test_search_finds_by_name_email_or_agency_in_any_case(client, db, admin_headers):
    await make_course(client, admin_headers)
    one = await make_session(client, admin_headers, days=5)
    two = await make_session(client, admin_headers, mode="virtual", days=9)
    people = [
        (one, "Dana O'Neil", "dana@county.example.org", "Adams County Sheriff", "in_person"),
        (two, "Dana O'Neil", "dana@county.example.org", "Adams County Sheriff", "virtual"),
        (one, "Lee Park", "lee@city.example.org", "Springfield PD", "in_person"),
        (two, "Kim 100% Sure", "kim_x@city.example.org", "Springfield PD", "virtual"),
    ]
    for session, name, email, agency, attendance in people:
        body = {"name": name, "email": email, "agency": agency, "attendance": attendance}
        made = await client.post(f"/api/sessions/{session['id']}/registrations", json=body)
        assert made.status_code == 201, made.text
    await sign_in(client, db)

    async def names(q: str) -> list[str]:
        page = await client.get("/admin/registrations", params={"q": q})
        assert page.status_code == 200, page.text
        return re.findall(r'<td class="name">([^<]+)</td>', page.text)

    assert await names("o&#39;neil") == []  # the term is text, not markup
    assert await names("O'NEIL") == ["Dana O&#39;Neil", "Dana O&#39;Neil"]
    assert await names("LEE@city") == ["Lee Park"]
    assert sorted(await names("springfield pd")) == ["Kim 100% Sure", "Lee Park"]
    assert await names("100%") == ["Kim 100% Sure"]
    assert await names("_x@") == ["Kim 100% Sure"]
    assert await names("%%") == []  # wildcards match only themselves
    assert await names("nobody") == []
    page = await client.get("/admin/registrations", params={"q": "O'Neil"})
    assert f'href="/admin/sessions/{two["id"]}"' in page.text
    short = await client.get("/admin/registrations", params={"q": "a"})
    assert short.status_code == 422 and 'aria-invalid="true"' in short.text


async def test_search_is_for_admins_only(client, db):
    page = await client.get("/admin/registrations", params={"q": "dana"})
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login?next=/admin/registrations")


def test_the_certification_number_is_searched_once_the_column_exists():
    columns = {c.name for c in searched_columns()}
    assert {"name", "email", "agency"} <= columns
