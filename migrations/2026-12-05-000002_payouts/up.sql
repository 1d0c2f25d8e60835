-- Payouts with a revenue split (issue 19): per organizer and currency, a
-- line per event; the ledger knows which event each entry belongs to.

-- Where the provider sends an organizer's money (its recipient id).
ALTER TABLE users ADD COLUMN payout_account text;

-- The payouts table was never written; it becomes one per organizer and
-- currency, with lines per event.
ALTER TABLE payouts
    DROP CONSTRAINT payouts_event_currency_key,
    DROP COLUMN event_id,
    DROP CONSTRAINT payouts_amount_minor_check,
    ADD CONSTRAINT payouts_amount_minor_check CHECK (amount_minor > 0),
    ADD COLUMN provider text NOT NULL,
    ADD COLUMN destination text NOT NULL,
    ADD COLUMN paid_at timestamptz;
-- One payout in flight per organizer and currency: two scheduler ticks (or
-- two schedulers) cannot pay the same balance twice.
CREATE UNIQUE INDEX payouts_in_flight_key ON payouts (organizer_id, currency)
    WHERE status IN ('pending', 'processing');
CREATE INDEX payouts_organizer_idx ON payouts (organizer_id, created_at DESC);

CREATE TABLE payout_lines (
    payout_id     uuid NOT NULL REFERENCES payouts (id) ON DELETE CASCADE,
    event_id      uuid NOT NULL REFERENCES events (id),
    -- What the event owed the organizer (negative: a refund after an
    -- earlier payout, carried into this one).
    amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (payout_id, event_id)
);

ALTER TABLE ledger_entries ADD COLUMN event_id uuid REFERENCES events (id);
UPDATE ledger_entries e SET event_id = o.event_id FROM orders o WHERE o.id = e.order_id;
DROP INDEX ledger_entries_account_idx;
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, currency, event_id);
CREATE INDEX ledger_entries_order_idx ON ledger_entries (order_id);
CREATE INDEX ledger_entries_payout_idx ON ledger_entries (payout_id);
