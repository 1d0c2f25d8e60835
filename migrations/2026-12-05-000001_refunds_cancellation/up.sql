-- Refunds on request and event cancellation (issue 19).

-- A refund is `requested` in the request's transaction, `processing` once
-- the provider has it, then `succeeded` or `failed`. Its kind says what it
-- does to the order: `order` (asked for by the buyer, the organizer or an
-- admin) and `event_cancelled` refund the order's tickets or part of its
-- amount; `returned` gives back a payment that could not be applied (late,
-- duplicate, mismatched) and leaves a paid order as it is.
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
UPDATE refunds SET status = 'requested' WHERE status = 'pending';
ALTER TABLE refunds
    ALTER COLUMN status SET DEFAULT 'requested',
    ADD CONSTRAINT refunds_status_check
        CHECK (status IN ('requested', 'processing', 'succeeded', 'failed')),
    ADD COLUMN kind text NOT NULL DEFAULT 'returned'
        CHECK (kind IN ('returned', 'order', 'event_cancelled')),
    -- The tickets it voids (none for a partial amount).
    ADD COLUMN ticket_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN requested_by uuid REFERENCES users (id),
    -- SHA-256 of the request, to tell a replayed Idempotency-Key from a reused one.
    ADD COLUMN request_hash bytea;
DROP INDEX refunds_open_idx;
CREATE INDEX refunds_open_idx ON refunds (updated_at) WHERE status IN ('requested', 'processing');
CREATE INDEX refunds_payment_idx ON refunds (payment_id);

-- A payment is never refunded beyond its amount, whatever the code above
-- does and however many requests race: the payment row is locked, so
-- concurrent refunds of one payment are checked one after the other.
-- Failed refunds give nothing back and do not count.
CREATE OR REPLACE FUNCTION refunds_within_payment() RETURNS trigger AS $$
DECLARE
    paid bigint;
    taken bigint;
BEGIN
    IF NEW.status = 'failed' THEN
        RETURN NEW;
    END IF;
    SELECT amount_minor INTO paid FROM payments WHERE id = NEW.payment_id FOR UPDATE;
    SELECT coalesce(sum(amount_minor), 0) INTO taken
      FROM refunds
     WHERE payment_id = NEW.payment_id AND id <> NEW.id AND status <> 'failed';
    IF taken + NEW.amount_minor > paid THEN
        RAISE EXCEPTION 'refunds of payment % would exceed its amount (% + % > %)',
            NEW.payment_id, taken, NEW.amount_minor, paid
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_payment',
                  TABLE = 'refunds';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER refunds_within_payment
    BEFORE INSERT OR UPDATE OF status, amount_minor ON refunds
    FOR EACH ROW EXECUTE PROCEDURE refunds_within_payment();

-- What the organizer told the attendees when cancelling.
ALTER TABLE events ADD COLUMN cancel_message text;

-- The cancellation's progress and sweep: an event's orders by status.
-- (orders_event_idx is (event_id, status) already.)
