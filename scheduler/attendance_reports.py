"""Participant reports exported by Zoom and Microsoft Teams, read into one row per person.

Pure functions, no database: ``read_report(platform, data)`` returns the report's people with
their minutes summed over rejoins, or raises ``Invalid`` naming ``file`` with a reason a person
can act on (wrong platform, wrong columns, not a CSV at all).

- **Zoom** (Reports > Usage > Participants, "Export"): a comma-separated CSV with the columns
  ``Name (Original Name)``, ``User Email``, ``Join Time``, ``Leave Time``, ``Duration (Minutes)``
  and ``Guest``; one row per join, so a rejoin is a second row. "Export with meeting data" puts
  a meeting summary table (``Meeting ID``, ``Topic``, ...) and a blank line above it.
- **Teams** (the meeting's Attendance tab, "Download"): UTF-16 with a byte-order mark and
  tab-separated, in sections: ``1. Summary`` (title, start and end, duration), ``2.
  Participants`` (``Name``, ``First Join``, ``Last Leave``, ``In-Meeting Duration``, ``Email``,
  ``Participant ID (UPN)``, ``Role``; one row per person) and ``3. In-Meeting Activities`` (one
  row per join). The older export has a ``Meeting Summary`` block and one table of ``Full
  Name``, ``Join Time``, ``Leave Time``, ``Duration``, ``Email``; the first (2020) had one
  row per event, ``Full Name``, ``User Action`` (Joined/Left), ``Timestamp``, paired here.
  Durations read ``1h 2m 3s``.
  The first participant table is used, so a person is never counted from two sections.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scheduler.errors import Invalid

PLATFORMS = ("zoom", "teams")
NAME_COLUMNS = ("name (original name)", "name", "full name", "participant name")
EMAIL_COLUMNS = ("user email", "email", "participant id (upn)")
DURATION_COLUMNS = ("duration (minutes)", "in-meeting duration", "duration", "attendance duration")
EXPECTED = {
    "zoom": "Name (Original Name), User Email, Duration (Minutes)",
    "teams": "Name, Email, In-Meeting Duration (or Full Name, Email, Duration)",
}
_DURATION_PART = re.compile(r"(\d+)\s*([hms])")
_CLOCK = re.compile(r"^(\d{1,3}):(\d{2})(?::(\d{2}))?$")
MAX_ROWS = 20_000


@dataclass(frozen=True)
class ReportPerson:
    """One person of a report: every row with the same email (or, without one, name) summed."""

    name: str
    email: str | None
    minutes: int
    rows: int


def name_key(name: str) -> str:
    """A name as matching compares it: accents, case, punctuation and spacing set aside."""
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", letters.casefold()).split())


def read_report(platform: str, data: bytes) -> list[ReportPerson]:
    """The people of a Zoom or Teams participant report; raises ``Invalid`` (``file``)."""
    if platform not in PLATFORMS:
        raise Invalid({"platform": f"must be one of {', '.join(PLATFORMS)}"})
    text = _decode(data)
    rows = list(_rows(text))
    events = _read_events(rows)
    if events is not None:
        return events
    header_at, columns = _find_header(rows)
    if header_at is None or columns is None:
        raise Invalid(
            {
                "file": (
                    f"has no participant table: a {platform.title()} report has the columns "
                    f"{EXPECTED[platform]}"
                )
            }
        )
    name_col, email_col, duration_col = columns
    people: dict[str, ReportPerson] = {}
    for row in rows[header_at + 1 :]:
        if not any(cell.strip() for cell in row):
            break  # the end of this section
        if len(row) == 1 and re.match(r"^\d+\.\s", row[0].strip()):
            break  # the next numbered section of a Teams report
        name = _cell(row, name_col)
        email = _cell(row, email_col).lower() if email_col is not None else ""
        minutes = _minutes(_cell(row, duration_col))
        if minutes is None:
            raise Invalid({"file": f"row {len(people) + 1}: the duration {row!r} is not readable"})
        if not name and not email:
            continue
        key = email if "@" in email else "name:" + name_key(_without_original(name))
        before = people.get(key)
        people[key] = ReportPerson(
            name=before.name if before else _without_original(name),
            email=email if "@" in email else None,
            minutes=(before.minutes if before else 0) + minutes,
            rows=(before.rows if before else 0) + 1,
        )
        if len(people) > MAX_ROWS:
            raise Invalid({"file": f"has more than {MAX_ROWS} participants"})
    return list(people.values())


# Teams' first attendance download (2020): one row per event, "Joined" or "Left".
EVENT_COLUMNS = ("full name", "user action", "timestamp")
TIMESTAMP_FORMATS = (
    "%m/%d/%Y, %I:%M:%S %p",
    "%m/%d/%y, %I:%M:%S %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y, %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def _read_events(rows: list[list[str]]) -> list[ReportPerson] | None:
    """Teams' older ``Full Name, User Action, Timestamp`` export: each Joined is paired with
    the next Left of the same name (a missing Left counts up to the last event of the report).
    None when the report is not in that layout."""
    headers = [
        (at, [cell.strip().casefold() for cell in row])
        for at, row in enumerate(rows)
        if all(name in (c.strip().casefold() for c in row) for name in EVENT_COLUMNS)
    ]
    if not headers:
        return None
    index, cells = headers[0]
    name_col, action_col, time_col = (cells.index(n) for n in EVENT_COLUMNS)
    joined: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    names: dict[str, str] = {}
    rejoins: dict[str, int] = {}
    last: datetime | None = None
    for number, row in enumerate(rows[index + 1 :], start=1):
        if not any(cell.strip() for cell in row):
            break
        name = _cell(row, name_col)
        action = _cell(row, action_col).casefold()
        at = _timestamp(_cell(row, time_col))
        if at is None:
            raise Invalid({"file": f"row {number}: the timestamp is not readable"})
        key = name_key(name)
        names.setdefault(key, name)
        last = at if last is None or at > last else last
        if action.startswith("join"):
            joined.setdefault(key, at)
            rejoins[key] = rejoins.get(key, 0) + 1
        elif action.startswith("left") and key in joined:
            seconds[key] = seconds.get(key, 0) + (at - joined.pop(key)).total_seconds()
    for key, at in joined.items():
        if last is not None:
            seconds[key] = seconds.get(key, 0) + (last - at).total_seconds()
    return [
        ReportPerson(names[key], None, int((seconds.get(key, 0) + 30) // 60), rejoins.get(key, 0))
        for key in names
    ]


def _timestamp(value: str) -> datetime | None:
    for fmt in TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    return None


def _decode(data: bytes) -> str:
    if not data.strip():
        raise Invalid({"file": "is empty"})
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Invalid({"file": "is not readable UTF-16 text"}) from exc
    if b"\x00" in data:
        # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
        for encoding in ("utf-16-le", "utf-16-be"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
                return text
        raise Invalid({"file": "is not a CSV file (it holds binary data)"})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if any(not (c.isprintable() or c in "\r\n\t") for c in text[:4096]):
        raise Invalid({"file": "is not a CSV file (it holds binary data)"})
    return text


def _rows(text: str) -> Iterable[list[str]]:
    lines = text.splitlines()
    sample = "\n".join(lines[:50])
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as exc:
        raise Invalid({"file": f"is not a readable CSV file ({exc})"}) from exc


def _find_header(rows: list[list[str]]) -> tuple[int | None, tuple[int, int | None, int] | None]:
    for index, row in enumerate(rows):
        cells = [cell.strip().casefold() for cell in row]
        name = _first(cells, NAME_COLUMNS)
        duration = _first(cells, DURATION_COLUMNS)
        if name is not None and duration is not None:
            return index, (name, _first(cells, EMAIL_COLUMNS), duration)
    return None, None


def _first(cells: list[str], wanted: tuple[str, ...]) -> int | None:
    for name in wanted:
        if name in cells:
            return cells.index(name)
    return None


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _without_original(name: str) -> str:
    """Zoom writes a renamed participant as ``Shown Name (Original Name)``: keep the first."""
    match = re.match(r"^(.*?)\s*\([^()]*\)$", name)
    return match.group(1).strip() if match and match.group(1).strip() else name


def _minutes(value: str) -> int | None:
    """``45`` (Zoom's minutes), ``1h 2m 3s`` or ``1:02:03`` (Teams) as whole minutes."""
    value = value.strip()
    if re.fullmatch(r"\d{1,6}", value):
        return int(value)
    clock = _CLOCK.match(value)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        if clock.group(3) is None:
            hours, minutes, seconds = 0, hours, minutes
        return hours * 60 + minutes + (1 if seconds >= 30 else 0)
    parts = _DURATION_PART.findall(value)
    if parts and _DURATION_PART.sub("", value).strip() == "":
        seconds = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)
        return (seconds + 30) // 60
    return None
