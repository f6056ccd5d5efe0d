"""The per-client limit on public registration: 429 with Retry-After, exact across instances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from starlette.requests import Request

from scheduler.app import create_app
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.models import RateLimitWindow
from scheduler.web.ratelimit import client_key, hit
from tests.helpers import make_course, make_session, person

# A fixed minute, 5 seconds in, so no test straddles a window boundary by accident.
MINUTE = datetime.now(UTC).replace(second=5, microsecond=0) + timedelta(minutes=1)


class Instance:
    """One app (as if one server process) with a client per source address."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def client(self, ip: str = "203.0.113.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def instances(settings: Settings) -> AsyncIterator[list[Instance]]:
    limited = settings.with_(rate_limit=3)
    apps = [create_app(limited), create_app(limited)]
    async with LifespanManager(apps[0]) as one, LifespanManager(apps[1]) as two:
        yield [Instance(one.app), Instance(two.app)]


async def test_over_the_limit_is_429_with_retry_after_in_error_shape(
    instances: list[Instance], client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=50)
    url = f"/api/sessions/{session['id']}/registrations"
    with time_machine.travel(MINUTE, tick=False):
        async with instances[0].client() as c:
            statuses = [(await c.post(url, json=person(n))).status_code for n in range(3)]
            refused = await c.post(url, json=person(99))
    assert statuses == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert set(refused.json()["error"]) == {"code", "message", "fields"}
    assert int(refused.headers["retry-after"]) == 55
    # The refused attempt took no seat.
    roster = (await client.get(url, headers=admin_headers)).json()["registrations"]
    assert sorted(r["email"] for r in roster) == [f"officer{n}@example.org" for n in range(3)]


async def test_invalid_attempts_count_and_other_clients_are_not_affected(
    instances: list[Instance], client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    url = f"/api/sessions/{session['id']}/registrations"
    with time_machine.travel(MINUTE, tick=False):
        async with instances[0].client("198.51.100.1") as noisy:
            bad = [(await noisy.post(url, json={"name": ""})).status_code for _ in range(3)]
            assert (await noisy.post(url, json=person(1))).status_code == 429
        async with instances[0].client("198.51.100.2") as quiet:
            assert (await quiet.post(url, json=person(2))).status_code == 201
    assert bad == [422, 422, 422]


async def test_limit_is_exact_across_instances(
    instances: list[Instance], client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Alternating between two instances does not double the allowance."""
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=50)
    url = f"/api/sessions/{session['id']}/registrations"
    statuses = []
    with time_machine.travel(MINUTE, tick=False):
        for n in range(6):
            async with instances[n % 2].client() as c:
                statuses.append((await c.post(url, json=person(n))).status_code)
    assert statuses == [201, 201, 201, 429, 429, 429]


async def test_a_new_minute_opens_the_door_again_and_clears_old_windows(
    instances: list[Instance],
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=50)
    url = f"/api/sessions/{session['id']}/registrations"
    with time_machine.travel(MINUTE, tick=False):
        async with instances[0].client() as c:
            for n in range(3):
                await c.post(url, json=person(n))
            assert (await c.post(url, json=person(3))).status_code == 429
    with time_machine.travel(MINUTE + timedelta(seconds=60), tick=False):
        async with instances[1].client() as c:
            assert (await c.post(url, json=person(4))).status_code == 201
    async with db.read() as conn:
        windows = (
            await conn.execute(select(func.count()).select_from(RateLimitWindow))
        ).scalar_one()
    assert windows == 1


async def test_zero_turns_the_limit_off(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    assert settings.rate_limit == 0
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=50)
    url = f"/api/sessions/{session['id']}/registrations"
    statuses = {(await client.post(url, json=person(n))).status_code for n in range(40)}
    assert statuses == {201}


async def test_hit_counts_per_bucket_and_reports_the_rest_of_the_window(db: Database) -> None:
    start = 1_800_000_000 - 1_800_000_000 % 60
    assert await hit(db, "register", "a", now=start + 10) == (1, 50)
    assert await hit(db, "register", "a", now=start + 59) == (2, 1)
    assert await hit(db, "login", "a", now=start + 59) == (1, 1)
    assert await hit(db, "register", "a", now=start + 60) == (1, 60)


def _request(host: str) -> Request:
    return Request({"type": "http", "client": (host, 1234), "headers": []})


def test_client_key_groups_ipv6_by_64_and_unwraps_mapped_ipv4() -> None:
    assert client_key(_request("2001:db8:1:2:aaaa::1")) == client_key(
        _request("2001:db8:1:2:bbbb::9")
    )
    assert client_key(_request("2001:db8:1:2::1")) != client_key(_request("2001:db8:1:3::1"))
    assert client_key(_request("::ffff:192.0.2.4")) == "192.0.2.4"
    assert client_key(_request("192.0.2.4")) == "192.0.2.4"


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-peer"])
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    trusted: bool, postgres_url: str, live_server_factory: Any
) -> None:
    """Behind a trusted proxy each forwarded client has its own limit; otherwise the header
    is ignored, so a client cannot dodge the limit by inventing addresses."""
    server = live_server_factory(
        postgres_url,
        SCHEDULER_RATE_LIMIT="2",
        SCHEDULER_TRUSTED_PROXIES="127.0.0.1" if trusted else "192.0.2.250",
    )
    url = f"{server.url}/api/sessions/999999/registrations"
    statuses = [
        httpx.post(url, json=person(n), headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
        for n in range(4)
    ]
    # An unknown session is 404 once counted; the limit answers first when it is exceeded.
    assert statuses == ([404] * 4 if trusted else [404, 404, 429, 429])


async def test_oversized_headers_are_refused_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/courses", headers={"X-Big": "a" * 20_000})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    fine = await client.get("/api/courses", headers={"X-Big": "a" * 8_000})
    assert fine.status_code == 200


def test_oversized_headers_are_refused_by_a_real_server(
    postgres_url: str, live_server_factory: Any
) -> None:
    """uvicorn refuses headers past its own cap before the app sees them.

    The server answers and closes at once. Whatever of the request it had not read yet makes the
    kernel reset the connection, and on Linux a reset can discard the answer before the client
    reads it. So a reset counts as refused too; what must never happen is a 2xx, and the server
    must go on serving.
    """
    server = live_server_factory(postgres_url)
    for size in (20_000, 70_000):
        try:
            response = httpx.get(f"{server.url}/healthz", headers={"X-Big": "a" * size})
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            continue
        assert response.status_code in (400, 431), (size, response.status_code)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
