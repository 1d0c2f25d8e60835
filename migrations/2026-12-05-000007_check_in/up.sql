-- Door staff: users an organizer lets scan one event's tickets.
CREATE TABLE event_staff (
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id),
    granted_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id)
);

-- A check-in can be undone (a mistaken scan); the undone one stays as
-- history and the ticket can be scanned again.
ALTER TABLE check_ins RENAME COLUMN gate TO device;
ALTER TABLE check_ins
    ADD COLUMN undone_at timestamptz,
    ADD COLUMN undone_by uuid REFERENCES users (id),
    -- An offline door app's id for one scan: uploading it twice is harmless.
    ADD COLUMN client_nonce text,
    DROP CONSTRAINT check_ins_ticket_key;
-- A ticket gets in once at a time.
CREATE UNIQUE INDEX check_ins_ticket_key ON check_ins (ticket_id) WHERE undone_at IS NULL;
CREATE UNIQUE INDEX check_ins_nonce_key ON check_ins (event_id, client_nonce)
    WHERE client_nonce IS NOT NULL;
-- Door apps sync the tickets changed since their last sync.
CREATE INDEX tickets_event_changed_idx ON tickets (event_id, updated_at, id);
