"""A wheel built from a clean copy of the repository installs into a clean venv and serves.

``pip install .`` (not editable) once served no pages and sent no mail: the templates were
found by path arithmetic from the checkout and were not package data. This builds the wheel
from the files git tracks, installs it with its dependencies into a venv that sees nothing of
the test environment, runs ``scheduler serve --demo`` from it, reads pages and registers, and
finds the confirmation written to the mail folder by the file transport.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def clean_copy(target: Path) -> Path:
    """The files git tracks (links kept as links), as a fresh clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, copy = ROOT / name, target / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)
    return target


def run(*args: str | Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"


def test_a_built_wheel_serves_the_demo_with_pages_and_mail(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "clone")
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ".", cwd=source)
    (wheel,) = wheels.glob("training_scheduler-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)

    workdir = tmp_path / "run"
    server = ServerProcess(
        f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
        workdir,
        command=[str(venv / "bin" / "scheduler"), "serve", "--demo", "--port", "{port}"],
        # Nothing of the checkout may leak in: the installed package must be what serves.
        PYTHONPATH="",
    )
    with server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            home = client.get("/")
            assert home.status_code == 200, home.text[:500]
            assert "<html" in home.text and "/static/site.css" in home.text
            assert client.get("/static/site.css").status_code == 200

            courses = client.get("/api/courses").json()["courses"]
            assert courses, "the demo catalogue is empty"
            slug = courses[0]["slug"]
            page = client.get(f"/courses/{slug}")
            assert page.status_code == 200 and courses[0]["title"] in page.text

            sessions = client.get(f"/api/courses/{slug}/sessions").json()["sessions"]
            session = next(s for s in sessions if s["registration_open"])
            attendance = next(a for a, pool in session["seats"].items() if pool["available"])
            answer = client.post(
                f"/api/sessions/{session['id']}/registrations",
                json={
                    "name": "Wheel Tester",
                    "email": "wheel@example.org",
                    "agency": "Packaging Unit",
                    "attendance": attendance,
                },
            )
            assert answer.status_code == 201, answer.text

        # The demo mails its own officers too: find the message for this registration.
        message = wait_for_mail(workdir / "mail", "wheel@example.org")
    assert message["To"] == "Wheel Tester <wheel@example.org>"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and courses[0]["title"] in text.get_content()


def wait_for_mail(folder: Path, address: str, timeout: float = 30) -> EmailMessage:
    """The first message written to ``folder`` for ``address``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("**/*.eml")) if folder.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=default)
            if address in str(message["To"]):
                assert isinstance(message, EmailMessage)
                return message
        time.sleep(0.2)
    raise AssertionError(f"no mail for {address} written to {folder} in {timeout} s")
