"""Issuing, reissuing and revoking certificates from completions, on both backends.

The PDFs are read back with pypdf (text) and PDFium + zxing-cpp (the QR code); the emails are
received by a real SMTP server and parsed with ``email``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from notifications.models import Message
from scheduler.certificates import (
    Issuer,
    SyncResult,
    canonical_code,
    find_by_code,
    new_code,
    sync_session,
)
from scheduler.models import Certificate, Registration
from tests.completion_setup import held_session, set_completions
from tests.notifications.mailbox import smtp_dispatcher, text_of
from tests.support.pdf import pdf_qr_codes, pdf_text

ISSUER = Issuer(base_url="http://testserver", provider="National De-escalation Training Network")
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


async def sync(db, session_id: int, *, reason: str | None = None) -> SyncResult:
    async with db.write() as conn:
        return await sync_session(
            conn, session_id, actor="admin@example.org", reason=reason, now=NOW, issuer=ISSUER
        )


async def certificates(db, session_id: int) -> list:
    async with db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(Certificate)
                    .where(Certificate.session_id == session_id)
                    .order_by(Certificate.id)
                )
            ).all()
        )


async def certificate_messages(db) -> list:
    async with db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(Message).where(Message.kind == "certificate").order_by(Message.id)
                )
            ).all()
        )


async def test_completers_get_one_certificate_each_with_its_facts_and_qr(
    client, admin_headers, db
) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": True, "Pat Lee": False})

    result = await sync(db, held.session_id)

    assert (result.issued, result.revoked, result.reissued) == (2, 0, 0)
    rows = await certificates(db, held.session_id)
    assert [r.registration_id for r in rows] == [
        held.by_name("José Ñúñez")["id"],
        held.by_name("Sam Rivera")["id"],
    ]
    assert sorted(result.issued_ids) == [r.id for r in rows]
    jose = rows[0]
    assert jose.status == "valid"
    assert canonical_code(jose.code) == jose.code
    text = pdf_text(jose.pdf)
    for expected in (
        "José Ñúñez",
        "DPSST-40112 (OR)",
        "Portland Police Bureau",
        "Managing Bias",
        "Course number MB-101",
        "Credit hours: 14.5",
        "Instructor: Dana Cruz",
        jose.code,
    ):
        assert expected in text, expected
    assert pdf_qr_codes(jose.pdf) == [f"http://testserver/verify/{jose.code}"]
    assert jose.facts["credit_hours"] == "14.5"
    assert len(jose.facts["meeting_dates"]) == 2
    assert jose.facts["completed_on"] == jose.facts["meeting_dates"][-1]

    messages = await certificate_messages(db)
    assert [(m.recipient, m.payload["certificate_id"]) for m in messages] == [
        ("jose@pd.example.org", rows[0].id),
        ("Sam.Rivera@pd.example.org", rows[1].id),
    ]


async def test_a_second_sync_changes_nothing(client, admin_headers, db) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": True})
    await sync(db, held.session_id)
    again = await sync(db, held.session_id)
    assert (again.issued, again.revoked, again.reissued) == (0, 0, 0)
    assert len(await certificates(db, held.session_id)) == 2
    assert len(await certificate_messages(db)) == 2


async def test_no_longer_completed_revokes_without_mail(client, admin_headers, db) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": True})
    await sync(db, held.session_id)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": False})

    result = await sync(db, held.session_id, reason="absent on day 2 (sheet re-checked)")

    assert (result.issued, result.revoked, result.reissued) == (0, 1, 0)
    sam = [
        r
        for r in await certificates(db, held.session_id)
        if r.registration_id == held.by_name("Sam Rivera")["id"]
    ]
    assert [(r.status, r.revoked_reason, r.revoked_at is not None) for r in sam] == [
        ("revoked", "absent on day 2 (sheet re-checked)", True)
    ]
    assert result.revoked_ids == (sam[0].id,)
    assert len(await certificate_messages(db)) == 2


async def test_changed_facts_reissue_with_a_new_code_and_a_new_mail(
    client, admin_headers, db
) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": True})
    await sync(db, held.session_id)
    async with db.write() as conn:
        await conn.execute(
            update(Registration)
            .where(Registration.id == held.by_name("Sam Rivera")["id"])
            .values(name="Samuel Rivera", post_id="IL-7782")
        )

    result = await sync(db, held.session_id, reason=None)

    assert (result.issued, result.revoked, result.reissued) == (0, 0, 1)
    rows = [
        r
        for r in await certificates(db, held.session_id)
        if r.registration_id == held.by_name("Sam Rivera")["id"]
    ]
    old, new = rows
    assert old.status == "revoked"
    assert old.revoked_reason == "replaced: the facts printed on it changed"
    assert old.facts["name"] == "Sam Rivera"  # what it printed stays with it
    assert new.status == "valid"
    assert new.replaces_id == old.id
    assert new.code != old.code
    assert result.reissued_ids == (new.id,)
    assert "Samuel Rivera" in pdf_text(new.pdf)
    assert "IL-7782" in pdf_text(new.pdf)
    assert "Sam Rivera" in pdf_text(old.pdf)
    assert [m.payload["certificate_id"] for m in await certificate_messages(db)][-1] == new.id


async def test_course_without_credit_hours_prints_the_contact_hours(
    client, admin_headers, db
) -> None:
    held = await held_session(client, admin_headers, db, credit_hours=None, course_number=None)
    await set_completions(db, held, {"Pat Lee": True})
    await sync(db, held.session_id)
    (pat,) = await certificates(db, held.session_id)
    text = pdf_text(pat.pdf)
    assert "Credit hours: 16" in text
    assert "Course number" not in text
    assert "Certification number" not in text


async def test_the_provider_is_the_course_s_or_else_the_setting(client, admin_headers, db) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"Pat Lee": True})
    await sync(db, held.session_id)
    (pat,) = await certificates(db, held.session_id)
    assert pat.facts["provider"] == ISSUER.provider


async def test_every_completer_receives_exactly_one_email_with_the_pdf(
    client, admin_headers, db, settings, smtp_server
) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"José Ñúñez": True, "Sam Rivera": True, "Pat Lee": False})
    await sync(db, held.session_id)
    # Sam's facts change before anything is sent: only the replacement goes out.
    async with db.write() as conn:
        await conn.execute(
            update(Registration)
            .where(Registration.id == held.by_name("Sam Rivera")["id"])
            .values(agency="Chicago PD")
        )
    await sync(db, held.session_id, reason="agency corrected")

    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    try:
        await dispatcher.drain()
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    received = [m for m in smtp_server.messages if m["X-Outbox-Kind"] == "certificate"]
    assert sorted(str(m["To"]) for m in received) == [
        "José Ñúñez <jose@pd.example.org>",
        "Sam Rivera <Sam.Rivera@pd.example.org>",
    ]
    valid = {
        r.registration_id: r for r in await certificates(db, held.session_id) if r.status == "valid"
    }
    for email in received:
        pdfs = [p for p in email.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert len(pdfs) == 1
        data = pdfs[0].get_content()
        text = pdf_text(data)
        holder = next(r for r in valid.values() if r.code in text)
        assert data == holder.pdf
        assert pdfs[0].get_filename() == f"certificate-{holder.code}.pdf"
        body = text_of(email)
        assert holder.code in body
        assert f"http://testserver/verify/{holder.code}" in body
        assert "/training" in body
    sam_mail = next(m for m in received if "Sam.Rivera" in str(m["To"]))
    assert "Chicago PD" in pdf_text(next(p for p in sam_mail.iter_attachments()).get_content())
    async with db.read() as conn:
        statuses = (
            await conn.execute(
                select(Message.status, func.count())
                .where(Message.kind == "certificate")
                .group_by(Message.status)
            )
        ).all()
    # Sam's first certificate was revoked before it went out: its message was skipped.
    assert dict((str(s), n) for s, n in statuses) == {"sent": 2, "cancelled": 1}


async def test_verification_lookup_is_the_same_for_malformed_codes(
    client, admin_headers, db
) -> None:
    held = await held_session(client, admin_headers, db)
    await set_completions(db, held, {"Pat Lee": True})
    await sync(db, held.session_id)
    (pat,) = await certificates(db, held.session_id)
    async with db.read() as conn:
        found = await find_by_code(conn, pat.code.lower().replace("-", " "))
        assert found is not None and found.id == pat.id
        assert await find_by_code(conn, new_code()) is None
        for malformed in ("", "x", "0000-0000-0000-0000", "A" * 500, "'; drop table x; --"):
            assert await find_by_code(conn, malformed) is None


def test_codes_carry_80_random_bits_readably() -> None:
    code = new_code()
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert set(code.replace("-", "")) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert canonical_code(code.lower()) == code
    assert canonical_code(code.replace("-", "")) == code
    assert canonical_code(code[:-1]) is None
    assert canonical_code(code[:-1] + "0") is None


@pytest.mark.slow
async def test_codes_never_repeat_across_100000_issued(client, admin_headers, db) -> None:
    codes = [new_code() for _ in range(100_000)]
    assert len(set(codes)) == len(codes)
    held = await held_session(
        client, admin_headers, db, people=[{"name": "Pat Lee", "email": "pat@pd.example.org"}]
    )
    registration_id = held.registrations[0]["id"]
    rows = [
        {
            "registration_id": registration_id,
            "session_id": held.session_id,
            "code": code,
            "status": "revoked",
            "issued_at": NOW,
            "facts": {},
            "pdf": b"",
        }
        for code in codes
    ]
    async with db.write() as conn:
        for start in range(0, len(rows), 10_000):
            await conn.execute(insert(Certificate), rows[start : start + 10_000])
    async with db.read() as conn:
        distinct = (
            await conn.execute(select(func.count(func.distinct(Certificate.code))))
        ).scalar()
    assert distinct == 100_000
    # The database refuses a repeat even if the generator ever produced one.
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(insert(Certificate), [{**rows[0], "code": codes[12_345]}])


def test_the_provider_name_setting(tmp_path) -> None:
    from scheduler.config import ConfigError, Settings

    env = {"SCHEDULER_SECRET_KEY": "x" * 32}
    assert (
        Settings.from_env(env, env_file=None).provider_name
        == "National De-escalation Training Network"
    )
    named = Settings.from_env({**env, "SCHEDULER_PROVIDER_NAME": " Oregon DPSST "}, env_file=None)
    assert named.provider_name == "Oregon DPSST"
    assert Issuer.from_settings(named).provider == "Oregon DPSST"
    with pytest.raises(ConfigError, match="SCHEDULER_PROVIDER_NAME"):
        Settings.from_env({**env, "SCHEDULER_PROVIDER_NAME": "a\nb"}, env_file=None)
