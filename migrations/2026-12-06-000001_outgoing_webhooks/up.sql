-- Outgoing webhooks: organizers' endpoints, the events they subscribe to,
-- one delivery per (endpoint, event).
--
-- The outbox is written by triggers, in the transaction of the change it
-- reports, whichever code path made the change (a reservation batch, a
-- payment, an expiry sweep, a cancellation, a check-in): none is lost if
-- Redis is down, none is written for a change that rolled back. The
-- scheduler's relay pushes a job per new delivery; the job pushes its own
-- retries. Statement-level triggers over transition tables keep batched
-- writes one trigger call per statement, and they return at once while no
-- endpoint is enabled.

ALTER TABLE webhook_endpoints
    ADD COLUMN description text NOT NULL DEFAULT '',
    -- The secret a rotation replaced, still signing until `previous_secret_until`.
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_until timestamptz,
    -- First failure of the current run of failures; cleared by a success.
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN disabled_at timestamptz;
CREATE INDEX webhook_endpoints_enabled_idx ON webhook_endpoints (organizer_id) WHERE enabled;

-- One domain event, as sent: `{type, timestamp, data}`.
CREATE TABLE webhook_events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organizer_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type          text NOT NULL,
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_organizer_idx ON webhook_events (organizer_id, created_at);

-- Deliveries were never written before this migration: reshape freely.
DROP TABLE webhook_deliveries;
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    -- `sending`: an attempt is in flight until `next_attempt_at` (its lease).
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'exhausted')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz DEFAULT now(),
    -- Set when the relay pushed the first job; NULL rows are the relay's.
    queued_at        timestamptz,
    last_status_code integer,
    last_error       text,
    last_latency_ms  integer,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
SELECT manage_updated_at('webhook_deliveries');
CREATE INDEX webhook_deliveries_unqueued_idx ON webhook_deliveries (created_at) WHERE queued_at IS NULL;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'sending', 'failed');
-- An endpoint's log, newest first, and its attempts in flight.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_in_flight_idx ON webhook_deliveries (endpoint_id) WHERE status = 'sending';

-- Records events (organizer, type, data) for the enabled endpoints that
-- subscribe to them, and a delivery per such endpoint. Events nobody
-- subscribes to are not kept.
CREATE FUNCTION webhook_publish(organizers uuid[], types text[], datas jsonb[]) RETURNS void
LANGUAGE sql AS $$
    WITH wanted AS (
        SELECT gen_random_uuid() AS id, e.organizer, e.type, e.data
          FROM unnest(organizers, types, datas) AS e (organizer, type, data)
         WHERE e.type IS NOT NULL
           AND EXISTS (SELECT 1 FROM webhook_endpoints w
                        WHERE w.organizer_id = e.organizer AND w.enabled
                          AND e.type = ANY (w.event_types))
    ), stored AS (
        INSERT INTO webhook_events (id, organizer_id, type, data)
        SELECT id, organizer, type, data FROM wanted
        RETURNING id, organizer_id, type
    )
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT w.id, s.id
      FROM stored s JOIN webhook_endpoints w
        ON w.organizer_id = s.organizer_id AND w.enabled AND s.type = ANY (w.event_types);
$$;

CREATE FUNCTION webhook_orders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_publish(array_agg(e.organizer_id), array_agg(t.type), array_agg(c.data))
       FROM (SELECT n.event_id,
                    CASE
                        -- Reserved: the order holds its seats and awaits payment.
                        WHEN n.status = 'awaiting_payment' THEN ARRAY['order.created']
                        -- A free order goes straight to paid: created, then paid.
                        WHEN n.status = 'paid' AND o.status = 'pending'
                            THEN ARRAY['order.created', 'order.paid']
                        WHEN n.status = 'paid' THEN ARRAY['order.paid']
                        WHEN n.status = 'cancelled' THEN ARRAY['order.cancelled']
                        WHEN n.status = 'expired' THEN ARRAY['order.expired']
                        WHEN n.status IN ('refunded', 'partially_refunded') THEN ARRAY['order.refunded']
                    END AS types,
                    jsonb_build_object(
                        'id', n.id, 'event_id', n.event_id, 'buyer_id', n.buyer_id,
                        'status', n.status, 'currency', n.currency,
                        'subtotal_minor', n.subtotal_minor, 'discount_minor', n.discount_minor,
                        'total_minor', n.total_minor, 'paid_at', n.paid_at,
                        'created_at', n.created_at) AS data
               FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.status IS DISTINCT FROM o.status) c
       -- A change nobody reports (NULL types) unnests to no row.
       CROSS JOIN LATERAL unnest(c.types) AS t (type)
       JOIN events e ON e.id = c.event_id;
    RETURN NULL;
END $$;
CREATE TRIGGER orders_webhooks AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_orders_changed();

CREATE FUNCTION webhook_events_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_publish(array_agg(n.organizer_id),
                array_agg('event.' || n.status),
                array_agg(jsonb_build_object(
                    'id', n.id, 'title', n.title, 'status', n.status,
                    'starts_at', n.starts_at, 'ends_at', n.ends_at, 'timezone', n.timezone,
                    'published_at', n.published_at, 'cancelled_at', n.cancelled_at,
                    'message', n.cancel_message)))
       FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE n.status IS DISTINCT FROM o.status AND n.status IN ('published', 'cancelled');
    RETURN NULL;
END $$;
CREATE TRIGGER events_webhooks AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_events_changed();

CREATE FUNCTION webhook_payouts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_publish(array_agg(n.organizer_id), array_agg('payout.paid'::text),
                array_agg(jsonb_build_object(
                    'id', n.id, 'amount_minor', n.amount_minor, 'currency', n.currency,
                    'status', n.status, 'paid_at', n.paid_at)))
       FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE n.status = 'paid' AND o.status IS DISTINCT FROM 'paid';
    RETURN NULL;
END $$;
CREATE TRIGGER payouts_webhooks AFTER UPDATE ON payouts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_payouts_changed();

CREATE FUNCTION webhook_check_ins_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_publish(array_agg(e.organizer_id), array_agg('ticket.checked_in'::text),
                array_agg(jsonb_build_object(
                    'ticket_id', n.ticket_id, 'event_id', n.event_id,
                    'order_id', t.order_id, 'tier_id', t.tier_id,
                    'attendee_name', t.attendee_name, 'device', n.device,
                    'checked_in_at', n.created_at)))
       FROM new_rows n JOIN tickets t ON t.id = n.ticket_id JOIN events e ON e.id = n.event_id;
    RETURN NULL;
END $$;
CREATE TRIGGER check_ins_webhooks AFTER INSERT ON check_ins
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_check_ins_added();
