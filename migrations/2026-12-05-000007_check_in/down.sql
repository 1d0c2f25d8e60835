DROP INDEX tickets_event_changed_idx;
DROP INDEX check_ins_nonce_key;
DROP INDEX check_ins_ticket_key;
DELETE FROM check_ins WHERE undone_at IS NOT NULL;
ALTER TABLE check_ins
    DROP COLUMN undone_at,
    DROP COLUMN undone_by,
    DROP COLUMN client_nonce,
    ADD CONSTRAINT check_ins_ticket_key UNIQUE (ticket_id);
ALTER TABLE check_ins RENAME COLUMN device TO gate;
DROP TABLE event_staff;
