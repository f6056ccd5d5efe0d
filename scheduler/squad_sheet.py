"""A squad as a coordinator types or uploads it: rows of officers, read and checked before the
batch is registered.

``read_csv`` turns an upload into rows (columns ``name,email,rank,post_id,post_state``, a header
line first); ``preview`` lists each row's problems without writing anything: the field errors
``RegistrationInput.parse`` finds, a second row with the same email, and an officer who already
has an active registration in the session. The batch itself is registered by
``squads.register_batch``, which checks every row again under the session's lock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.errors import Invalid
from scheduler.models import CANCELLED, Registration
from scheduler.squads import MAX_BATCH, BatchInput, check_rows

COLUMNS = ("name", "email", "rank", "post_id", "post_state")
REQUIRED_COLUMNS = ("name", "email")
# A file far past the batch limit is refused without being read to the end.
MAX_CSV_BYTES = 2 * 1024 * 1024

Row = dict[str, str]


@dataclass(frozen=True)
class RowCheck:
    """One row as typed and what is wrong with it (field name to the reason; empty: fine)."""

    index: int
    values: Row
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def blank(row: Row) -> bool:
    return not any(row.get(c, "").strip() for c in COLUMNS)


def clean_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows with something typed in them, each with every column (stripped)."""
    return [{c: row.get(c, "").strip() for c in COLUMNS} for row in rows if not blank(row)]


def check_size(rows: Sequence[Row], field_name: str = "rows") -> None:
    """Raises ``Invalid`` naming ``field_name`` for no rows or more than a batch holds."""
    if not rows:
        raise Invalid({field_name: "enter at least one officer"})
    if len(rows) > MAX_BATCH:
        raise Invalid(
            {
                field_name: f"has {len(rows)} officers; at most {MAX_BATCH} fit in one batch, "
                "so split the list"
            }
        )


def read_csv(data: bytes) -> list[Row]:
    """The officers of an uploaded CSV file (UTF-8, a header line naming the columns).

    Raises ``Invalid`` on ``file``: not UTF-8 text, unknown or missing columns, no rows, or
    more rows than one batch holds.
    """
    if len(data) > MAX_CSV_BYTES:
        raise Invalid({"file": f"is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB"})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid({"file": "must be a CSV file in UTF-8 text"}) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise Invalid({"file": "is empty"}) from None
    except csv.Error as exc:
        raise Invalid({"file": f"is not a readable CSV file ({exc})"}) from exc
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise Invalid(
            {
                "file": "the first line must name the columns "
                + ",".join(COLUMNS)
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            }
        )
    rows: list[Row] = []
    try:
        for line in reader:
            row = {name: value for name, value in zip(header, line, strict=False)}
            if blank(row):
                continue
            rows.append(row)
            if len(rows) > MAX_BATCH:
                break  # enough to say it is too long; the rest is not read
    except csv.Error as exc:
        raise Invalid({"file": f"is not a readable CSV file ({exc})"}) from exc
    rows = clean_rows(rows)
    if len(rows) > MAX_BATCH:
        total = len(rows) + sum(1 for line in reader if any(v.strip() for v in line))
        raise Invalid(
            {
                "file": f"has {total} officers; at most {MAX_BATCH} fit in one batch, so split "
                "the file"
            }
        )
    check_size(rows, "file")
    return rows


def people(rows: Sequence[Row]) -> list[dict[str, str | None]]:
    """The rows as the batch's ``people``: blank optional fields left out."""
    return [{k: (v or None) for k, v in row.items()} for row in rows]


async def preview(
    conn: AsyncConnection, session_id: int, agency_id: int, attendance: str, rows: Sequence[Row]
) -> list[RowCheck]:
    """Every row's problems, as the batch would find them now; writes nothing."""
    batch = BatchInput(agency_id, attendance, people(rows), None)
    checked = check_rows(batch)
    emails = [row["email"].lower() for row in rows if row.get("email")]
    taken = set(
        (
            await conn.scalars(
                select(Registration.email_key).where(
                    Registration.session_id == session_id,
                    Registration.status != CANCELLED,
                    Registration.email_key.in_(emails),
                )
            )
        ).all()
    )
    result: list[RowCheck] = []
    for (index, person, failed), row in zip(checked, rows, strict=True):
        problems: dict[str, str] = {}
        if failed is not None:
            problems = dict(failed.fields or {}) or {"row": failed.error or "invalid row"}
        elif person is not None and person.email.lower() in taken:
            problems = {"email": "already has an active registration in this session"}
        result.append(RowCheck(index, dict(row), problems))
    return result
