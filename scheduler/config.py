"""Settings, read once from the environment, then ``.env``, then defaults.

A bad value fails loudly at start-up with the variable's name, never later at first use.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./scheduler.db"
_OFFSET = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_retention(name: str, value: str) -> timedelta:
    """A retention period such as ``90d`` or ``2w`` (at least one day); raises ConfigError."""
    match = _OFFSET.match(value)
    if match is None:
        raise ConfigError(name, value, "use an amount like 90d or 12w")
    period = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if period < timedelta(days=1):
        raise ConfigError(name, value, "must be at least 1d")
    return period


class ConfigError(ValueError):
    def __init__(self, name: str, value: str, why: str) -> None:
        super().__init__(f"{name}={value!r}: {why}")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = field(default="", repr=False)
    smtp_url: str | None = field(default=None, repr=False)
    mail_dir: Path = Path("./mail")
    mail_from: str = "Training Scheduler <no-reply@training.invalid>"
    # Where a registrant's reply goes (a person or a team mailbox); unset: no Reply-To.
    reply_to: str | None = None
    # The zone admin pages that are not about one session (outbox, tokens) show times in.
    admin_timezone: str = "UTC"
    reminder_offsets: tuple[timedelta, ...] = (
        timedelta(days=7),
        timedelta(days=1),
        timedelta(hours=1),
    )
    rate_limit: int = 30
    # Peers whose X-Forwarded-For uvicorn believes (comma-separated addresses, or "*").
    trusted_proxies: str = "127.0.0.1"
    # Connections each process keeps open to PostgreSQL (and as many again in bursts).
    db_pool_size: int = 10
    log_format: str = "text"
    run_jobs: bool = True
    max_body_bytes: int = 64 * 1024
    # How long a dispatcher may hold claimed outbox messages before others may take them over.
    outbox_lease: timedelta = timedelta(minutes=2)
    # When set, /metrics answers only requests with ``Authorization: Bearer <this>``.
    metrics_token: str | None = field(default=None, repr=False)
    # Sent (and cancelled) outbox messages are deleted after this long (scheduler/retention.py).
    outbox_retention: timedelta = timedelta(days=90)
    # Registrants of sessions that ended this long ago are anonymised; None keeps them.
    personal_data_retention: timedelta | None = None
    # Time an instructor or a room needs between two sessions' meetings (invariant 8).
    travel_buffer: timedelta = timedelta(0)
    # The training provider printed on certificates and exports when a course names none.
    provider_name: str = "National De-escalation Training Network"
    # The relay offers SMTPUTF8: addresses with non-ASCII characters before the @ are taken.
    smtputf8: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) over ``env_file``.

        Raises ``ConfigError`` naming the variable for any value that cannot be used.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(read_env_file(Path(env_file)))
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(f"SCHEDULER_{name}")
            return value if value not in (None, "") else None

        kwargs: dict[str, object] = {}
        if (url := get("DATABASE_URL")) is not None:
            if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
                raise ConfigError(
                    "SCHEDULER_DATABASE_URL",
                    url,
                    "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
                )
            kwargs["database_url"] = url
        if (base := get("BASE_URL")) is not None:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError("SCHEDULER_BASE_URL", base, "must be an http(s) URL")
            kwargs["base_url"] = base.rstrip("/")
        if (smtp := get("SMTP_URL")) is not None:
            if urlsplit(smtp).scheme not in ("smtp", "smtps"):
                raise ConfigError(
                    "SCHEDULER_SMTP_URL", "<hidden>", "must start smtp:// or smtps://"
                )
            kwargs["smtp_url"] = smtp
        if (mail_dir := get("MAIL_DIR")) is not None:
            kwargs["mail_dir"] = Path(mail_dir)
        if (mail_from := get("MAIL_FROM")) is not None:
            kwargs["mail_from"] = mail_from
        if (reply_to := get("REPLY_TO")) is not None:
            _, address = parseaddr(reply_to)
            local, at, domain = address.rpartition("@")
            if not (local and at and "." in domain) or any(c in reply_to for c in "\r\n"):
                raise ConfigError(
                    "SCHEDULER_REPLY_TO", reply_to, "use an address like Training Team <t@x.org>"
                )
            kwargs["reply_to"] = reply_to
        if (provider := get("PROVIDER_NAME")) is not None:
            if len(provider) > 200 or any(c in provider for c in "\r\n"):
                raise ConfigError(
                    "SCHEDULER_PROVIDER_NAME", provider, "use one line of at most 200 characters"
                )
            kwargs["provider_name"] = provider.strip()
        if (admin_zone := get("ADMIN_TIMEZONE")) is not None:
            try:
                ZoneInfo(admin_zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigError(
                    "SCHEDULER_ADMIN_TIMEZONE", admin_zone, "use an IANA zone like America/Chicago"
                ) from exc
            kwargs["admin_timezone"] = admin_zone
        if (offsets := get("REMINDER_OFFSETS")) is not None:
            kwargs["reminder_offsets"] = parse_offsets(offsets)
        if (limit := get("RATE_LIMIT")) is not None:
            if not limit.isdigit():
                raise ConfigError("SCHEDULER_RATE_LIMIT", limit, "must be a whole number >= 0")
            kwargs["rate_limit"] = int(limit)
        if (proxies := get("TRUSTED_PROXIES")) is not None:
            kwargs["trusted_proxies"] = proxies
        if (pool := get("DB_POOL_SIZE")) is not None:
            if not pool.isdigit() or int(pool) < 1:
                raise ConfigError("SCHEDULER_DB_POOL_SIZE", pool, "must be a whole number >= 1")
            kwargs["db_pool_size"] = int(pool)
        if (log_format := get("LOG_FORMAT")) is not None:
            if log_format not in ("text", "json"):
                raise ConfigError("SCHEDULER_LOG_FORMAT", log_format, "must be text or json")
            kwargs["log_format"] = log_format
        if (lease := get("OUTBOX_LEASE")) is not None:
            match = _OFFSET.match(lease)
            if match is None or int(match.group(1)) == 0:
                raise ConfigError("SCHEDULER_OUTBOX_LEASE", lease, "use an amount like 120s or 2m")
            kwargs["outbox_lease"] = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if (metrics_token := get("METRICS_TOKEN")) is not None:
            if len(metrics_token) < 16 or not metrics_token.isprintable() or " " in metrics_token:
                raise ConfigError(
                    "SCHEDULER_METRICS_TOKEN", "<hidden>", "use at least 16 characters, no spaces"
                )
            kwargs["metrics_token"] = metrics_token
        if (keep := get("OUTBOX_RETENTION")) is not None:
            kwargs["outbox_retention"] = parse_retention("SCHEDULER_OUTBOX_RETENTION", keep)
        if (keep := get("PERSONAL_DATA_RETENTION")) is not None and keep.strip():
            kwargs["personal_data_retention"] = parse_retention(
                "SCHEDULER_PERSONAL_DATA_RETENTION", keep
            )
        if (buffer := get("TRAVEL_BUFFER")) is not None:
            match = _OFFSET.match(buffer)
            if buffer.strip() != "0" and match is None:
                raise ConfigError("SCHEDULER_TRAVEL_BUFFER", buffer, "use 0 or an amount like 30m")
            if match is not None:
                kwargs["travel_buffer"] = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if (utf8 := get("SMTPUTF8")) is not None:
            kwargs["smtputf8"] = parse_bool("SCHEDULER_SMTPUTF8", utf8)
        if (jobs := get("RUN_JOBS")) is not None:
            kwargs["run_jobs"] = parse_bool("SCHEDULER_RUN_JOBS", jobs)
        secret = get("SECRET_KEY")
        if secret is not None and len(secret) < 16:
            raise ConfigError("SCHEDULER_SECRET_KEY", "<hidden>", "must be at least 16 characters")
        kwargs["secret_key"] = secret or load_or_create_secret(Path(".scheduler-secret"))
        return cls(**kwargs)  # type: ignore[arg-type]


def parse_offsets(text: str) -> tuple[timedelta, ...]:
    """Parse ``7d,1d,1h`` into timedeltas, largest first. Raises ``ConfigError``."""
    offsets: list[timedelta] = []
    for part in text.split(","):
        match = _OFFSET.match(part)
        if match is None or int(match.group(1)) == 0:
            raise ConfigError(
                "SCHEDULER_REMINDER_OFFSETS", text, "use positive amounts like 7d,1d,1h,30m"
            )
        offsets.append(timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}))
    return tuple(sorted(set(offsets), reverse=True))


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, value, "must be true or false")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.removeprefix("export ").strip()] = value
    return values


def load_or_create_secret(path: Path) -> str:
    """The embedded default's secret key: made once, kept beside the database, never committed."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret
