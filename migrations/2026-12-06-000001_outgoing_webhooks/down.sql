DROP TRIGGER check_ins_webhooks ON check_ins;
DROP TRIGGER payouts_webhooks ON payouts;
DROP TRIGGER events_webhooks ON events;
DROP TRIGGER orders_webhooks ON orders;
DROP FUNCTION webhook_check_ins_added();
DROP FUNCTION webhook_payouts_changed();
DROP FUNCTION webhook_events_changed();
DROP FUNCTION webhook_orders_changed();
DROP FUNCTION webhook_publish(uuid[], text[], jsonb[]);
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'exhausted')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    dedupe_key       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_dedupe_key UNIQUE (endpoint_id, dedupe_key)
);
SELECT manage_updated_at('webhook_deliveries');
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
DROP INDEX webhook_endpoints_enabled_idx;
ALTER TABLE webhook_endpoints
    DROP COLUMN description, DROP COLUMN previous_secret, DROP COLUMN previous_secret_until,
    DROP COLUMN failing_since, DROP COLUMN disabled_at;
