DROP TABLE email_suppressions;
UPDATE email_log SET status = 'failed' WHERE status = 'skipped';
ALTER TABLE email_log DROP CONSTRAINT email_log_status_check;
ALTER TABLE email_log ADD CONSTRAINT email_log_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
ALTER TABLE events DROP COLUMN reminded_for, DROP COLUMN reminders;
