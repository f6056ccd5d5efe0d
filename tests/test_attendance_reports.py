"""The report readers on their own: each layout Zoom and Teams export, and what they refuse."""

from __future__ import annotations

import pytest

from scheduler.attendance_reports import read_report
from scheduler.errors import Invalid


def test_teams_event_layout_pairs_joins_and_leaves():
    text = "\r\n".join(
        [
            "Full Name\tUser Action\tTimestamp",
            "Ben Ode\tJoined\t3/11/2026, 8:00:00 AM",
            "Cara Núñez\tJoined\t3/11/2026, 8:02:00 AM",
            "Ben Ode\tLeft\t3/11/2026, 9:00:00 AM",
            "Ben Ode\tJoined before\t3/11/2026, 9:10:00 AM",
            "Ben Ode\tLeft\t3/11/2026, 11:40:00 AM",
            "Cara Núñez\tLeft\t3/11/2026, 12:00:00 PM",
        ]
    )
    people = {p.name: (p.minutes, p.rows) for p in read_report("teams", text.encode("utf-16"))}
    assert people == {"Ben Ode": (210, 2), "Cara Núñez": (238, 1)}


def test_durations_in_every_spelling_and_refusals():
    csv = "Name,Email,Duration\r\nA One,a@x.org,1h 5m 40s\r\nB Two,b@x.org,45:20\r\nC,c@x.org,01:02:03\r\n"
    people = {p.name: p.minutes for p in read_report("teams", csv.encode())}
    assert people == {"A One": 66, "B Two": 45, "C": 62}
    with pytest.raises(Invalid) as bad:
        read_report("teams", b"Name,Email,Duration\r\nA,a@x.org,a while\r\n")
    assert "duration" in bad.value.fields["file"]
    with pytest.raises(Invalid) as empty:
        read_report("zoom", b"   ")
    assert empty.value.fields == {"file": "is empty"}
    with pytest.raises(Invalid) as binary:
        read_report("zoom", bytes(range(256)) * 4)
    assert "binary" in binary.value.fields["file"]
    with pytest.raises(Invalid) as platform:
        read_report("webex", b"x")
    assert set(platform.value.fields) == {"platform"}
