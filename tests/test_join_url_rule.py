"""Invariant 7 has one home, ``models.sees_join_url``; each surface has its own test too.

API: tests/web/test_api.py::test_registration_detail_shows_join_url_only_to_confirmed_virtual,
page: tests/web/test_pages.py::test_manage_page_shows_join_url_only_to_a_confirmed_virtual_registrant,
feed and invite: tests/web/test_feeds.py, email: tests/notifications/test_delivery.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scheduler.models import ATTENDANCE, CANCELLED, CONFIRMED, WAITLISTED, sees_join_url


@pytest.mark.parametrize("status", [CONFIRMED, WAITLISTED, CANCELLED])
@pytest.mark.parametrize("attendance", ATTENDANCE)
def test_only_a_confirmed_virtual_seat_sees_the_join_url(status: str, attendance: str) -> None:
    seat = SimpleNamespace(status=status, attendance=attendance)
    assert sees_join_url(seat) is (status == CONFIRMED and attendance == "virtual")
