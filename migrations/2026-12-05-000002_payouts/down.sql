DROP INDEX ledger_entries_payout_idx;
DROP INDEX ledger_entries_order_idx;
DROP INDEX ledger_entries_account_idx;
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, currency);
ALTER TABLE ledger_entries DROP COLUMN event_id;
DROP TABLE payout_lines;
DROP INDEX payouts_organizer_idx;
DROP INDEX payouts_in_flight_key;
DELETE FROM payouts;
ALTER TABLE payouts
    DROP COLUMN paid_at,
    DROP COLUMN destination,
    DROP COLUMN provider,
    DROP CONSTRAINT payouts_amount_minor_check,
    ADD CONSTRAINT payouts_amount_minor_check CHECK (amount_minor >= 0),
    ADD COLUMN event_id uuid NOT NULL REFERENCES events (id),
    ADD CONSTRAINT payouts_event_currency_key UNIQUE (event_id, currency);
ALTER TABLE users DROP COLUMN payout_account;
