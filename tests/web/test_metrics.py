"""/metrics, /healthz, the request id and JSON logs, read back by independent parsers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from notifications.models import Message, utcnow
from scheduler.db import Database
from tests.helpers import make_course, make_session, person

REGISTER_ROUTE = "/api/sessions/{session_id}/registrations"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and label set."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed: dict[Any, float], name: str, **labels: str) -> float:
    return parsed[(name, frozenset(labels.items()))]


async def add_message(db: Database, status: str, due_ago: timedelta, **extra: Any) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(Message).values(
                kind="confirmation",
                recipient="x@example.org",
                payload={},
                due_at=utcnow() - due_ago,
                status=status,
                attempts=0,
                created_at=utcnow(),
                **extra,
            )
        )


async def test_metrics_count_requests_registrations_seats_and_outbox(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    url = f"/api/sessions/{session['id']}/registrations"
    assert (await client.post(url, json=person(1))).json()["status"] == "confirmed"
    assert (await client.post(url, json=person(2))).json()["status"] == "waitlisted"
    assert (await client.post(url, json=person(2))).status_code == 409
    assert (await client.post(url, json={"name": "x"})).status_code == 422
    assert (await client.get("/api/sessions/999999")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    await add_message(db, "failed", timedelta(hours=1), last_error="550 mailbox unavailable")
    await add_message(db, "pending", timedelta(minutes=10), last_error="421 try later")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    parsed = samples(response.text)

    def requests(route: str, status: str, method: str = "POST") -> float:
        return value(
            parsed, "scheduler_http_requests_total", method=method, route=route, status=status
        )

    assert requests(REGISTER_ROUTE, "201") == 2
    assert requests(REGISTER_ROUTE, "409") == 1
    assert requests(REGISTER_ROUTE, "422") == 1
    assert requests("/api/sessions/{session_id}", "404", "GET") == 1
    assert requests("<unmatched>", "404", "GET") == 1
    # Raw paths never become labels.
    assert f"/api/sessions/{session['id']}" not in response.text
    histogram = value(
        parsed, "scheduler_http_request_duration_seconds_count", method="POST", route=REGISTER_ROUTE
    )
    assert histogram == 4

    outcomes = {
        outcome: value(parsed, "scheduler_registration_attempts_total", outcome=outcome)
        for outcome in ("confirmed", "waitlisted", "duplicate", "invalid")
    }
    assert outcomes == {"confirmed": 1, "waitlisted": 1, "duplicate": 1, "invalid": 1}

    assert value(parsed, "scheduler_database_up") == 1
    assert (
        value(parsed, "scheduler_seats_left", session_id=str(session["id"]), attendance="in_person")
        == 0
    )
    assert value(parsed, "scheduler_registrations", status="confirmed") == 1
    assert value(parsed, "scheduler_registrations", status="waitlisted") == 1
    assert value(parsed, "scheduler_outbox_messages", status="failed") == 1
    assert value(parsed, "scheduler_outbox_send_failures") == 1
    assert value(parsed, "scheduler_outbox_retrying_messages") == 1
    # The registrations' own mail is due now; the oldest due message is the 10-minute-old one.
    assert value(parsed, "scheduler_outbox_due_messages") >= 3
    assert 600 <= value(parsed, "scheduler_outbox_lag_seconds") < 900


async def test_seats_left_follow_capacity_changes(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid", in_person=3, virtual=5)
    await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    await client.patch(
        f"/api/sessions/{session['id']}", json={"virtual_capacity": 8}, headers=admin_headers
    )
    parsed = samples((await client.get("/metrics")).text)
    sid = str(session["id"])
    assert value(parsed, "scheduler_seats_left", session_id=sid, attendance="in_person") == 2
    assert value(parsed, "scheduler_seats_left", session_id=sid, attendance="virtual") == 8


async def test_seats_left_list_only_upcoming_scheduled_sessions(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_course(client, admin_headers)
    upcoming = await make_session(client, admin_headers, in_person=4)
    later = await make_session(client, admin_headers, in_person=6, days=20)
    cancelled = await make_session(client, admin_headers, in_person=5)
    past = await make_session(client, admin_headers, in_person=7, days=-3, record_past=True)
    response = await client.post(
        f"/api/sessions/{cancelled['id']}/cancel",
        json={"reason": "Instructor ill"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    parsed = samples((await client.get("/metrics")).text)
    listed = {
        dict(labels)["session_id"]: left
        for (name, labels), left in parsed.items()
        if name == "scheduler_seats_left"
    }
    assert listed == {str(upcoming["id"]): 4, str(later["id"]): 6}
    assert str(past["id"]) not in listed


async def test_healthz_reports_database_and_outbox_lag(
    client: httpx.AsyncClient, db: Database
) -> None:
    empty = (await client.get("/healthz")).json()
    assert empty == {"status": "ok", "database": "ok", "outbox": {"due": 0, "lag_seconds": 0.0}}
    await add_message(db, "pending", timedelta(minutes=5))
    await add_message(db, "pending", timedelta(minutes=-5))  # not due yet: not lag
    await add_message(db, "sent", timedelta(hours=2))
    body = (await client.get("/healthz")).json()
    assert body["outbox"]["due"] == 1
    assert 300 <= body["outbox"]["lag_seconds"] < 600


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/api/courses", headers={"X-Request-ID": "lb-7f3a.91"})
    assert given.headers["x-request-id"] == "lb-7f3a.91"
    made = await client.get("/api/courses")
    assert len(made.headers["x-request-id"]) == 32
    # A caller cannot smuggle line breaks or huge values into the logs through the id.
    forged = await client.get("/api/courses", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert forged.headers["x-request-id"] != "a b\tc" + "x" * 200
    assert len(forged.headers["x-request-id"]) == 32
    errors = await client.get("/api/sessions/abc", headers={"X-Request-ID": "err-1"})
    assert errors.status_code == 404 and errors.headers["x-request-id"] == "err-1"


def test_json_logs_carry_the_request_id(postgres_url: str, live_server_factory: Any) -> None:
    server = live_server_factory(postgres_url, SCHEDULER_LOG_FORMAT="json")
    response = httpx.get(f"{server.url}/api/courses/nope", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 404
    server.stop()
    entries = []
    for line in server.log.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    access = [e for e in entries if e["logger"] == "scheduler.access"]
    mine = [e for e in access if e["request_id"] == "trace-42"]
    assert len(mine) == 1
    assert mine[0]["status"] == 404
    assert mine[0]["route"] == "/api/courses/{slug}"
    assert mine[0]["level"] == "info"
    # uvicorn's own start-up lines are JSON too, outside any request.
    assert any(
        e["logger"].startswith("uvicorn") and e["request_id"] in ("-", None) for e in entries
    )


def test_metrics_add_up_across_workers(postgres_url: str, live_server_factory: Any) -> None:
    server = live_server_factory(postgres_url, workers=2)
    with httpx.Client(base_url=server.url) as http:
        for _ in range(12):
            # A fresh connection each time, so the kernel spreads them over both workers.
            assert httpx.get(f"{server.url}/api/courses").status_code == 200
        scrapes = [samples(http.get("/metrics").text) for _ in range(4)]
    for parsed in scrapes:
        assert (
            value(
                parsed,
                "scheduler_http_requests_total",
                method="GET",
                route="/api/courses",
                status="200",
            )
            == 12
        )


def test_metrics_need_the_bearer_token_when_one_is_set(
    sqlite_url: str, live_server_factory: Any
) -> None:
    secret = "metrics-scrape-token-0123456789"
    server = live_server_factory(sqlite_url, SCHEDULER_METRICS_TOKEN=secret)
    with httpx.Client(base_url=server.url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": secret}):
            refused = http.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "unauthorized"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "http_requests" not in refused.text
        scraped = http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert scraped.status_code == 200
        assert samples(scraped.text)
        assert http.get("/healthz").status_code == 200  # health stays open for the balancer
    open_server = live_server_factory(sqlite_url)
    assert httpx.get(open_server.url + "/metrics").status_code == 200
