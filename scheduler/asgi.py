"""Entry point for uvicorn workers: ``uvicorn --factory scheduler.asgi:make_app``."""

from __future__ import annotations

from starlette.applications import Starlette

from scheduler.app import create_app
from scheduler.config import Settings


def make_app() -> Starlette:
    return create_app(Settings.from_env())
