"""The command line: ``scheduler serve | migrate | demo | admin create | admin password |
admin remove |
token create | outbox``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import tempfile
from collections.abc import Sequence

from scheduler import accounts, demo, logs, migrate, tokens
from scheduler.config import ConfigError, Settings
from scheduler.db import Database
from scheduler.errors import SchedulerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scheduler", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve the app and its jobs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="load the demo catalogue if empty")

    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("demo", help="load the demo catalogue")

    admin = commands.add_parser("admin", help="manage admin users")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_commands.add_parser("create", help="create an admin user")
    create.add_argument("email")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )

    password = admin_commands.add_parser("password", help="set a new password for an admin")
    password.add_argument("email")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the new password from stdin"
    )

    remove = admin_commands.add_parser(
        "remove", help="remove an admin user; their sign-ins end at once"
    )
    remove.add_argument("email")

    token = commands.add_parser("token", help="manage admin API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_create = token_commands.add_parser("create", help="print a new API token once")
    token_create.add_argument("name")

    purge = commands.add_parser(
        "purge", help="apply the retention rules now: old sent mail, old personal data"
    )
    purge.add_argument("--dry-run", action="store_true", help="only say what would go")
    mail = commands.add_parser("outbox", help="list pending and failed emails; retry failed ones")
    retry = mail.add_mutually_exclusive_group()
    retry.add_argument("--retry", type=int, metavar="ID", help="send failed message ID again")
    retry.add_argument("--retry-all", action="store_true", help="send every failed message again")
    mail.add_argument("--limit", type=int, default=100, help="rows to list (default 100)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"scheduler: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return serve(settings, args)
        if args.command == "migrate":
            asyncio.run(migrate.upgrade(settings.database_url))
            print("database is up to date")
            return 0
        if args.command == "demo":
            asyncio.run(migrate.upgrade(settings.database_url))
            added = asyncio.run(_demo(settings, verbose=True))
            print(
                f"demo catalogue: {added} sessions added"
                if added
                else "demo catalogue already loaded"
            )
            return 0
        if args.command == "admin" and args.admin_command == "password":
            return asyncio.run(_admin_password(settings, args.email, args.password_stdin))
        if args.command == "admin" and args.admin_command == "remove":
            return asyncio.run(_admin_remove(settings, args.email))
        if args.command == "admin":
            return asyncio.run(_admin_create(settings, args.email, args.password_stdin))
        if args.command == "purge":
            return asyncio.run(_purge(settings, dry_run=args.dry_run))
        if args.command == "outbox":
            return asyncio.run(_outbox(settings, args))
        if args.command == "token":
            token = asyncio.run(_token_create(settings, args.name))
            print(token)
            print("Store this token now: it is not shown again.", file=sys.stderr)
            return 0
    except SchedulerError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        print(f"scheduler: {exc.message}" + (f" ({detail})" if detail else ""), file=sys.stderr)
        return 1
    return 2


async def _purge(settings: Settings, *, dry_run: bool) -> int:
    from scheduler import retention

    db = Database.from_url(settings.database_url)
    try:
        run = retention.plan if dry_run else retention.purge
        report = await run(db, settings.outbox_retention, settings.personal_data_retention)
    finally:
        await db.dispose()
    for line in report.lines():
        print(line)
    if settings.personal_data_retention is None:
        print("personal data: kept (SCHEDULER_PERSONAL_DATA_RETENTION is not set)")
    return 0


async def _demo(settings: Settings, *, verbose: bool = False, only_if_empty: bool = False) -> int:
    db = Database.from_url(settings.database_url)
    try:
        if only_if_empty:
            async with db.read() as conn:
                from scheduler.catalog import list_courses

                if await list_courses(conn):
                    return 0
        return await demo.load_demo(db, progress=print if verbose else None)
    finally:
        await db.dispose()


def _read_password(from_stdin: bool, prompt: str = "Password: ") -> str | None:
    """The password from stdin's first line, or typed twice; None when the two differ."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(prompt)
    if password != getpass.getpass("Again: "):
        print("scheduler: the passwords differ", file=sys.stderr)
        return None
    return password


async def _admin_password(settings: Settings, email: str, from_stdin: bool) -> int:
    password = _read_password(from_stdin, "New password: ")
    if password is None:
        return 1
    await migrate.upgrade(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        await accounts.set_password(db, email, password)
    finally:
        await db.dispose()
    print(f"password of admin {email.strip().lower()} changed")
    return 0


async def _admin_remove(settings: Settings, email: str) -> int:
    await migrate.upgrade(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        await accounts.remove_admin(db, email)
    finally:
        await db.dispose()
    print(f"admin {email.strip().lower()} removed; their sign-ins have ended")
    return 0


async def _admin_create(settings: Settings, email: str, from_stdin: bool) -> int:
    password = _read_password(from_stdin)
    if password is None:
        return 1
    await migrate.upgrade(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        created = await accounts.create_admin(db, email, password)
    finally:
        await db.dispose()
    print(f"admin {created} created")
    return 0


async def _token_create(settings: Settings, name: str) -> str:
    await migrate.upgrade(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        return await tokens.create_token(db, name)
    finally:
        await db.dispose()


async def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    from notifications import outbox

    db = Database.from_url(settings.database_url)
    try:
        if args.retry is not None or args.retry_all:
            async with db.write() as conn:
                count = await outbox.retry(conn, None if args.retry_all else args.retry)
            if args.retry is not None and count == 0:
                print(f"scheduler: message {args.retry} is not a failed message", file=sys.stderr)
                return 1
            print(f"{count} message(s) queued to send again")
            return 0
        async with db.read() as conn:
            counts = await outbox.count_by_status(conn)
            rows = await outbox.list_messages(
                conn, ["failed", "pending", "sending"], limit=args.limit
            )
    finally:
        await db.dispose()
    print(", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "outbox empty")
    for row in rows:
        error = f"  {row.last_error}" if row.last_error else ""
        print(
            f"{row.id:>7}  {row.status:<8} {row.kind:<22} {row.recipient:<32} "
            f"due {row.due_at:%Y-%m-%d %H:%M}Z  tries {row.attempts}{error}"
        )
    return 0


async def _prepare(settings: Settings, load_demo: bool) -> str | None:
    await migrate.upgrade(settings.database_url)
    if load_demo:
        added = await _demo(settings, only_if_empty=True)
        if added:
            print(f"Loaded the demo catalogue ({added} sessions).")
    if not settings.is_sqlite:
        return None
    db = Database.from_url(settings.database_url)
    try:
        return await accounts.ensure_first_admin(db)
    finally:
        await db.dispose()


def serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    password = asyncio.run(_prepare(settings, args.demo))
    url = f"http://{args.host}:{args.port}"
    print(f"\nTraining scheduler on {url}/  (admin: {url}/admin)")
    if password:
        print("First start: an admin user was created. This password is shown only once:")
        print("  email:    admin@localhost.localdomain")
        print(f"  password: {password}")
        print("Add more with: scheduler admin create EMAIL")
    if args.demo:
        print(f"Demo coordinator: ask for a sign-in link at {url}/agency/login with")
        print(f"  email:    {demo.DEMO_COORDINATOR}")
        if settings.smtp_url:
            print("  the link is emailed through SCHEDULER_SMTP_URL")
        else:
            print(f"  the link is written to {settings.mail_dir}/ (the newest .eml file)")
    print(flush=True)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers are separate processes: let /metrics add up every worker's counters.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="scheduler-metrics-")
    uvicorn.run(
        "scheduler.asgi:make_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        # Against slow or idle clients: drop idle keep-alive connections after 5 s, cap a
        # request's head at 20 KiB and give it 10 s (its body 30 s), and refuse (503) beyond
        # 1000 connections per worker.
        # httptools parses in C; it has no head cap of its own, hence our subclass.
        http="scheduler.web.protocol:CappedHttpToolsProtocol",
        timeout_keep_alive=5,
        limit_concurrency=1000,
        timeout_graceful_shutdown=20,
        log_config=logs.log_config(settings.log_format),
        log_level="info",
    )
    return 0
