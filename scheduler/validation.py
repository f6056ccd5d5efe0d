"""Turn untrusted input (JSON bodies, form posts) into typed values, collecting every field error.

A ``Fields`` object reads one mapping; each ``text``/``integer``/... call either returns a clean
value or records why the field is wrong. ``done()`` raises one ``Invalid`` naming all of them, so
nothing is written when any field is bad.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email

from scheduler.errors import Invalid

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Invisible format characters (Unicode category Cf) that make text read other than it is:
# bidi overrides, embeddings and isolates (U+202A-U+202E, U+2066-U+2069), marks, zero-width
# spaces and joiners, word joiners, the BOM. They are dropped on input, so a roster or a CSV
# shows what was typed. ZWNJ and ZWJ after a non-ASCII character stay: Persian, the Indic
# scripts and emoji sequences need them.
_JOINERS = "\u200c\u200d"
# Dates outside this range are typing errors, and far ones overflow date arithmetic.
MIN_YEAR, MAX_YEAR = 2000, 2199
_MISSING = object()
# Whether an address may have characters outside ASCII before the @. Only a relay that offers
# SMTPUTF8 can deliver to one, so they are refused unless the operator says the relay does
# (SCHEDULER_SMTPUTF8); the app sets this per request from its settings, so the parsers need
# not carry settings around. The dispatcher still checks the relay at send time.
SMTPUTF8_ADDRESSES: ContextVar[bool] = ContextVar("smtputf8_addresses", default=False)
# The USPS codes of the states, DC and the territories: the first two characters of an ORI.
STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
    ]
)
# Slugs that would collide with fixed page addresses such as /admin/courses/new.
RESERVED_SLUGS = frozenset({"new", "edit", "sessions", "calendar.ics"})


class Fields:
    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise Invalid({"body": "must be a JSON object"})
        self.data = data
        self.errors: dict[str, str] = {}

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def fail(self, name: str, why: str) -> None:
        self.errors.setdefault(name, why)

    def text(
        self,
        name: str,
        *,
        max_length: int,
        required: bool = True,
        multiline: bool = False,
        default: str | None = None,
    ) -> str | None:
        value = self.data.get(name, _MISSING)
        if isinstance(value, str) and len(value) > max_length:
            # Counted as sent, spaces and all, as the published schema's maxLength counts.
            self.fail(name, f"must be at most {max_length} characters")
            return default
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return default
        value = strip_invisible(value).strip()
        if not value:
            if required:
                self.fail(name, "is required")
            return default
        if not is_encodable(value):
            self.fail(name, "contains characters that are not valid Unicode text")
            return default
        if not multiline and ("\n" in value or "\r" in value):
            self.fail(name, "must be a single line")
            return default
        if _CONTROL.search(value):
            self.fail(name, "contains control characters")
            return default
        if len(value) > max_length:
            self.fail(name, f"must be at most {max_length} characters")
            return default
        return value

    def email(self, name: str = "email") -> str | None:
        """An address as it is stored: the domain in its ASCII (IDNA) form, ``bücher.de`` as
        ``xn--bcher-kva.de``, so every relay can deliver to it. A local part outside ASCII is
        refused unless ``SMTPUTF8_ADDRESSES`` allows it."""
        value = self.text(name, max_length=320)
        if value is None:
            return None
        try:
            checked = validate_email(
                value, check_deliverability=False, allow_smtputf8=SMTPUTF8_ADDRESSES.get()
            )
        except EmailNotValidError as exc:
            local = value.rpartition("@")[0]
            if local and not local.isascii() and not SMTPUTF8_ADDRESSES.get():
                self.fail(
                    name,
                    "must use only ASCII characters before the @: "
                    "the mail relay cannot deliver to an address like this one",
                )
            else:
                self.fail(name, f"is not a valid email address ({exc})")
            return None
        address = f"{checked.local_part}@{checked.ascii_domain}"
        if len(address) > 320:
            self.fail(name, "must be at most 320 characters")
            return None
        return address

    def slug(self, name: str = "slug") -> str | None:
        value = self.text(name, max_length=80)
        if value is not None and not _SLUG.match(value):
            self.fail(name, "use lowercase letters, digits and hyphens (e.g. managing-bias)")
            return None
        if value in RESERVED_SLUGS:
            self.fail(name, f"{value!r} is reserved; choose another slug")
            return None
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = True) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, f"is required (one of {', '.join(choices)})")
            return None
        if value not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}")
            return None
        return str(value)

    def integer(
        self, name: str, *, minimum: int = 0, maximum: int = 100_000, required: bool = True
    ) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "is required")
            return None
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # JSON has one number type: 3.0 is the integer 3
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be a whole number")
            return None
        if not minimum <= value <= maximum:
            self.fail(name, f"must be between {minimum} and {maximum}")
            return None
        return value

    def url(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, max_length=2000, required=required)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed IPv6 bracket: "http://["
            parts = urlsplit("")
        if parts.scheme not in ("https", "http") or not parts.netloc:
            self.fail(name, "must be an http(s) URL")
            return None
        return value

    def timezone(self, name: str = "timezone") -> ZoneInfo | None:
        value = self.text(name, max_length=64)
        if value is None:
            return None
        return parse_timezone(value, self, name)

    def local_datetime(
        self, name: str, tz: ZoneInfo | None, *, required: bool = True
    ) -> datetime | None:
        value = self.text(name, max_length=40, required=required)
        if value is None:
            return None
        return parse_local_datetime(value, tz, self, name)

    def done(self) -> None:
        if self.errors:
            raise Invalid(self.errors)


def address_key(value: str) -> str:
    """A typed address as it would be stored, lower-cased, to look someone up by it: the
    domain in its ASCII form. Text that is no address comes back stripped and lower-cased."""
    value = value.strip()[:320]
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return value.lower()
    return f"{checked.local_part}@{checked.ascii_domain}".lower()


def strip_invisible(value: str) -> str:
    """``value`` without invisible format characters (see ``_JOINERS``)."""
    if value.isascii():
        return value
    kept = []
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cf" and not (
            char in _JOINERS and index > 0 and not value[index - 1].isascii()
        ):
            continue
        kept.append(char)
    return "".join(kept)


def is_encodable(value: str) -> bool:
    """False for text with lone surrogates (``"\\ud800"`` in JSON), which no database stores."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def state_code(fields: Fields, name: str, *, required: bool = True) -> str | None:
    value = fields.text(name, max_length=40, required=required)
    if value is None:
        return None
    value = value.upper()
    if value not in STATES:
        fields.fail(name, "must be a two-letter US state or territory code, e.g. IL")
        return None
    return value


def parse_timezone(value: str, fields: Fields, name: str) -> ZoneInfo | None:
    if value not in _zone_names():
        fields.fail(name, f"unknown time zone {value!r}; use an IANA name like America/Chicago")
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        fields.fail(name, f"unknown time zone {value!r}")
        return None


def parse_local_datetime(
    value: str, tz: ZoneInfo | None, fields: Fields, name: str
) -> datetime | None:
    """Wall-clock time in ``tz`` (or an explicit offset) to an aware UTC instant.

    A wall-clock time skipped by a daylight-saving jump does not exist and is refused; an
    ambiguous one (the repeated hour) means its first occurrence.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fields.fail(name, "must be an ISO 8601 date and time, e.g. 2027-01-12T09:00")
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        fields.fail(name, f"must be a date between {MIN_YEAR} and {MAX_YEAR}")
        return None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if tz is None:
        return None  # the time zone's own error is already recorded
    local = parsed.replace(tzinfo=tz, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != parsed:
        fields.fail(name, f"{value} does not exist in {tz.key} (a daylight-saving gap)")
        return None
    return instant


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())
