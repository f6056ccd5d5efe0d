"""Admin sign-in against real servers: sign-ins live in the database, and so does the lockout.

Two ``scheduler serve`` processes share one database, as instances behind a load balancer do;
a cookie signed out on one must open nothing on the other.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, text

from scheduler import accounts, logins
from scheduler import sign_in as links
from scheduler.db import Database
from scheduler.errors import NotFound, Unauthorized
from scheduler.models import Account, AdminUser, LoginSession, RateLimitWindow
from scheduler.tokens import create_token
from scheduler.web import ratelimit
from tests.web.agency_client import follow_link, invite, last_link
from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_from, make_admin


async def sign_in(http: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    csrf = csrf_from((await http.get("/admin/login")).text)
    return await http.post(
        "/admin/login",
        data={"email": ADMIN_EMAIL, "password": password, "csrf_token": csrf, "next": "/admin"},
    )


def saved_cookie(http: httpx.AsyncClient) -> dict[str, str]:
    return {"scheduler_session": str(http.cookies.get("scheduler_session"))}


async def opens_admin(url: str, cookie: dict[str, str]) -> bool:
    async with httpx.AsyncClient(base_url=url, cookies=cookie) as http:
        return (await http.get("/admin")).status_code == 200


async def makes_token(url: str, cookie: dict[str, str], csrf: str) -> bool:
    async with httpx.AsyncClient(base_url=url, cookies=cookie) as http:
        answer = await http.post("/admin/tokens", data={"name": "stolen", "csrf_token": csrf})
        return answer.status_code == 200 and "sch_" in answer.text


async def count_tokens(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM api_tokens"))).scalar_one())


async def test_logout_on_one_instance_revokes_every_copy_of_the_cookie(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    await make_admin(db)
    first = live_server_factory(database_url)
    second = live_server_factory(database_url)
    async with httpx.AsyncClient(base_url=first.url) as http:
        assert (await sign_in(http)).status_code == 303
        csrf = csrf_from((await http.get("/admin")).text)
        cookie = saved_cookie(http)
    assert await opens_admin(first.url, cookie) and await opens_admin(second.url, cookie)
    assert await makes_token(second.url, cookie, csrf)

    async with httpx.AsyncClient(base_url=second.url, cookies=cookie) as http:
        out = await http.post("/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
    before = await count_tokens(db)
    assert not await opens_admin(first.url, cookie)
    assert not await opens_admin(second.url, cookie)
    assert not await makes_token(first.url, cookie, csrf)
    assert await count_tokens(db) == before


async def test_a_cookie_of_a_removed_admin_opens_nothing(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    await make_admin(db)
    server = live_server_factory(database_url)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await sign_in(http)).status_code == 303
        cookie = saved_cookie(http)
    assert await opens_admin(server.url, cookie)
    async with db.write() as conn:
        await conn.execute(delete(AdminUser))
    assert not await opens_admin(server.url, cookie)
    # A new admin who is given the same id is not signed in by the old cookie either.
    await make_admin(db)
    assert not await opens_admin(server.url, cookie)


async def test_revoke_sessions_for_ends_every_sign_in_of_that_user(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    """What a password change or an account removal calls."""
    await make_admin(db)
    server = live_server_factory(database_url)
    cookies = []
    for _ in range(2):
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await sign_in(http)).status_code == 303
            cookies.append(saved_cookie(http))
    assert all([await opens_admin(server.url, c) for c in cookies])
    async with db.read() as conn:
        admin_id = (await conn.execute(select(AdminUser.id))).scalar_one()
    assert await logins.revoke_sessions_for(db, admin_id) == 2
    assert not any([await opens_admin(server.url, c) for c in cookies])
    assert await logins.revoke_sessions_for(db, admin_id) == 0


async def test_a_sign_in_expires_after_twelve_hours_and_old_rows_are_dropped(
    db: Database,
) -> None:
    await make_admin(db)
    async with db.read() as conn:
        admin_id = (await conn.execute(select(AdminUser.id))).scalar_one()
    login_id = await logins.start(db, logins.ADMIN, admin_id)
    signed = await logins.check(db, login_id)
    assert signed is not None and signed.user_id == admin_id
    later = signed.created_at + logins.MAX_AGE + timedelta(seconds=1)
    assert await logins.check(db, login_id, now=later) is None
    assert await logins.check(db, "x" * 40) is None
    await logins.start(db, logins.ADMIN, admin_id, now=later)
    async with db.read() as conn:
        rows = (await conn.execute(select(func.count()).select_from(LoginSession))).scalar_one()
    assert rows == 1  # the expired one went when the next began


@pytest.mark.parametrize("instances", ["workers", "two-servers"])
async def test_the_login_lockout_counts_across_workers(
    database_url: str, live_server_factory: Any, instances: str
) -> None:
    if instances == "workers":
        servers = [live_server_factory(database_url, workers=3)]
    else:
        servers = [live_server_factory(database_url), live_server_factory(database_url)]
    await _make_admin_at(database_url)
    statuses = []
    # A fresh connection each time, so uvicorn's workers (or the two servers) take turns.
    for attempt in range(8):
        async with httpx.AsyncClient(base_url=servers[attempt % len(servers)].url) as http:
            statuses.append((await sign_in(http, password="wrong password!!")).status_code)
    assert statuses == [401] * 5 + [429] * 3
    async with httpx.AsyncClient(base_url=servers[0].url) as http:
        locked = await sign_in(http)  # even the right password waits out the window
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


async def _make_admin_at(url: str) -> None:
    db = Database.from_url(url)
    try:
        await make_admin(db)
    finally:
        await db.dispose()


async def test_a_right_password_forgets_the_emails_failures_not_the_clients(
    db: Database,
) -> None:
    class Peer:
        client = type("Client", (), {"host": "10.0.0.1"})()

    keys = ratelimit.login_keys("a@example.org", Peer())  # type: ignore[arg-type]
    now = 1_000_000.0
    for _ in range(4):
        assert await ratelimit.login_attempt(db, keys, now=now) == 0
    assert await ratelimit.login_attempt(db, keys, now=now) == 0  # the fifth, a success
    await ratelimit.login_succeeded(db, keys, now=now)
    async with db.read() as conn:
        rows = dict(
            (await conn.execute(select(RateLimitWindow.bucket, RateLimitWindow.hits))).all()
        )
    assert rows == {"login-client": 4}
    assert await ratelimit.login_attempt(db, keys, now=now) == 0
    assert await ratelimit.login_attempt(db, keys, now=now) > 0  # the client's sixth
    assert await ratelimit.login_attempt(db, keys, now=now + ratelimit.LOCKOUT_WINDOW) == 0


async def test_known_and_unknown_emails_cost_one_verify_off_the_event_loop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_admin(db)
    loop_thread = threading.get_ident()
    calls: list[tuple[str, int]] = []
    real_verify, real_hash = PasswordHasher.verify, PasswordHasher.hash

    def verify(self: PasswordHasher, hash: str, password: str) -> bool:
        calls.append(("verify", threading.get_ident()))
        return real_verify(self, hash, password)

    def hash_(self: PasswordHasher, password: str, **kwargs: Any) -> str:
        calls.append(("hash", threading.get_ident()))
        return real_hash(self, password, **kwargs)

    accounts.dummy_hash()  # made once per process, before the first unknown email
    monkeypatch.setattr(PasswordHasher, "verify", verify)
    monkeypatch.setattr(PasswordHasher, "hash", hash_)
    for email in (ADMIN_EMAIL, "nobody@example.org"):
        calls.clear()
        with pytest.raises(Unauthorized):
            await accounts.verify_login(db, email, "wrong password!!")
        assert [name for name, _ in calls] == ["verify"], email
        assert all(thread != loop_thread for _, thread in calls)
    calls.clear()
    assert await accounts.verify_login(db, ADMIN_EMAIL, ADMIN_PASSWORD) > 0
    assert [name for name, _ in calls] == ["verify"]
    assert calls[0][1] != loop_thread


async def test_a_password_change_ends_the_other_sign_ins_but_not_the_one_changing_it(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    """``scheduler admin password`` ends every sign-in; "change my password" keeps its own."""
    await make_admin(db)
    server = live_server_factory(database_url)
    async with (
        httpx.AsyncClient(base_url=server.url) as elsewhere,
        httpx.AsyncClient(base_url=server.url) as here,
    ):
        assert (await sign_in(elsewhere)).status_code == 303
        assert (await sign_in(here)).status_code == 303
        other = saved_cookie(elsewhere)
        csrf = csrf_from((await here.get("/admin/password")).text)
        new_password = ADMIN_PASSWORD + "-renewed"
        answer = await here.post(
            "/admin/password",
            data={
                "current_password": ADMIN_PASSWORD,
                "new_password": new_password,
                "repeat_password": new_password,
                "csrf_token": csrf,
            },
        )
        assert answer.status_code == 303
        own = saved_cookie(here)
    assert not await opens_admin(server.url, other)
    assert await opens_admin(server.url, own)
    await accounts.set_password(db, ADMIN_EMAIL, ADMIN_PASSWORD + "-by-the-cli")
    assert not await opens_admin(server.url, own)


async def test_a_coordinator_disabled_by_an_admin_loses_the_sign_in_at_once(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    """One sign-in table for everyone: a disabled account's cookie opens nothing, anywhere."""
    first = live_server_factory(database_url)
    second = live_server_factory(database_url)
    admin = {"Authorization": f"Bearer {await create_token(db, 'disable')}"}
    async with httpx.AsyncClient(base_url=first.url) as http:
        agency = await http.post(
            "/api/agencies",
            json={"name": "Springfield PD", "state": "IL", "type": "municipal"},
            headers=admin,
        )
        invited = await invite(http, admin, agency.json()["id"], "casey@pd.example.org")
        assert (
            await follow_link(http, await last_link(db, "casey@pd.example.org"))
        ).status_code == 303
        cookie = saved_cookie(http)
    for server in (first, second):
        async with httpx.AsyncClient(base_url=server.url, cookies=cookie) as http:
            assert (await http.get("/agency")).status_code == 200
    async with db.read() as conn:
        kinds = (await conn.execute(select(LoginSession.kind))).scalars().all()
    assert kinds == ["link"]  # the coordinator's sign-in is a row of the one table

    await links.set_status(db, invited["id"], "disabled")
    for server in (first, second):
        async with httpx.AsyncClient(base_url=server.url, cookies=cookie) as http:
            refused = await http.get("/agency", follow_redirects=False)
            assert refused.status_code == 303, refused.text
            assert refused.headers["location"].startswith("/agency/login")
    # Nor can they ask for a new link while disabled; enabled again, they sign in anew.
    assert not await links.request_link(db, "casey@pd.example.org")
    await links.set_status(db, invited["id"], "active")
    async with httpx.AsyncClient(base_url=first.url, cookies=cookie) as http:
        assert (await http.get("/agency", follow_redirects=False)).status_code == 303


async def test_an_admin_removed_loses_the_sign_in_at_once(
    db: Database, database_url: str, live_server_factory: Any
) -> None:
    await make_admin(db)
    await accounts.create_admin(db, "other@example.org", ADMIN_PASSWORD)
    server = live_server_factory(database_url)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await sign_in(http)).status_code == 303
        cookie = saved_cookie(http)
    assert await opens_admin(server.url, cookie)
    async with db.read() as conn:
        roles = (
            (
                await conn.execute(
                    select(Account.role)
                    .join(LoginSession, LoginSession.account_id == Account.id)
                    .where(Account.email == ADMIN_EMAIL)
                )
            )
            .scalars()
            .all()
        )
    assert roles == ["admin"]  # the admin's sign-in belongs to their account

    await accounts.remove_admin(db, ADMIN_EMAIL)
    assert not await opens_admin(server.url, cookie)
    async with db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(LoginSession))).scalar_one()
        emails = (await conn.execute(select(Account.email))).scalars().all()
    assert left == 0 and emails == ["other@example.org"]
    with pytest.raises(NotFound):
        await accounts.remove_admin(db, ADMIN_EMAIL)
