"""Admin pages for the outbox (what went out, what failed and why, resend) and API tokens.

The outbox page reads the ``messages`` table directly: it is a view of the durable truth, not of
the dispatcher's working state. "Resend" puts a sent or failed message back to pending, due
now, with its attempts reset, so the dispatcher picks it up on its next pass.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications import outbox
from notifications.models import Message, MessageStatus
from notifications.outbox import RESENDABLE
from scheduler import accounts, tokens
from scheduler.errors import Invalid, NotFound
from scheduler.models import Course, TrainingSession
from scheduler.web.auth import admin_page
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

OUTBOX_STATUSES = (
    MessageStatus.PENDING,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
)
PAGE_SIZE = 25
# Tab counts stop here: counting years of sent mail on every view would scan them all, and
# "1,000+" says what an admin needs. Each count reads at most this many index entries.
COUNT_CAP = 1_000
# What a row of the list shows, and nothing more: not the payload nor the copy as sent.
LISTED = (
    Message.id,
    Message.kind,
    Message.recipient,
    Message.subject,
    Message.session_id,
    Message.status,
    Message.due_at,
    Message.attempts,
    Message.sent_at,
    Message.last_error,
)


@admin_page
async def outbox_page(request: Request) -> Response:
    status = request.query_params.get("status", MessageStatus.FAILED)
    if status not in OUTBOX_STATUSES:
        status = MessageStatus.FAILED
    before = parse_id(request.query_params.get("before", ""))
    async with _db(request).read() as conn:
        counts = await outbox.count_by_status(conn, OUTBOX_STATUSES, cap=COUNT_CAP)
        newest_first = status in (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.CANCELLED)
        # Both orders are an index's: (status, id) backwards, or (status, due_at).
        order = Message.id.desc() if newest_first else Message.due_at
        stmt = _with_session(select(*LISTED)).where(Message.status == status).order_by(order)
        if newest_first and before is not None:
            stmt = stmt.where(Message.id < before)  # the next page, on (status, id)
        messages = (await conn.execute(stmt.limit(PAGE_SIZE + 1))).all()
    older = newest_first and len(messages) > PAGE_SIZE
    messages = messages[:PAGE_SIZE]
    return render(
        request,
        "admin/outbox.html",
        {
            "page_title": "Outbox",
            "status": status,
            "statuses": OUTBOX_STATUSES,
            "counts": counts,
            "count_cap": COUNT_CAP,
            "messages": messages,
            "older_than": messages[-1].id if older else None,
            "paged": before is not None,
            "resendable": RESENDABLE,
            "any_resendable": any(m.status in RESENDABLE for m in messages),
            "page_size": PAGE_SIZE,
            "admin_zone": _settings(request).admin_timezone,
        },
        private=True,
    )


def _with_session(stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """Add the course title and start of the message's session (if any) to a messages query."""
    return stmt.add_columns(
        Course.title.label("course_title"),
        TrainingSession.starts_at.label("session_starts_at"),
        TrainingSession.timezone.label("session_timezone"),
    ).select_from(
        Message.__table__.outerjoin(
            TrainingSession.__table__, TrainingSession.id == Message.session_id
        ).outerjoin(Course.__table__, Course.id == TrainingSession.course_id)
    )


@admin_page
async def message_page(request: Request) -> Response:
    """One message: its state and, once rendered, its headers and text as they went out."""
    message_id = parse_id(request.path_params["message_id"])
    if message_id is None:
        return error_page(request, 404, "Not found", "There is no such message.")
    async with _db(request).read() as conn:
        message = (
            await conn.execute(_with_session(select(Message)).where(Message.id == message_id))
        ).first()
    if message is None:
        return error_page(request, 404, "Not found", "There is no such message.")
    return render(
        request,
        "admin/message.html",
        {
            "page_title": f"Message {message.id}",
            "msg": message,
            "resendable": RESENDABLE,
            "admin_zone": _settings(request).admin_timezone,
        },
        private=True,
    )


@admin_page
async def resend(request: Request) -> Response:
    message_id = parse_id(request.path_params["message_id"])
    if message_id is None:
        return error_page(request, 404, "Not found", "There is no such message.")
    async with _db(request).write() as conn:
        resent = await outbox.retry(conn, message_id, statuses=RESENDABLE)
    if resent == 0:
        flash(request, "That message cannot be resent (it is pending, sending or cancelled).")
    else:
        flash(request, f"Message {message_id} will be sent again shortly.")
    back = request.query_params.get("status", MessageStatus.FAILED)
    if back not in OUTBOX_STATUSES:
        back = MessageStatus.FAILED
    return RedirectResponse(f"/admin/outbox?status={back}", 303)


@admin_page
async def tokens_page(request: Request) -> Response:
    """GET lists the tokens; POST makes one and shows it on this response only, once."""
    new_token = None
    new_name = ""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    status_code = 200
    if request.method == "POST":
        name = str((await request.form()).get("name", ""))
        try:
            new_token = await tokens.create_token(_db(request), name)
            new_name = name.strip()
        except Invalid as exc:
            values, errors, status_code = {"name": name}, dict(exc.fields), 422
    return render(
        request,
        "admin/tokens.html",
        {
            "page_title": "API tokens",
            "tokens": await tokens.list_tokens(_db(request)),
            "admin_zone": _settings(request).admin_timezone,
            "new_token": new_token,
            "new_name": new_name,
            "values": values,
            "errors": errors,
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def revoke(request: Request) -> Response:
    token_id = parse_id(request.path_params["token_id"])
    if token_id is None:
        return error_page(request, 404, "Not found", "There is no such token.")
    try:
        await tokens.revoke_token(_db(request), token_id)
    except NotFound:
        flash(request, "That token was already revoked.")
    else:
        flash(request, "Token revoked: it no longer opens the admin API.")
    return RedirectResponse("/admin/tokens", 303)


@admin_page
async def password_page(request: Request) -> Response:
    """ "Change my password": the current one, then the new one twice."""
    errors: dict[str, str] = {}
    status_code = 200
    if request.method == "POST":
        form = await request.form()
        email = str(request.session.get("admin_email", ""))
        try:
            await accounts.change_own_password(
                _db(request),
                email,
                str(form.get("current_password", ""))[:1024],
                str(form.get("new_password", ""))[:2048],
                str(form.get("repeat_password", ""))[:2048],
                keep_login=login
                if isinstance(login := request.session.get("login"), str)
                else None,
            )
        except Invalid as exc:
            errors, status_code = dict(exc.fields), 422
        else:
            flash(request, "Your password is changed. Use the new one next time you sign in.")
            return RedirectResponse("/admin", 303)
    return render(
        request,
        "admin/password.html",
        {"page_title": "Change my password", "errors": errors},
        status_code=status_code,
        private=True,
    )


routes = [
    Route("/admin/password", password_page, methods=["GET", "POST"]),
    Route("/admin/outbox", outbox_page, methods=["GET"]),
    Route("/admin/outbox/{message_id}", message_page, methods=["GET"]),
    Route("/admin/outbox/{message_id}/resend", resend, methods=["POST"]),
    Route("/admin/tokens", tokens_page, methods=["GET", "POST"]),
    Route("/admin/tokens/{token_id}/revoke", revoke, methods=["POST"]),
]
