"""A real ``scheduler serve`` process on a free port, for tests and benchmarks alike.

Tests that race real clients, check what happens before the app sees a request, or run several
instances against one database need the server as production runs it: its own process, uvicorn
with its workers, the background jobs. ``ServerProcess`` starts one, waits until it answers
``/healthz`` (and, with ``--workers N``, until all N workers are up), and stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tests.support.ports import free_port


class ServerProcess:
    """``scheduler serve --port P --workers N`` in ``workdir``, its output in a log file there.

    ``env`` adds to (or overrides) the process's environment; ``command`` replaces the
    ``scheduler serve`` arguments for a server of another kind that also answers ``/healthz``
    (``{port}`` in an argument becomes the port). With ``database_url=None`` no
    ``SCHEDULER_*`` settings are given: a server that is not the service (a benchmark floor).
    """

    def __init__(
        self,
        database_url: str | None,
        workdir: Path,
        *,
        workers: int = 1,
        command: Sequence[str] | None = None,
        secret_key: str = "live-server-secret-key-for-tests",
        **env: str,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.workers = workers
        self.log = workdir / f"server-{self.port}.log"
        self.env = dict(os.environ)
        if database_url is not None:
            self.env.update(
                SCHEDULER_DATABASE_URL=database_url,
                SCHEDULER_BASE_URL=self.url,
                SCHEDULER_SECRET_KEY=secret_key,
                SCHEDULER_MAIL_DIR=str(workdir / "mail"),
                SCHEDULER_RATE_LIMIT="0",
            )
        self.env.update(env)
        if command is None:
            self.args = [
                *(sys.executable, "-m", "scheduler", "serve"),
                *("--port", str(self.port), "--workers", str(workers)),
            ]
        else:
            self.args = [arg.replace("{port}", str(self.port)) for arg in command]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Self:
        """Start the process and wait until it serves; raises ``RuntimeError`` with its log."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            if self._all_workers_up() and self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log.read_text()}")

    def healthy(self) -> bool:
        """Whether ``GET /healthz`` answers 200 (one short connection, closed before returning)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def _all_workers_up(self) -> bool:
        # With one worker uvicorn serves in the process itself; with more, the supervisor's
        # spawned children serve, and the port answers as soon as the first one listens.
        return self.workers == 1 or len(self.worker_pids()) == self.workers

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes: the children of the supervisor that serve requests."""
        if self.process is None:
            return []
        return [pid for pid in children(self.process.pid) if b"spawn_main" in cmdline(pid)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
