-- When an unsent email's job is next due: its creation, or the end of the
-- wait a deferral chose (the SMTP server away). The sweep counts a job lost
-- only once it is overdue, so an email waiting out a long outage is not
-- pushed again on every sweep.
ALTER TABLE email_log ADD COLUMN due_at timestamptz NOT NULL DEFAULT now();
DROP INDEX email_log_unsent_idx;
CREATE INDEX email_log_unsent_idx ON email_log (due_at) WHERE status IN ('pending', 'sending');
