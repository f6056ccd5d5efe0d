"""Instructions per feed request, counted by callgrind: stable where the machine is noisy.

``python -m bench.callgrind_feeds [N]`` seeds the feeds benchmark's course (500 sessions, a
fifth with three meetings) in a temporary SQLite file, runs the service (``bench.feeds_app``)
and the honest floor (``bench.floors.feed``) each under ``valgrind --tool=callgrind`` with
collection off, warms them, then for each kind of request zeroes the counters, sends N
requests (httpx, keep-alive, one at a time, as the benchmark does) and dumps: the dump's total
divided by N is that request's instructions in the server process, the client excluded.

Prints one line per kind (floor 200 and 304, service warm 200 and 304, the in-service
trivial route) and leaves the dumps in a temporary directory for ``callgrind_annotate``.
Not a benchmark module (no ``bench_`` prefix): ``make bench`` does not run it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import common
from bench.bench_feeds import seed
from scheduler import migrate
from scheduler.db import Database
from tests.support.ports import free_port

WARMUP = 20


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {dump}")


class Counted:
    """A server process under callgrind, collection off until :meth:`count`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], out: Path) -> None:
        self.name = name
        self.out = out
        self.process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out / name}.%p",
                *argv,
            ],
            cwd=common.ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        )

    def control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)],
            check=True,
            capture_output=True,
        )

    def count(self, label: str, send: object, n: int) -> int:
        """Instructions for ``n`` calls of ``send`` (a callable), per call."""
        before = set(self.out.iterdir())
        self.control("-i", "on")
        self.control("-z")
        for _ in range(n):
            send()  # type: ignore[operator]
        self.control("-d", label)
        self.control("-i", "off")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [
                p
                for p in set(self.out.iterdir()) - before
                if re.fullmatch(rf"{self.name}\.\d+\.\d+", p.name)
            ]
            if new:
                time.sleep(0.5)  # let the dump finish writing
                return _total(new[0]) // n
            time.sleep(0.2)
        raise RuntimeError(f"no dump for {label}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def _get(client: httpx.Client, url: str, headers: dict[str, str], status: int) -> None:
    with client.stream("GET", url, headers=headers) as response:
        for _ in response.iter_raw():
            pass
    assert response.status_code == status, (url, response.status_code)


def _wait(client: httpx.Client, url: str, server: Counted) -> httpx.Response:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early")
        try:
            response = client.get(url)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        assert response.status_code == 200, response.text
        return response
    raise RuntimeError(f"{server.name} did not come up")


def main(n: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="callgrind-feeds-"))
    url = f"sqlite+aiosqlite:///{out / 'bench.db'}"
    asyncio.run(migrate.upgrade(url))

    async def seeded() -> None:
        db = Database.from_url(url)
        try:
            await seed(db)
        finally:
            await db.dispose()

    asyncio.run(seeded())
    floor_file = out / "floor.ics"
    port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "SCHEDULER_DATABASE_URL": url,
        "SCHEDULER_BASE_URL": "https://training.example.org",
        "SCHEDULER_SECRET_KEY": "bench-secret-key-not-for-production",
        "SCHEDULER_MAIL_DIR": str(out / "mail"),
        "SCHEDULER_RUN_JOBS": "false",
        "SCHEDULER_RATE_LIMIT": "0",
        "FLOOR_FEED_FILE": str(floor_file),
        "PYTHONMALLOC": "malloc",
    }
    py = sys.executable
    service = Counted(
        "service", [py, "-m", "bench.feeds_app", str(port), str(floor_file)], env, out
    )
    bare = Counted(
        "floor",
        [
            *(py, "-m", "uvicorn", "bench.floors.feed:app", "--port", str(bare_port)),
            *("--http", "httptools", "--no-access-log", "--log-level", "warning"),
        ],
        env,
        out,
    )
    rows: list[tuple[str, int]] = []
    try:
        with httpx.Client(timeout=600) as client:
            base = f"http://127.0.0.1:{port}"
            feed_url = f"{base}/courses/managing-bias/calendar.ics"
            first = _wait(client, feed_url, service)
            floor_file.write_bytes(first.content)
            etag = first.headers["etag"]
            bare_url = f"http://127.0.0.1:{bare_port}/feed.ics"
            bare_etag = _wait(client, bare_url, bare).headers["etag"]
            kinds = [
                ("floor 200", bare, bare_url, {}, 200),
                ("floor 304", bare, bare_url, {"If-None-Match": bare_etag}, 304),
                ("service warm 200", service, feed_url, {}, 200),
                ("service 304", service, feed_url, {"If-None-Match": etag}, 304),
                ("service /bench/floor", service, f"{base}/bench/floor", {}, 200),
            ]
            for _label, _server, target, headers, status in kinds:
                for _ in range(WARMUP):
                    _get(client, target, headers, status)
            for label, server, target, headers, status in kinds:
                tag = re.sub(r"\W+", "-", label)

                def send(
                    target: str = target, h: dict[str, str] = headers, s: int = status
                ) -> None:
                    _get(client, target, h, s)

                rows.append((label, server.count(tag, send, n)))
    finally:
        service.stop()
        bare.stop()
    floor = dict(rows)
    for label, ir in rows:
        base_ir = floor["floor 304"] if "304" in label else floor["floor 200"]
        print(f"{label:24} {ir:>12,} Ir/request  {ir / base_ir:5.2f}x floor")
    print(f"dumps in {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
