"""schemathesis against a real server: every operation of /openapi.json, public and admin.

Requests are generated from the published description (a bounded number per operation) and
sent to a real ``scheduler serve``; no answer may be a 5xx, and every answer must match the
description (status, content type, body schema, headers).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scheduler.db import Database
from scheduler.tokens import create_token
from tests.helpers import session_body

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _token(database_url: str) -> str:
    async def make() -> str:
        db = Database.from_url(database_url)
        try:
            return await create_token(db, "schemathesis")
        finally:
            await db.dispose()

    return asyncio.run(make())


def test_every_operation_matches_the_published_schema(
    database_url: str, live_server_factory: Any
) -> None:
    server = live_server_factory(database_url)
    headers = {"Authorization": f"Bearer {_token(database_url)}"}
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
    # Random ids and slugs mostly miss; half the cases aim at the real ones instead, so the
    # success paths and their schemas are exercised too.
    real = {
        "session_id": made.json()["id"],
        "slug": "managing-bias",
        "token": registered.json()["token"],
    }

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tested += 1

        @given(case=operation.as_strategy(), aim=st.booleans())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any, aim: bool) -> None:
            if aim and case.path_parameters:
                for name in case.path_parameters:
                    if name in real:
                        case.path_parameters[name] = real[name]
            case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collect them all, then fail once
            failures.append(f"{operation.label}: {exc}")
    assert tested >= 10, "the description lists too few operations"
    assert not failures, "\n\n".join(failures)


async def test_ids_beyond_the_integer_column_are_404_not_500(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: PostgreSQL refuses an INTEGER parameter over 2**31-1 (a 500)."""
    for raw in ("9224852842", "2147483648", "²", "١٢"):
        response = await client.get(f"/api/sessions/{raw}")
        assert response.status_code == 404, (raw, response.text)
        assert response.json()["error"]["code"] == "not_found"
