"""Settings: the environment over ``.env`` over defaults, and a loud failure for a bad value."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import DEFAULT_DATABASE_URL, ConfigError, Settings, parse_offsets


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The generated secret and .env both live in the working directory.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_with_nothing_set(in_tmp):
    settings = Settings.from_env({}, env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.smtp_url is None
    assert settings.mail_dir == Path("./mail")
    assert settings.reminder_offsets == (timedelta(days=7), timedelta(days=1), timedelta(hours=1))
    assert settings.rate_limit == 30
    assert settings.is_sqlite
    # The secret is generated once into ./.scheduler-secret and then reused.
    assert len(settings.secret_key) >= 32
    assert (in_tmp / ".scheduler-secret").read_text().strip() == settings.secret_key
    assert (in_tmp / ".scheduler-secret").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env({}, env_file=None).secret_key == settings.secret_key


def test_settings_are_frozen_and_hide_secrets_in_repr():
    settings = Settings(secret_key="s3cret-s3cret-s3cret", smtp_url="smtp://u:pw@mail:25")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.rate_limit = 5  # type: ignore[misc]
    assert "s3cret" not in repr(settings) and "pw@" not in repr(settings)


def test_environment_over_env_file_over_defaults(in_tmp):
    (in_tmp / ".env").write_text(
        "# comments and blank lines are fine\n"
        "\n"
        "SCHEDULER_BASE_URL=https://from-dotenv.example.org/\n"
        "export SCHEDULER_RATE_LIMIT=7\n"
        "SCHEDULER_MAIL_FROM='Training <train@example.org>'\n"
        'SCHEDULER_DATABASE_URL="postgresql+asyncpg://app@db/scheduler"\n'
    )
    settings = Settings.from_env(
        {
            "SCHEDULER_RATE_LIMIT": "0",
            "SCHEDULER_SECRET_KEY": "from-the-environment-123",
            "SCHEDULER_REMINDER_OFFSETS": "1d, 30m",
            "SCHEDULER_MAIL_DIR": "",  # empty counts as unset
        }
    )
    assert settings.rate_limit == 0  # environment beats .env
    assert settings.base_url == "https://from-dotenv.example.org"  # .env beats the default
    assert settings.mail_from == "Training <train@example.org>"  # quotes stripped
    assert settings.database_url == "postgresql+asyncpg://app@db/scheduler"
    assert not settings.is_sqlite
    assert settings.secret_key == "from-the-environment-123"
    assert settings.reminder_offsets == (timedelta(days=1), timedelta(minutes=30))
    assert settings.mail_dir == Path("./mail")  # default
    assert not (in_tmp / ".scheduler-secret").exists()


def test_a_missing_env_file_is_fine(in_tmp):
    assert (
        Settings.from_env({"SCHEDULER_RATE_LIMIT": "3"}, env_file=in_tmp / "nope").rate_limit == 3
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SCHEDULER_DATABASE_URL", "mysql://root@db/x"),
        ("SCHEDULER_DATABASE_URL", "postgresql://user@db/x"),  # sync driver
        ("SCHEDULER_BASE_URL", "ftp://example.org"),
        ("SCHEDULER_BASE_URL", "example.org"),
        ("SCHEDULER_SMTP_URL", "http://mail.example.org"),
        ("SCHEDULER_REMINDER_OFFSETS", "7d,tomorrow"),
        ("SCHEDULER_REMINDER_OFFSETS", "0h"),
        ("SCHEDULER_REMINDER_OFFSETS", "-1d"),
        ("SCHEDULER_RATE_LIMIT", "lots"),
        ("SCHEDULER_RATE_LIMIT", "-5"),
        ("SCHEDULER_RUN_JOBS", "sometimes"),
        ("SCHEDULER_LOG_FORMAT", "xml"),
        ("SCHEDULER_SECRET_KEY", "short"),
        ("SCHEDULER_METRICS_TOKEN", "short"),
        ("SCHEDULER_METRICS_TOKEN", "has a space in the middle"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value}, env_file=None)
    assert name in str(caught.value)


def test_a_bad_value_in_env_file_fails_too(in_tmp):
    (in_tmp / ".env").write_text("SCHEDULER_RATE_LIMIT=many\n")
    with pytest.raises(ConfigError, match="SCHEDULER_RATE_LIMIT"):
        Settings.from_env({})


def test_secrets_are_not_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SCHEDULER_SMTP_URL": "ftp://user:hunter2@mail"}, env_file=None)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SCHEDULER_SECRET_KEY": "tiny-secret"}, env_file=None)
    assert "tiny-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d,1d,1h", (timedelta(days=7), timedelta(days=1), timedelta(hours=1))),
        ("1h,7d", (timedelta(days=7), timedelta(hours=1))),
        ("2w, 90s", (timedelta(weeks=2), timedelta(seconds=90))),
        ("1d,1d,24h", (timedelta(days=1),)),
    ],
)
def test_reminder_offsets(text, expected):
    assert parse_offsets(text) == expected


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_run_jobs_true(value):
    assert Settings.from_env({"SCHEDULER_RUN_JOBS": value}, env_file=None).run_jobs is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_run_jobs_false(value):
    assert Settings.from_env({"SCHEDULER_RUN_JOBS": value}, env_file=None).run_jobs is False


def test_metrics_token_is_read_and_hidden():
    settings = Settings.from_env({"SCHEDULER_METRICS_TOKEN": "m" * 20}, env_file=None)
    assert settings.metrics_token == "m" * 20
    assert "m" * 20 not in repr(settings)
    assert Settings.from_env({}, env_file=None).metrics_token is None


def test_reply_to_and_admin_timezone(in_tmp):
    assert Settings.from_env({}, env_file=None).reply_to is None
    assert Settings.from_env({}, env_file=None).admin_timezone == "UTC"
    settings = Settings.from_env(
        {
            "SCHEDULER_REPLY_TO": "Training Team <training@network.example.org>",
            "SCHEDULER_ADMIN_TIMEZONE": "America/Chicago",
        },
        env_file=None,
    )
    assert settings.reply_to == "Training Team <training@network.example.org>"
    assert settings.admin_timezone == "America/Chicago"
    for name, value in (
        ("SCHEDULER_REPLY_TO", "nobody"),
        ("SCHEDULER_REPLY_TO", "a@localhost"),
        ("SCHEDULER_ADMIN_TIMEZONE", "Mars/Olympus"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value}, env_file=None)
