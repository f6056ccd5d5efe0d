"""Read calendars back with three independent parsers: icalendar, vobject and ical.js (node).

Each reader returns the same plain shape, so a test can demand that all three agree with the
database: ``{uid: {"start", "end", "summary", "location", "description", "status", "sequence",
"url", "attendees"}}`` with ``start``/``end`` as aware UTC datetimes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
import vobject

JS_DIR = Path(__file__).resolve().parent / "js"


def ensure_icaljs() -> None:
    """Install ical.js from the committed lock file when the folder is missing (never a browser)."""
    if (JS_DIR / "node_modules" / "ical.js" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to install ical.js for the calendar tests"
    subprocess.run(
        [npm, "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
        check=True,
        capture_output=True,
        timeout=300,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def with_icalendar(data: bytes) -> dict[str, dict[str, Any]]:
    cal = icalendar.Calendar.from_ical(data)
    events: dict[str, dict[str, Any]] = {}
    for ev in cal.walk("VEVENT"):
        attendees = ev.get("attendee")
        if attendees is not None and not isinstance(attendees, list):
            attendees = [attendees]
        events[str(ev["uid"])] = {
            "start": ev.start.astimezone(UTC),
            "end": ev.end.astimezone(UTC),
            "summary": _text(ev.get("summary")),
            "location": _text(ev.get("location")),
            "description": _text(ev.get("description")),
            "status": _text(ev.get("status")),
            "sequence": int(ev.get("sequence", 0)),
            "url": _text(ev.get("url")),
            "attendees": [(str(a), a.params.get("CN")) for a in attendees or []],
        }
    return events


def with_icalendar_vtimezones(data: bytes) -> dict[str, tuple[datetime, datetime]]:
    """Instants computed from the file's own VTIMEZONEs only, the way Outlook reads them.

    icalendar resolves IANA names from its zone database, so the VTIMEZONEs are renamed to
    names no database knows before they are turned into tzinfo objects.
    """
    cal = icalendar.Calendar.from_ical(data)
    zones = {}
    for index, vtz in enumerate(cal.walk("VTIMEZONE")):
        private = icalendar.Timezone.from_ical(vtz.to_ical())
        renamed = f"Private/{index}-{id(cal)}-{vtz['tzid']}"
        private["TZID"] = renamed
        zones[str(vtz["tzid"])] = private.to_tz()
    result: dict[str, tuple[datetime, datetime]] = {}
    for ev in cal.walk("VEVENT"):
        instants = []
        for name in ("DTSTART", "DTEND"):
            prop = ev[name]
            wall = prop.dt
            tzid = prop.params.get("TZID")
            if tzid is None:
                assert wall.tzinfo is not None and wall.utcoffset().total_seconds() == 0
                instants.append(wall.astimezone(UTC))
            else:
                assert tzid in zones, f"no VTIMEZONE for TZID {tzid}"
                local = wall.replace(tzinfo=None).replace(tzinfo=zones[tzid])
                instants.append(local.astimezone(UTC))
        result[str(ev["uid"])] = (instants[0], instants[1])
    return result


def with_vobject(data: bytes) -> dict[str, dict[str, Any]]:
    cal = vobject.readOne(data.decode("utf-8"))
    events: dict[str, dict[str, Any]] = {}
    for ev in getattr(cal, "vevent_list", []):

        def get(name: str, ev: Any = ev) -> str | None:
            item = getattr(ev, name, None)
            return None if item is None else str(item.value)

        attendees = [
            (str(a.value), a.params.get("CN", [None])[0]) for a in getattr(ev, "attendee_list", [])
        ]
        events[str(ev.uid.value)] = {
            "start": ev.dtstart.value.astimezone(UTC),
            "end": ev.dtend.value.astimezone(UTC),
            "summary": get("summary"),
            "location": get("location"),
            "description": get("description"),
            "status": get("status"),
            "sequence": int(get("sequence") or 0),
            "url": get("url"),
            "attendees": attendees,
        }
    return events


def with_icaljs(files: list[Path]) -> list[dict[str, Any]]:
    """Parse each file with ical.js; calendars in the order given."""
    ensure_icaljs()
    node = shutil.which("node")
    assert node is not None, "node is needed to run ical.js"
    done = subprocess.run(
        [node, str(JS_DIR / "parse_ics.mjs"), *map(str, files)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    calendars: list[dict[str, Any]] = json.loads(done.stdout)
    for cal in calendars:
        by_uid = {}
        for ev in cal["events"]:
            by_uid[ev["uid"]] = {
                **ev,
                "start": datetime.fromtimestamp(ev["start"], UTC),
                "end": datetime.fromtimestamp(ev["end"], UTC),
                "attendees": [(a["address"], a["cn"]) for a in ev["attendees"]],
            }
        cal["events"] = by_uid
    return calendars
