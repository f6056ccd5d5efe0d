"""Ids in page addresses: anything that is not a plain id the database can hold is a 404.

"²".isdigit() is true but int() refuses it, and PostgreSQL refuses a parameter past the 32-bit
INTEGER column instead of finding nothing; either used to surface as a 500.
"""

from __future__ import annotations

import pytest

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
        f"/admin/outbox/{raw}/resend",
        f"/admin/tokens/{raw}/revoke",
        f"/sessions/{raw}/register",
    ):
        response = await post_form(client, path, {}, csrf)
        assert response.status_code == 404, (path, response.status_code)
    for path in (f"/api/sessions/{raw}", f"/api/sessions/{raw}/registrations"):
        assert (await client.get(path)).status_code in (401, 404), path
