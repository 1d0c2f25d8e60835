-- Named guests get their own ticket email unless the organizer turns
-- that off for the event (the buyer's confirmation lists every ticket
-- either way).
ALTER TABLE events ADD COLUMN guest_emails boolean NOT NULL DEFAULT true;

-- An organizer's message to the ticket holders of an event (all of them, or
-- those of chosen tiers). The scheduler fans it out into one `email_log` row
-- per holder in short statements; `fanned_out_at` is set when every row is
-- written, so a lost or interrupted fan-out is simply picked up again.
CREATE TABLE event_messages (
    id            uuid PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    sender_id     uuid NOT NULL REFERENCES users (id),
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body          text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    -- NULL: every holder of the event.
    tier_ids      uuid[],
    fanned_out_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_messages_event_idx ON event_messages (event_id, created_at DESC);
CREATE INDEX event_messages_unsent_idx ON event_messages (created_at) WHERE fanned_out_at IS NULL;

-- Each holder's email of a message, for its progress.
ALTER TABLE email_log ADD COLUMN event_message_id uuid REFERENCES event_messages (id) ON DELETE CASCADE;
CREATE INDEX email_log_event_message_idx ON email_log (event_message_id, status)
    WHERE event_message_id IS NOT NULL;

-- A holder's tickets of an event, as each reminder and message looks them up
-- when sent: without it every email of a 50,000-holder event would scan
-- the event's tickets. It serves lookups by event alone too, so it replaces
-- `tickets_event_idx`: a drop's ticket writes keep the same index count.
CREATE INDEX tickets_event_holder_idx ON tickets (event_id, lower(attendee_email));
DROP INDEX tickets_event_idx;

-- Ops' list of emails: newest first, by recipient, kind or status.
CREATE INDEX email_log_created_idx ON email_log (created_at DESC, id DESC);
CREATE INDEX email_log_to_idx ON email_log (lower(to_address), created_at DESC, id DESC);
