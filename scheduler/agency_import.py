"""Importing a CSV of agencies: check every row, show the preview, then write the good rows.

``check_csv`` reads an upload (columns ``name,state,type,ori``, at most ``MAX_ROWS`` rows) and
stores one ``agency_imports`` row holding the rows that pass and each bad row's errors; a file
that is not CSV, has the wrong columns or too many rows is refused whole (``Invalid``) and
nothing is stored. ``start`` turns a preview into an import and ``run`` writes it in chunks of
``CHUNK`` agencies: each chunk and the progress counter move in one transaction under the
import row's lock, so the progress page shows the truth and a second runner (another process,
a resumed import) only ever continues where the first stopped.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from notifications.models import utcnow
from scheduler import agencies
from scheduler.db import Database
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import Agency, AgencyImport

COLUMNS = ("name", "state", "type", "ori")
MAX_ROWS = 10_000
MAX_BYTES = 4 * 1024 * 1024
CHUNK = 250
# An import nobody has moved for this long is taken over by the next look at its progress.
STALE_AFTER = timedelta(seconds=15)
PREVIEW, IMPORTING, DONE = "preview", "importing", "done"


@dataclass(frozen=True)
class ImportView:
    id: int
    filename: str
    status: str
    rows: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    total: int
    done: int
    created: int
    skipped: int
    updated_at: datetime

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.done * 100 // self.total

    def stale(self, now: datetime) -> bool:
        return self.status == IMPORTING and now - self.updated_at > STALE_AFTER


def _view(row: Any) -> ImportView:
    return ImportView(
        row.id,
        row.filename,
        row.status,
        list(row.rows.get("items", [])),
        list(row.problems.get("items", [])),
        row.total,
        row.done,
        row.created,
        row.skipped,
        row.updated_at,
    )


def read_rows(content: bytes) -> list[dict[str, str]]:
    """The data rows of an upload, keyed by column; raises ``Invalid`` naming ``file``."""
    if not content.strip():
        raise Invalid({"file": "the file is empty"})
    if len(content) > MAX_BYTES:
        raise Invalid({"file": f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB"})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid({"file": "is not a CSV file in UTF-8 text"}) from None
    if "\x00" in text:
        raise Invalid({"file": "is not a CSV file in UTF-8 text"})
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
        if tuple(header) != COLUMNS:
            raise Invalid(
                {
                    "file": f"the first line must name the columns {','.join(COLUMNS)}"
                    f"; it has {','.join(header)[:120] or 'nothing'}"
                }
            )
        rows: list[dict[str, str]] = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines, as spreadsheets leave at the end
            if len(rows) == MAX_ROWS:
                raise Invalid(
                    {"file": f"has more than {MAX_ROWS:,} rows; split it into smaller files"}
                )
            padded = [*values, "", "", "", ""][: len(COLUMNS)]
            row = dict(zip(COLUMNS, (v.strip() for v in padded), strict=True))
            if len(values) > len(COLUMNS) and any(v.strip() for v in values[len(COLUMNS) :]):
                row["_extra"] = "1"
            rows.append(row)
    except csv.Error as exc:
        raise Invalid({"file": f"is not a readable CSV file ({exc})"}) from None
    if not rows:
        raise Invalid({"file": "has a header line but no agencies"})
    return rows


async def check_csv(
    db: Database, filename: str, content: bytes, *, now: datetime | None = None
) -> ImportView:
    """Check every row of an upload against the rules and the directory; store the preview.

    A row fails for a bad field (the ORI's format or state, an unknown type or state), an ORI
    already in the directory or repeated in the file, or a name already listed in its state
    (in the directory or earlier in the file). Raises ``Invalid`` (``file``) for an upload
    refused whole; nothing is stored then.
    """
    now = now or utcnow()
    rows = read_rows(content)
    good: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    async with db.read() as conn:
        known_oris = set(
            (await conn.scalars(select(Agency.ori).where(Agency.ori.is_not(None)))).all()
        )
        known_names = {
            (r.name_key, r.state)
            for r in (
                await conn.execute(
                    select(Agency.name_key, Agency.state).where(Agency.merged_into_id.is_(None))
                )
            ).all()
        }
    seen_oris: dict[str, int] = {}
    seen_names: dict[tuple[str, str], int] = {}
    for line, raw in enumerate(rows, start=2):
        errors: dict[str, str] = {}
        # Spreadsheets capitalise: the type is matched in any case, the ORI may be empty.
        body = {"name": raw["name"], "state": raw["state"], "type": raw["type"].lower()}
        if raw["ori"]:
            body["ori"] = raw["ori"]
        if raw.get("_extra"):
            errors["columns"] = "this line has more than the four columns"
        try:
            values = agencies.parse_agency(body)
        except Invalid as exc:
            errors.update(exc.fields)
            values = {}
        ori = values.get("ori")
        if ori and ori in known_oris:
            errors["ori"] = f"{ori} is already in the directory"
        elif ori and ori in seen_oris:
            errors["ori"] = f"{ori} is also on line {seen_oris[ori]}"
        key = (values.get("name_key", ""), values.get("state", ""))
        if values and key in known_names:
            errors["name"] = f"{values['name']} ({key[1]}) is already in the directory"
        elif values and key in seen_names:
            errors["name"] = f"the same agency is also on line {seen_names[key]}"
        if errors:
            problems.append({"line": line, "row": {k: raw[k] for k in COLUMNS}, "errors": errors})
            continue
        if ori:
            seen_oris[ori] = line
        seen_names[key] = line
        good.append(
            {
                "line": line,
                "name": values["name"],
                "state": values["state"],
                "type": values["type"],
                "ori": ori,
            }
        )
    async with db.write() as conn:
        import_id = (
            await conn.execute(
                insert(AgencyImport)
                .values(
                    filename=(filename or "agencies.csv")[:200],
                    status=PREVIEW,
                    rows={"items": good},
                    problems={"items": problems},
                    total=len(good),
                    done=0,
                    created=0,
                    skipped=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(AgencyImport.id)
            )
        ).scalar_one()
        return await _get(conn, int(import_id))


async def _get(conn: Any, import_id: int) -> ImportView:
    row = (await conn.execute(select(AgencyImport).where(AgencyImport.id == import_id))).first()
    if row is None:
        raise NotFound("import", import_id)
    return _view(row)


async def get_import(db: Database, import_id: int) -> ImportView:
    """An import with its rows and progress; raises ``NotFound``."""
    async with db.read() as conn:
        return await _get(conn, import_id)


async def start(db: Database, import_id: int, *, now: datetime | None = None) -> ImportView:
    """Confirm a preview: it becomes an import ``run`` writes. Starting twice is harmless.

    Raises ``NotFound`` and ``Conflict`` (a preview with no good row).
    """
    now = now or utcnow()
    async with db.write() as conn:
        current = await _get(conn, import_id)
        if current.status == PREVIEW:
            if not current.total:
                raise Conflict("no row of this file can be imported", {"file": "no good rows"})
            await conn.execute(
                update(AgencyImport)
                .where(AgencyImport.id == import_id, AgencyImport.status == PREVIEW)
                .values(status=IMPORTING, updated_at=now)
            )
        return await _get(conn, import_id)


async def run_chunk(db: Database, import_id: int) -> bool:
    """Write the next ``CHUNK`` agencies of an import; returns whether any work was left.

    The import's row is locked first, so two runners never write the same rows; an ORI that
    reached the directory since the preview skips only its row.
    """
    now = utcnow()
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(AgencyImport).where(AgencyImport.id == import_id).with_for_update()
            )
        ).first()
        if row is None or row.status != IMPORTING:
            return False
        items = list(row.rows.get("items", []))[row.done : row.done + CHUNK]
        oris = [i["ori"] for i in items if i["ori"]]
        taken = set(
            (await conn.scalars(select(Agency.ori).where(Agency.ori.in_(oris)))).all()
            if oris
            else []
        )
        fresh = [i for i in items if not i["ori"] or i["ori"] not in taken]
        if fresh:  # one statement per chunk (executemany), not one round trip per agency
            await conn.execute(
                insert(Agency),
                [
                    {
                        "name": item["name"],
                        "name_key": agencies.name_key(item["name"]),
                        "state": item["state"],
                        "type": item["type"],
                        "ori": item["ori"],
                        "feed_token": secrets.token_urlsafe(24),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for item in fresh
                ],
            )
        done = row.done + len(items)
        await conn.execute(
            update(AgencyImport)
            .where(AgencyImport.id == import_id)
            .values(
                done=done,
                created=AgencyImport.created + len(fresh),
                skipped=AgencyImport.skipped + len(items) - len(fresh),
                status=DONE if done >= row.total else IMPORTING,
                updated_at=now,
            )
        )
        return bool(done < row.total)


async def run(db: Database, import_id: int) -> None:
    """Write an import to its end, chunk by chunk. A chunk that lost a race on an ORI with
    another writer is simply tried again: its pre-check then skips that row."""
    attempts = 0
    while True:
        try:
            more = await run_chunk(db, import_id)
        except IntegrityError:
            attempts += 1
            if attempts > 5:
                raise
            continue
        if not more:
            return
