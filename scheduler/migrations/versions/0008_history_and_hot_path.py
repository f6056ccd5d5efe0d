"""history indexes, retention marker, one-round-trip registration

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 08:40:00

- ``register_person`` (PostgreSQL only): the whole registration as one server-side function,
  so the session's row lock is never held across the network (scheduler/registration_sql.py).
- Indexes that keep history-listing pages and the retention job off full scans: sessions by
  start and by end (dashboard: upcoming first, past paged), messages by status and id (outbox
  page, newest first) and by status and sent time (retention deletes).
- ``training_sessions.personal_data_removed_at``: when retention anonymised its registrants.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

REGISTER_FUNCTION = """
CREATE OR REPLACE FUNCTION register_person(
    p_session_id integer, p_attendance text, p_name text, p_email text, p_email_key text,
    p_agency text, p_agency_key text, p_rank text, p_token text, p_now timestamp,
    p_reminder_offsets integer[]
) RETURNS TABLE (
    result text, registration_id integer, waitlist_position integer,
    session_row training_sessions, course_slug text, course_title text
)
LANGUAGE plpgsql AS $fn$
DECLARE
    s training_sessions%ROWTYPE;
    c courses%ROWTYPE;
    p seat_pools%ROWTYPE;
    v_status text := 'waitlisted';
    v_ticket integer;
    v_position integer;
    v_id integer;
BEGIN
    SELECT * INTO s FROM training_sessions WHERE id = p_session_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found', NULL::integer, NULL::integer, s, NULL::text, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO c FROM courses WHERE id = s.course_id;
    IF s.status = 'cancelled' THEN
        RETURN QUERY SELECT 'cancelled', NULL::integer, NULL::integer, s, c.slug::text,
            c.title::text;
        RETURN;
    END IF;
    IF p_now >= coalesce(s.registration_closes_at, s.starts_at) OR p_now >= s.starts_at THEN
        RETURN QUERY SELECT 'closed', NULL::integer, NULL::integer, s, c.slug::text,
            c.title::text;
        RETURN;
    END IF;
    SELECT * INTO p FROM seat_pools WHERE session_id = p_session_id AND attendance = p_attendance;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_pool', NULL::integer, NULL::integer, s, c.slug::text,
            c.title::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM registrations r WHERE r.session_id = p_session_id
                  AND r.email_key = p_email_key AND r.status != 'cancelled') THEN
        RETURN QUERY SELECT 'duplicate', NULL::integer, NULL::integer, s, c.slug::text,
            c.title::text;
        RETURN;
    END IF;
    IF s.max_per_agency IS NULL OR (
        SELECT count(*) FROM registrations r WHERE r.session_id = p_session_id
           AND r.agency_key = p_agency_key AND r.status = 'confirmed'
    ) < s.max_per_agency THEN
        UPDATE seat_pools SET confirmed = confirmed + 1
         WHERE id = p.id AND confirmed < capacity;
        IF FOUND THEN
            v_status := 'confirmed';
        END IF;
    END IF;
    IF v_status = 'waitlisted' THEN
        UPDATE seat_pools SET waitlist_seq = waitlist_seq + 1 WHERE id = p.id
        RETURNING waitlist_seq INTO v_ticket;
        SELECT count(*) + 1 INTO v_position FROM registrations r
         WHERE r.pool_id = p.id AND r.status = 'waitlisted';
    END IF;
    INSERT INTO registrations (session_id, pool_id, attendance, name, email, email_key, agency,
                               agency_key, rank, status, waitlist_seq, token, created_at,
                               updated_at, confirmed_at, sequence)
    VALUES (p_session_id, p.id, p_attendance, p_name, p_email, p_email_key, p_agency,
            p_agency_key, p_rank, v_status, v_ticket, p_token, p_now, p_now,
            CASE WHEN v_status = 'confirmed' THEN p_now END, 0)
    RETURNING id INTO v_id;
    IF v_status = 'confirmed' THEN
        INSERT INTO messages (kind, recipient, registration_id, session_id, payload, due_at,
                              status, attempts, created_at)
        SELECT 'confirmation', p_email, v_id, p_session_id, '{}'::json, p_now, 'pending', 0,
               p_now
        UNION ALL
        SELECT 'reminder', p_email, v_id, p_session_id,
               json_build_object('offset_seconds', o.seconds), s.starts_at - make_interval(
                   secs => o.seconds), 'pending', 0, p_now
          FROM unnest(p_reminder_offsets) WITH ORDINALITY AS o(seconds, n)
         WHERE s.starts_at - make_interval(secs => o.seconds) > p_now;
    ELSE
        INSERT INTO messages (kind, recipient, registration_id, session_id, payload, due_at,
                              status, attempts, created_at)
        VALUES ('waitlisted', p_email, v_id, p_session_id,
                json_build_object('position', v_position), p_now, 'pending', 0, p_now);
    END IF;
    RETURN QUERY SELECT v_status, v_id, v_position, s, c.slug::text, c.title::text;
END
$fn$
"""
DROP_REGISTER_FUNCTION = (
    "DROP FUNCTION IF EXISTS register_person(integer, text, text, text, text, text, text, text,"
    " text, timestamp, integer[])"
)

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("personal_data_removed_at", sa.DateTime(), nullable=True))
    op.create_index("ix_training_sessions_start", "training_sessions", ["starts_at"])
    op.create_index("ix_training_sessions_end", "training_sessions", ["ends_at"])
    op.create_index("ix_messages_status_id", "messages", ["status", "id"])
    op.create_index("ix_messages_status_sent", "messages", ["status", "sent_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REGISTER_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_REGISTER_FUNCTION)
    op.drop_index("ix_messages_status_sent", table_name="messages")
    op.drop_index("ix_messages_status_id", table_name="messages")
    op.drop_index("ix_training_sessions_end", table_name="training_sessions")
    op.drop_index("ix_training_sessions_start", table_name="training_sessions")
    with op.batch_alter_table("training_sessions") as batch:
        batch.drop_column("personal_data_removed_at")
