-- Attendee search: a substring of a holder's name or email, per event.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX tickets_holder_search_idx ON tickets
    USING gin ((lower(attendee_name || ' ' || attendee_email)) gin_trgm_ops);
-- Attendee lists page by name.
CREATE INDEX tickets_event_name_idx ON tickets (event_id, lower(attendee_name), id);
