"""Coordinator sign-in for the console and the API: emailed one-time links, account sessions."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True)
class Coordinator:
    account_id: int
    email: str
    name: str
    agency_ids: frozenset[int]


async def current_coordinator(request: Request) -> Coordinator | None:
    """The coordinator signed in on this browser, or None."""
    return None
