"""schemathesis against a real server: every operation of /openapi.json, public and admin.

The suite runs the command the issue names, ``schemathesis run --checks all``, with a bounded
number of examples per operation and a fixed seed, against a real ``scheduler serve`` holding a
course, a hybrid session and a registration. Every check must hold: no 5xx; statuses, content
types, bodies and headers as described; schema-valid requests taken and schema-invalid ones
refused (``schemathesis.toml`` at the top of the repository names the few rules JSON Schema
cannot say); ``Allow`` on a 405 listing the path's methods. Any finding fails the test with
schemathesis's own report.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from scheduler.db import Database
from scheduler.tokens import create_token
from tests.helpers import session_body

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 4
SEED = 1


def _token(database_url: str) -> str:
    async def make() -> str:
        db = Database.from_url(database_url)
        try:
            return await create_token(db, "schemathesis")
        finally:
            await db.dispose()

    return asyncio.run(make())


def test_schemathesis_checks_all_finds_nothing(
    database_url: str, live_server_factory: Any, tmp_path: Path
) -> None:
    server = live_server_factory(database_url)
    token = _token(database_url)
    headers = {"Authorization": f"Bearer {token}"}
    # Something to find: a course with a hybrid session and a registration on it.
    with httpx.Client(base_url=server.url, headers=headers) as http:
        assert http.post("/api/courses", json={"slug": "managing-bias", "title": "MB"}).is_success
        made = http.post(
            "/api/courses/managing-bias/sessions", json=session_body("hybrid", in_person=2)
        )
        assert made.status_code == 201, made.text
        person = {"name": "A", "email": "a@example.org", "agency": "PD", "attendance": "virtual"}
        registered = http.post(f"/api/sessions/{made.json()['id']}/registrations", json=person)
        assert registered.status_code == 201

    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        "--checks",
        "all",
        "--url",
        server.url,
        "-H",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--report-dir",
        str(tmp_path / "report"),
        f"{server.url}/openapi.json",
    ]
    # From the repository's root, so schemathesis reads its schemathesis.toml.
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    run = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    report = run.stdout + run.stderr
    assert "37 selected" in report or "selected /" in report, report[-3000:]
    assert run.returncode == 0, report[-20000:]
    assert " passed" in report and "failures" not in report.split("SUMMARY")[-1], report[-5000:]


async def test_ids_beyond_the_integer_column_are_404_not_500(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: PostgreSQL refuses an INTEGER parameter over 2**31-1 (a 500)."""
    for raw in ("9224852842", "2147483648", "²", "١٢"):
        response = await client.get(f"/api/sessions/{raw}")
        assert response.status_code == 404, (raw, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_a_405_lists_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: each method is its own route, and Allow named only the first's."""
    cases = {
        "/api/courses": "GET, HEAD, POST",
        "/api/sessions/1": "GET, HEAD, PATCH",
        "/api/sessions/1/registrations": "GET, HEAD, POST",
        "/api/registrations/some-token": "DELETE, GET, HEAD",
    }
    for path, allowed in cases.items():
        answer = await client.options(path)
        assert answer.status_code == 405, (path, answer.text)
        assert answer.headers["allow"] == allowed, path
    assert (await client.put("/api/agencies/1/coordinators")).headers["allow"] == "GET, HEAD, POST"
