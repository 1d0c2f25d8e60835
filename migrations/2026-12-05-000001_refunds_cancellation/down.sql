ALTER TABLE events DROP COLUMN cancel_message;
DROP TRIGGER refunds_within_payment ON refunds;
DROP FUNCTION refunds_within_payment();
DROP INDEX refunds_payment_idx;
DROP INDEX refunds_open_idx;
ALTER TABLE refunds
    DROP COLUMN request_hash,
    DROP COLUMN requested_by,
    DROP COLUMN ticket_ids,
    DROP COLUMN kind,
    DROP CONSTRAINT refunds_status_check;
UPDATE refunds SET status = 'pending' WHERE status = 'requested';
ALTER TABLE refunds
    ALTER COLUMN status SET DEFAULT 'pending',
    ADD CONSTRAINT refunds_status_check
        CHECK (status IN ('pending', 'processing', 'succeeded', 'failed'));
CREATE INDEX refunds_open_idx ON refunds (created_at) WHERE status IN ('pending', 'processing');
