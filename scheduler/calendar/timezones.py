"""VTIMEZONE components that Outlook reads: yearly ``RRULE`` s with ``BYDAY`` from a zone's transitions.

Google Calendar, Apple Calendar and Thunderbird recognise IANA names and use their own rules;
Outlook (desktop and web) trusts only the VTIMEZONE. Outlook ignores ``RDATE`` inside a
VTIMEZONE and wants yearly ``RRULE`` s with ``BYDAY`` (the form Google and Outlook themselves
export), so the VTIMEZONEs are built here from the zone's transitions as yearly rules instead of
with icalendar's ``RDATE`` form. ``UTC`` sessions are written with a ``Z`` and no VTIMEZONE.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Timezone, TimezoneDaylight, TimezoneStandard

from scheduler.catalog import SessionView

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "Etc/GMT"})
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class _Transition:
    at: datetime  # the UTC instant
    before: timedelta
    after: timedelta
    dst: bool
    name: str

    @property
    def onset(self) -> datetime:
        """Local wall-clock time of the change, read in the offset before it (RFC 5545)."""
        return (self.at + self.before).replace(tzinfo=None)


def _state(zone: tzinfo, instant: datetime) -> tuple[timedelta, bool, str]:
    local = instant.astimezone(zone)
    return (
        local.utcoffset() or timedelta(0),
        bool(local.dst()),
        local.tzname() or "",
    )


def _transitions(zone: tzinfo, start: datetime, end: datetime) -> list[_Transition]:
    """Every change of offset, DST flag or abbreviation in ``[start, end)``, to the minute."""
    found: list[_Transition] = []
    step = 12 * 60  # minutes; no zone changes twice within half a day

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=minute)

    here, state = 0, _state(zone, start)
    total = int((end - start).total_seconds() // 60)
    while here < total:
        there = here + step
        next_state = _state(zone, at(there))
        if next_state != state:
            low, high = here, there
            while high - low > 1:
                mid = (low + high) // 2
                if _state(zone, at(mid)) == state:
                    low = mid
                else:
                    high = mid
            after = _state(zone, at(high))
            found.append(_Transition(at(high), state[0], after[0], after[1], after[2]))
            next_state = after
        here, state = there, next_state
    return found


def _rule_days(onset: datetime) -> set[str]:
    """The BYDAY forms that name this date: ``2SU`` and, for a last weekday, ``-1SU``."""
    weekday = _WEEKDAYS[onset.weekday()]
    forms = {f"{(onset.day - 1) // 7 + 1}{weekday}"}
    if onset.day + 7 > stdlib_calendar.monthrange(onset.year, onset.month)[1]:
        forms.add(f"-1{weekday}")
    return forms


def _observance(transition: _Transition, onset: datetime) -> TimezoneStandard | TimezoneDaylight:
    part = TimezoneDaylight() if transition.dst else TimezoneStandard()
    part.add("dtstart", onset)
    part.add("tzoffsetfrom", transition.before)
    part.add("tzoffsetto", transition.after)
    if transition.name:
        part.add("tzname", transition.name)
    return part


@lru_cache(maxsize=512)
def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tzid`` that is right for any instant in ``first_year..last_year``.

    Observances are yearly ``RRULE`` s with ``BYDAY`` (what Outlook reads), one per run of years
    in which the zone followed the same rule; a rule that stops inside the range gets ``UNTIL``.
    Pure and cached: the same arguments always give the same component, which callers must not
    change. Raises ``ZoneInfoNotFoundError`` for an unknown zone.
    """
    zone = ZoneInfo(tzid)
    scan_from = datetime(first_year - 1, 1, 1, tzinfo=UTC)
    scan_to = datetime(last_year + 2, 1, 1, tzinfo=UTC)
    changes = _transitions(zone, scan_from, scan_to)
    component = Timezone()
    component.add("tzid", tzid)
    covered_from = datetime(first_year, 1, 1, tzinfo=UTC)
    if not changes or changes[0].at > covered_from:
        offset, dst, name = _state(zone, scan_from)
        start = datetime(1970, 1, 1) if not changes else scan_from.replace(tzinfo=None)
        fixed = _Transition(scan_from, offset, offset, dst, name)
        component.add_component(_observance(fixed, start))

    # Group the changes into runs that one yearly rule describes.
    runs: list[tuple[list[_Transition], set[str]]] = []
    open_run: dict[tuple[Any, ...], int] = {}
    for change in changes:
        onset = change.onset
        key = (change.dst, change.before, change.after, change.name, onset.month, onset.time())
        forms = _rule_days(onset)
        index = open_run.get(key)
        if index is not None:
            run, common = runs[index]
            if run[-1].onset.year == onset.year - 1 and common & forms:
                run.append(change)
                runs[index] = (run, common & forms)
                continue
        open_run[key] = len(runs)
        runs.append(([change], forms))

    last_scanned_year = scan_to.year - 1
    for run, forms in runs:
        first = run[0]
        part = _observance(first, first.onset)
        if len(run) > 1 or run[-1].onset.year == last_scanned_year:
            rule: dict[str, Any] = {
                "freq": "yearly",
                "bymonth": first.onset.month,
                # Prefer "last Sunday" where it fits: it stays right in years with five Sundays.
                "byday": sorted(forms, key=lambda f: (not f.startswith("-"), f))[0],
            }
            if run[-1].onset.year != last_scanned_year:
                rule["until"] = run[-1].at
            if len(run) > 1 or "until" not in rule:
                part.add("rrule", rule)
        component.add_component(part)
    return component


def zone_of(session: SessionView) -> tzinfo:
    return UTC if session.timezone in _UTC_NAMES else ZoneInfo(session.timezone)


def add_timezones(cal: Calendar, sessions: Iterable[SessionView]) -> None:
    years: dict[str, tuple[int, int]] = {}
    for session in sessions:
        if session.timezone in _UTC_NAMES:
            continue
        zone = ZoneInfo(session.timezone)
        low = session.starts_at.astimezone(zone).year
        high = session.ends_at.astimezone(zone).year
        seen = years.get(session.timezone)
        years[session.timezone] = (min(seen[0], low), max(seen[1], high)) if seen else (low, high)
    for tzid in sorted(years):
        cal.add_component(vtimezone(tzid, *years[tzid]))
