-- 24-hour reminders: on by default, per event the organizer can turn them
-- off. `reminded_for` is the start time whose reminders have all been
-- written: moving the start re-arms them (each reminder's dedupe key holds
-- the start it was written for).
ALTER TABLE events
    ADD COLUMN reminders boolean NOT NULL DEFAULT true,
    ADD COLUMN reminded_for timestamptz;

-- The sweep finds events by `events_published_starts_idx`, and an event's
-- holders by `tickets_event_idx`: no index added to the tables a drop
-- writes.

-- `skipped`: an email that no longer had a reason to go when its turn came
-- (a reminder for a cancelled, started or moved event, for tickets since
-- refunded, or to an address that unsubscribed). `failed` is final: the
-- server refused it for good, or it cannot be rendered; a transient failure
-- goes back to `pending` for its retry.
ALTER TABLE email_log DROP CONSTRAINT email_log_status_check;
ALTER TABLE email_log ADD CONSTRAINT email_log_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped'));

-- Addresses that asked (by the one-click link in a reminder or an
-- organizer's message) for no more such email. Transactional email
-- (tickets, refunds, password resets) is never suppressed.
CREATE TABLE email_suppressions (
    address    citext PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
