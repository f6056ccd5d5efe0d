"""What every endpoint reads off a request: the lifespan's state and ids from the path."""

from __future__ import annotations

from starlette.requests import Request

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import Invalid, NotFound

# Ids are 32-bit INTEGER columns: PostgreSQL refuses a larger parameter outright.
MAX_ID = 2**31 - 1


def parse_id(raw: object) -> int | None:
    """A path segment as a row id, or ``None`` when it cannot name a row.

    ASCII digits only (``"²".isdigit()`` is true but ``int()`` refuses it), no leading
    zeros beyond a plain number's, and within the column's range.
    """
    text = str(raw)
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def path_id(request: Request, name: str) -> int | None:
    """The path parameter ``name`` as a row id, or ``None`` (pages answer their own 404)."""
    return parse_id(request.path_params[name])


def path_int(request: Request, name: str) -> int:
    """The path parameter ``name`` as a row id; raises ``NotFound`` (the API's JSON 404)."""
    raw = request.path_params[name]
    value = parse_id(raw)
    if value is None:
        raise NotFound(name.removesuffix("_id"), raw)
    return value


def db_of(request: Request) -> Database:
    db: Database = request.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def wanted_format(request: Request) -> str:
    """``?format=``: ``json`` (the default) or ``csv``, given at most once; raises ``Invalid``."""
    wanted = request.query_params.getlist("format")
    if len(wanted) > 1 or (wanted and wanted[0] not in ("json", "csv")):
        raise Invalid({"format": "must be json or csv, given once"})
    return wanted[0] if wanted else "json"
