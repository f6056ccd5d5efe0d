"""The demo: agencies with valid ORIs, coordinators who can sign in, one active hold, officers
registered through the directory; and what ``serve --demo`` prints about signing in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from scheduler import agencies, demo, sign_in
from scheduler.models import Account, Agency, Hold, Registration, SeatPool
from scheduler.validation import Fields
from tests.support.ports import free_port


async def test_the_demo_has_agencies_coordinators_a_hold_and_officers(db):
    assert await demo.load_demo(db) > 0
    async with db.read() as conn:
        directory = (await conn.execute(select(Agency))).all()
        coordinators = (
            await conn.execute(select(Account).where(Account.role == "coordinator"))
        ).all()
        active = (await conn.execute(select(Hold).where(Hold.status == "active"))).all()
        officers = (
            await conn.execute(select(Registration).where(Registration.post_id.is_not(None)))
        ).all()
        pools = (await conn.execute(select(SeatPool))).all()
    assert len(directory) >= 4
    for agency in directory:
        fields = Fields({})
        assert agencies.check_ori(fields, agency.ori, agency.state) == agency.ori
        assert fields.errors == {}
    assert {c.status for c in coordinators} == {"active"} and len(coordinators) >= 2
    assert len(active) == 1 and active[0].remaining == active[0].seats > 0
    assert len(officers) >= 3
    assert all(o.agency_id and o.rank and o.post_state for o in officers)
    assert all(p.confirmed + p.held <= p.capacity for p in pools)
    # The demo coordinator can ask for a sign-in link (it goes to the outbox, then ./mail).
    assert await sign_in.request_link(db, demo.DEMO_COORDINATOR) is True
    assert await demo.load_demo(db) == 0  # twice adds nothing


def test_serve_demo_prints_how_admins_and_coordinators_sign_in(tmp_path: Path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    environ["SCHEDULER_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/demo.db"
    port = free_port()
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "scheduler", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "the link is written to" in line:
                    break
        finally:
            process.terminate()
            process.wait(timeout=30)
    printed = "".join(lines)
    assert "password: " in printed and "admin@localhost.localdomain" in printed
    assert f"/agency/login with\n  email:    {demo.DEMO_COORDINATOR}" in printed
    assert "the link is written to mail/ (the newest .eml file)" in printed
