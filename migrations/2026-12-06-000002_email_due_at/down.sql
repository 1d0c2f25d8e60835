DROP INDEX email_log_unsent_idx;
ALTER TABLE email_log DROP COLUMN due_at;
CREATE INDEX email_log_unsent_idx ON email_log (created_at) WHERE status IN ('pending', 'sending');
