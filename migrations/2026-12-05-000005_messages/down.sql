CREATE INDEX tickets_event_idx ON tickets (event_id);
DROP INDEX tickets_event_holder_idx;
DROP INDEX email_log_to_idx;
DROP INDEX email_log_created_idx;
ALTER TABLE email_log DROP COLUMN event_message_id;
DROP TABLE event_messages;
ALTER TABLE events DROP COLUMN guest_emails;
