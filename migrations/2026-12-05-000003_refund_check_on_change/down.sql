-- The check on every status change, as before.
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
