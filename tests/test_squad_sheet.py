"""Reading a squad's CSV file: columns, encodings, blank lines and the row limit."""

from __future__ import annotations

import pytest

from scheduler.errors import Invalid
from scheduler.squad_sheet import MAX_CSV_BYTES, clean_rows, read_csv
from scheduler.squads import MAX_BATCH


def refused(data: bytes) -> str:
    with pytest.raises(Invalid) as caught:
        read_csv(data)
    return caught.value.fields["file"]


def test_columns_in_any_order_and_case_blank_lines_skipped():
    rows = read_csv(
        b"EMAIL, Name ,post_state\r\nann@a.example,Ann Able,il\r\n,,\r\n\r\nb@a.example,Ben,\r\n"
    )
    assert rows == [
        {
            "name": "Ann Able",
            "email": "ann@a.example",
            "rank": "",
            "post_id": "",
            "post_state": "il",
        },
        {"name": "Ben", "email": "b@a.example", "rank": "", "post_id": "", "post_state": ""},
    ]


def test_wrong_files_say_what_is_wrong():
    assert "unknown: badge" in refused(b"name,email,badge\nA,a@a.example,1\n")
    assert "missing: email" in refused(b"name\nAnn\n")
    assert "must name the columns" in refused(b"name,email,email\nA,a@a.example,b\n")
    assert refused(b"") == "is empty"
    assert refused("name,email\nJosé,j@a.example\n".encode("latin-1")) == (
        "must be a CSV file in UTF-8 text"
    )
    assert refused(b"name,email\n") == "enter at least one officer"
    assert "larger than 2 MiB" in refused(b"x" * (MAX_CSV_BYTES + 1))


def test_the_row_limit_counts_every_row():
    at_limit = b"name,email\n" + b"".join(b"O%d,o%d@a.example\n" % (n, n) for n in range(MAX_BATCH))
    assert len(read_csv(at_limit)) == MAX_BATCH
    over = b"name,email\n" + b"".join(b"O%d,o%d@a.example\n" % (n, n) for n in range(10_000))
    assert refused(over) == (
        f"has 10000 officers; at most {MAX_BATCH} fit in one batch, so split the file"
    )


def test_clean_rows_drops_empty_rows_and_strips():
    assert clean_rows([{"name": " Ann ", "email": "a@a.example "}, {"name": " "}]) == [
        {"name": "Ann", "email": "a@a.example", "rank": "", "post_id": "", "post_state": ""}
    ]
