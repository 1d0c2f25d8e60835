-- An organizer's own payment provider (set with their payout account):
-- their events' checkouts and their payouts go to it. NULL: the platform's
-- default (`PAYMENT_PROVIDER`). Checked against the providers set up when
-- it is written, not here: a provider may be set up later.
ALTER TABLE users ADD COLUMN payment_provider text;
