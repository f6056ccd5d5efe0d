"""The command line, run as a user runs it: a real ``python -m scheduler`` process each time."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import text

from scheduler import migrate
from scheduler.db import Database


@pytest.fixture
def run(tmp_path: Path):
    """Run ``scheduler ARGS`` in a scratch directory against one database."""

    def call(url: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            key: value for key, value in os.environ.items() if not key.startswith("SCHEDULER_")
        }
        environ.update(SCHEDULER_DATABASE_URL=url, **env)
        return subprocess.run(
            [sys.executable, "-m", "scheduler", *args],
            cwd=tmp_path,
            env=environ,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return call


async def query(url: str, sql: str) -> list[Any]:
    db = Database.from_url(url)
    try:
        async with db.read() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await db.dispose()


async def test_migrate_twice_is_idempotent(run, empty_database_url):
    first = run(empty_database_url, "migrate")
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout
    version = await migrate.current(empty_database_url)
    assert version is not None
    # Data written between the two runs survives the second one untouched.
    db = Database.from_url(empty_database_url)
    try:
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO courses (slug, title, description, audience, provider, delivery,"
                    " created_at, updated_at) VALUES ('kept', 'Kept', '', '', '', 'in_person',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await db.dispose()
    second = run(empty_database_url, "migrate")
    assert second.returncode == 0, second.stderr
    assert await migrate.current(empty_database_url) == version
    assert [r.slug for r in await query(empty_database_url, "SELECT slug FROM courses")] == ["kept"]


async def test_token_create_prints_a_working_token_and_stores_only_its_hash(
    run, database_url, client
):
    done = run(database_url, "token", "create", "my laptop")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("sch_") and "\n" not in token
    assert "not shown again" in done.stderr  # the warning stays out of $(...) captures

    stored = await query(database_url, "SELECT * FROM api_tokens")
    assert len(stored) == 1
    assert stored[0].name == "my laptop"
    assert stored[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(stored)

    response = await client.post(
        "/api/courses",
        json={"slug": "report-writing", "title": "Report Writing"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    wrong = await client.post(
        "/api/courses",
        json={"slug": "other", "title": "Other"},
        headers={"Authorization": f"Bearer {token[:-1]}x"},
    )
    assert wrong.status_code == 401


def test_token_create_refuses_an_empty_name(run, database_url):
    done = run(database_url, "token", "create", "  ")
    assert done.returncode == 1
    assert "name" in done.stderr and done.stdout == ""


async def test_admin_create_reads_the_password_from_stdin(run, database_url):
    password = "correct horse battery staple"
    done = run(
        database_url,
        "admin",
        "create",
        "Chief@Example.org",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert "chief@example.org" in done.stdout
    assert password not in done.stdout + done.stderr
    (admin,) = await query(database_url, "SELECT email, password_hash FROM admin_users")
    assert admin.email == "chief@example.org"
    assert admin.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(admin.password_hash, password)

    again = run(
        database_url,
        "admin",
        "create",
        "chief@example.org",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert again.returncode == 1 and "exists" in again.stderr


async def test_admin_create_refuses_a_short_password_and_writes_nothing(run, database_url):
    done = run(
        database_url, "admin", "create", "a@example.org", "--password-stdin", stdin="short\n"
    )
    assert done.returncode == 1
    assert "password" in done.stderr
    assert await query(database_url, "SELECT id FROM admin_users") == []


async def test_admin_password_resets_from_stdin_and_the_old_one_stops_working(run, database_url):
    old, new = "correct horse battery staple", "a new and longer passphrase"
    made = run(database_url, "admin", "create", "chief@example.org", "--password-stdin", stdin=old)
    assert made.returncode == 0, made.stderr
    done = run(
        database_url, "admin", "password", "Chief@Example.org", "--password-stdin", stdin=new + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert "chief@example.org" in done.stdout and new not in done.stdout + done.stderr
    (admin,) = await query(database_url, "SELECT password_hash FROM admin_users")
    assert PasswordHasher().verify(admin.password_hash, new)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(admin.password_hash, old)

    short = run(
        database_url, "admin", "password", "chief@example.org", "--password-stdin", stdin="x"
    )
    assert short.returncode == 1 and "password" in short.stderr
    nobody = run(
        database_url, "admin", "password", "who@example.org", "--password-stdin", stdin=new
    )
    assert nobody.returncode == 1 and "does not exist" in nobody.stderr
    (same,) = await query(database_url, "SELECT password_hash FROM admin_users")
    assert same.password_hash == admin.password_hash


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("SCHEDULER_RATE_LIMIT", "lots", "serve"),
        ("SCHEDULER_BASE_URL", "not a url", "migrate"),
        ("SCHEDULER_REMINDER_OFFSETS", "soon", "demo"),
        ("SCHEDULER_RUN_JOBS", "maybe", "serve"),
    ],
)
def test_a_bad_setting_exits_non_zero_naming_the_variable(run, sqlite_url, name, value, command):
    done = run(sqlite_url, command, **{name: value})
    assert done.returncode == 2
    assert name in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # stopped before doing anything


def test_a_bad_database_url_exits_non_zero_naming_the_variable(run):
    done = run("mysql://root@localhost/x", "migrate")
    assert done.returncode != 0
    assert "SCHEDULER_DATABASE_URL" in done.stderr and "Traceback" not in done.stderr


async def test_demo_twice_adds_nothing_the_second_time(run, empty_database_url):
    counts = (
        "SELECT (SELECT count(*) FROM courses) AS courses,"
        " (SELECT count(*) FROM training_sessions) AS sessions,"
        " (SELECT count(*) FROM seat_pools) AS pools"
    )
    first = run(empty_database_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "sessions added" in first.stdout
    (after_first,) = await query(empty_database_url, counts)
    assert after_first.courses >= 3 and after_first.sessions >= 6
    second = run(empty_database_url, "demo")
    assert second.returncode == 0, second.stderr
    assert "already loaded" in second.stdout
    assert await query(empty_database_url, counts) == [after_first]
    # Managing Bias leads the catalogue, with every kind of session.
    modes = await query(
        empty_database_url,
        "SELECT DISTINCT s.mode FROM training_sessions s JOIN courses c ON c.id = s.course_id"
        " WHERE c.slug = 'managing-bias'",
    )
    assert {m.mode for m in modes} == {"in_person", "virtual", "hybrid"}


async def test_admin_remove_takes_the_admin_and_their_account(run, database_url):
    made = run(
        database_url, "admin", "create", "chief@example.org", "--password-stdin", stdin="x" * 20
    )
    assert made.returncode == 0, made.stderr
    done = run(database_url, "admin", "remove", "Chief@Example.org")
    assert done.returncode == 0, done.stderr
    assert "removed" in done.stdout
    assert await query(database_url, "SELECT id FROM admin_users") == []
    assert await query(database_url, "SELECT id FROM accounts") == []
    again = run(database_url, "admin", "remove", "chief@example.org")
    assert again.returncode == 1 and "does not exist" in again.stderr
