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
  Name``, ``Join Time``, ``Leave Time``, ``Duration``, ``Email``. Durations read ``1h 2m 3s``.
  The first participant table is used, so a person is never counted from two sections.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

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
