"""What operators watch: ``GET /metrics`` in Prometheus text, and ``GET /healthz``.

Two kinds of number, gathered two ways:

- **Per-process counters** (requests by route template and status, their latency, registration
  attempts by outcome) live in this app's own ``CollectorRegistry``. With ``serve --workers N``
  each worker is a separate process, so ``scheduler serve`` points prometheus-client's
  multiprocess mode at a shared directory (``PROMETHEUS_MULTIPROC_DIR``) and any worker that
  answers a scrape reports the sum over all of them.
- **Database-derived gauges** (seats left, registrations by status, outbox depth by status,
  send failures, dispatcher lag) are read from the tables at scrape time, so they are right
  whichever instance or worker answers and need no coordination at all.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import any_, func, select, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from notifications import outbox
from notifications.models import MessageStatus, utcnow
from scheduler.db import Database
from scheduler.models import SCHEDULED, Registration, SeatPool, TrainingSession
from scheduler.web.errors import error_response

log = logging.getLogger("scheduler.web.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# What a refused registration attempt is called, by the status it was refused with.
REFUSALS = {
    404: "not_found",
    409: "duplicate",
    410: "closed",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class Metrics:
    """This app's per-process counters, and the rendering of a scrape."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scheduler_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "scheduler_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registrations = Counter(
            "scheduler_registration_attempts",
            "Registration attempts by outcome: confirmed, waitlisted, or why it was refused.",
            ["outcome"],
            registry=self.registry,
        )
        if multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
        # Each (method, route, status)'s children, looked up once: ``labels()`` takes a lock
        # and builds its key on every call. Routes are templates, so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @classmethod
    def from_environment(cls) -> Metrics:
        return cls(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def registration(self, outcome: str) -> None:
        self.registrations.labels(outcome).inc()

    def process_registry(self) -> CollectorRegistry:
        """The registry to expose: this process's, or every worker's in multiprocess mode."""
        if self.multiprocess_dir is None:
            return self.registry
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return merged


def registration_outcome(status: int, noted: str | None) -> str:
    """The outcome label of a registration request answered with ``status``."""
    if noted:
        return noted
    if status < 400:
        return "created"
    return REFUSALS.get(status, "error")


@dataclass
class Snapshot:
    """Numbers read from the database at scrape time."""

    database_up: bool = False
    seats_left: list[tuple[int, str, int]] = field(default_factory=list)
    registrations: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    outbox_due: int = 0
    outbox_lag_seconds: float = 0.0
    send_failures: int = 0
    retrying: int = 0
    sent_last_day: int = 0


UNSENT = (
    MessageStatus.PENDING,
    MessageStatus.SENDING,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
)


async def read_snapshot(db: Database) -> Snapshot:
    """Read every database-derived gauge in one snapshot; a dead database gives ``up=0``."""
    now = utcnow()
    snapshot = Snapshot()
    try:
        async with db.read() as conn:
            upcoming = select(TrainingSession.id).where(
                TrainingSession.status == SCHEDULED, TrainingSession.starts_at > now
            )
            # PostgreSQL plans a join (or IN) as a hash join over the pools of every session
            # ever held, 4 ms with five years of history; = ANY(ARRAY(...)) probes the
            # (session_id, attendance) index for the few upcoming ones instead (0.15 ms).
            wanted = (
                SeatPool.session_id.in_(upcoming)
                if db.is_sqlite
                else SeatPool.session_id == any_(func.array(upcoming.scalar_subquery()))
            )
            seats = await conn.execute(
                select(
                    SeatPool.session_id,
                    SeatPool.attendance,
                    SeatPool.capacity - SeatPool.confirmed - SeatPool.held,
                )
                .where(wanted)
                .order_by(SeatPool.session_id, SeatPool.attendance)
            )
            snapshot.seats_left = [(int(s), str(a), int(n)) for s, a, n in seats.all()]
            # Counts a scrape can afford whatever the history: registrations of sessions not
            # yet over (ix_training_sessions_end), and messages still in play; sent mail is
            # counted over the last day on (status, sent_at), not over every year kept.
            by_status = await conn.execute(
                select(Registration.status, func.count())
                .join(TrainingSession, TrainingSession.id == Registration.session_id)
                .where(TrainingSession.ends_at > now)
                .group_by(Registration.status)
            )
            snapshot.registrations = {str(s): int(n) for s, n in by_status.all()}
            # Named statuses, not ``!= sent``: an inequality cannot use (status, id) and read
            # all 1.8 million rows of five years' sent mail (bench/bench_history.py).
            snapshot.outbox = await outbox.count_by_status(conn, UNSENT)
            snapshot.sent_last_day = await outbox.count_sent_since(conn, now - timedelta(days=1))
            snapshot.outbox_due, snapshot.outbox_lag_seconds = await outbox.lag(conn, now)
            snapshot.send_failures = snapshot.outbox.get(MessageStatus.FAILED, 0)
            snapshot.retrying = await outbox.count_retrying(conn)
        snapshot.database_up = True
    except Exception as exc:  # a scrape must still answer when the database does not
        log.warning("metrics: database unreachable (%s)", type(exc).__name__)
    return snapshot


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> list[GaugeMetricFamily]:
        s = self.snapshot
        up = GaugeMetricFamily("scheduler_database_up", "1 if the database answered the scrape.")
        up.add_metric([], 1 if s.database_up else 0)
        families = [up]
        if not s.database_up:
            return families
        seats = GaugeMetricFamily(
            "scheduler_seats_left",
            "Free seats per pool of each upcoming scheduled session.",
            labels=["session_id", "attendance"],
        )
        for session_id, attendance, left in s.seats_left:
            seats.add_metric([str(session_id), attendance], left)
        registrations = GaugeMetricFamily(
            "scheduler_registrations",
            "Registrations of sessions not yet over, by status.",
            labels=["status"],
        )
        for status in ("confirmed", "waitlisted", "cancelled"):
            registrations.add_metric([status], s.registrations.get(status, 0))
        outbox = GaugeMetricFamily(
            "scheduler_outbox_messages",
            "Outbox messages by status (sent: see scheduler_outbox_sent_last_day).",
            labels=["status"],
        )
        statuses = {
            MessageStatus.PENDING,
            MessageStatus.SENDING,
            MessageStatus.FAILED,
            MessageStatus.CANCELLED,
        } | set(s.outbox)
        for status in sorted(statuses):
            outbox.add_metric([status], s.outbox.get(status, 0))
        due = GaugeMetricFamily(
            "scheduler_outbox_due_messages", "Messages due now and not yet sent."
        )
        due.add_metric([], s.outbox_due)
        lag = GaugeMetricFamily(
            "scheduler_outbox_lag_seconds",
            "Age of the oldest message that is due and not yet sent: the dispatcher's lag.",
        )
        lag.add_metric([], s.outbox_lag_seconds)
        failures = GaugeMetricFamily(
            "scheduler_outbox_send_failures",
            "Messages that failed for good (status failed).",
        )
        failures.add_metric([], s.send_failures)
        retrying = GaugeMetricFamily(
            "scheduler_outbox_retrying_messages",
            "Pending messages whose last attempt failed and that will be retried.",
        )
        retrying.add_metric([], s.retrying)
        sent = GaugeMetricFamily(
            "scheduler_outbox_sent_last_day", "Messages sent in the last 24 hours."
        )
        sent.add_metric([], s.sent_last_day)
        families += [seats, registrations, outbox, sent, due, lag, failures, retrying]
        return families


def _may_scrape(request: Request) -> bool:
    token = request.state.settings.metrics_token
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text; with ``SCHEDULER_METRICS_TOKEN`` set, only for that bearer token (the
    snapshot costs queries, and the figures are the operator's business)."""
    if not _may_scrape(request):
        return error_response(
            401,
            "unauthorized",
            "/metrics needs the metrics bearer token",
            None,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    metrics: Metrics = request.state.metrics
    snapshot = await read_snapshot(request.state.db)
    scraped = CollectorRegistry()
    scraped.register(SnapshotCollector(snapshot))
    body = generate_latest(metrics.process_registry()) + generate_latest(scraped)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    """200 when the database answers, with the outbox lag for information; 503 when not.

    Outbox lag does not make an instance unhealthy: an SMTP outage is not cured by taking
    instances out of the load balancer, so it is reported here and alerted on from /metrics.
    """
    db: Database = request.state.db
    try:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
            due, lag = await outbox.lag(conn, utcnow())
    except Exception as exc:  # any failure to reach the database means unhealthy
        return error_response(
            503,
            "unavailable",
            f"database unreachable: {type(exc).__name__}",
            None,
            {"Retry-After": "5"},
        )
    return JSONResponse(
        {
            "status": "ok",
            "database": "ok",
            "outbox": {"due": due, "lag_seconds": round(lag, 3)},
        }
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
