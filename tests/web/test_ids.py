"""Ids in page and API addresses: anything that is not a plain id the database can hold is 404.

"²".isdigit() is true but int() refuses it, and PostgreSQL refuses a parameter past the 32-bit
INTEGER column instead of finding nothing; either used to surface as a 500. The admin API is
asked with a valid token, so its own id handling is what answers, not the 401 before it.
"""

from __future__ import annotations

import pytest

from tests.helpers import person
from tests.web.page_client import post_form, sign_in

ODD_IDS = ["²", "9224852842", "00000000000000000001", "-1", "1e3"]


@pytest.mark.parametrize("raw", ODD_IDS)
async def test_odd_ids_in_admin_and_public_pages_are_404(client, db, raw):
    csrf = await sign_in(client, db)
    for path in (
        f"/admin/sessions/{raw}",
        f"/admin/sessions/{raw}/edit",
        f"/admin/sessions/{raw}/cancel",
        f"/admin/sessions/{raw}/roster.csv",
    ):
        response = await client.get(path)
        assert response.status_code == 404, (path, response.status_code)
    for path in (
        f"/admin/registrations/{raw}/cancel",
        f"/admin/registrations/{raw}/promote",
        f"/admin/registrations/{raw}/outcome",
        f"/admin/outbox/{raw}/resend",
        f"/admin/tokens/{raw}/revoke",
        f"/sessions/{raw}/register",
    ):
        response = await post_form(client, path, {}, csrf)
        assert response.status_code == 404, (path, response.status_code)


def _not_found(response, path):
    assert response.status_code == 404, (path, response.status_code, response.text)
    assert response.json()["error"]["code"] == "not_found", path


@pytest.mark.parametrize("raw", ODD_IDS)
async def test_odd_ids_in_the_api_are_404_for_the_public_and_for_admins(client, admin_headers, raw):
    path = f"/api/sessions/{raw}"
    _not_found(await client.get(path), path)
    path = f"/api/sessions/{raw}/registrations"
    _not_found(await client.post(path, json=person(1)), path)

    for method, path, body in (
        ("GET", f"/api/sessions/{raw}/registrations", None),
        ("GET", f"/api/sessions/{raw}/registrations?format=csv", None),
        ("PATCH", f"/api/sessions/{raw}", {"in_person_capacity": 5}),
        ("POST", f"/api/sessions/{raw}/cancel", {}),
    ):
        response = await client.request(method, path, json=body, headers=admin_headers)
        _not_found(response, (method, path))
