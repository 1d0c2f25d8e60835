-- Catalog: what search, listing and discount codes need beyond the foundation.

-- Search quality: English stemming ("concerts" finds "concert") and weights so a
-- title match outranks a description match. Replaces the foundation's 'simple'
-- vector; the column is generated, so nothing needs backfilling.
DROP INDEX events_search_idx;
ALTER TABLE events DROP COLUMN search;
ALTER TABLE events ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(venue_name, '') || ' ' || coalesce(city, '')), 'B') ||
    setweight(to_tsvector('english', coalesce(description, '')), 'C')
) STORED;
CREATE INDEX events_search_idx ON events USING gin (search);

-- "From €25": the lowest price of the event's public tiers, kept by a trigger so
-- that sorting and filtering by price is an indexed column, not a subquery per
-- row. The trigger fires only on the columns that change it, never on the
-- held/sold updates of a ticket drop.
ALTER TABLE events ADD COLUMN min_price_minor bigint;

CREATE FUNCTION refresh_event_min_price() RETURNS trigger AS $$
DECLARE
    target uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.event_id ELSE NEW.event_id END;
BEGIN
    UPDATE events e
       SET min_price_minor = (SELECT min(t.price_minor) FROM ticket_tiers t
                               WHERE t.event_id = target AND NOT t.hidden)
     WHERE e.id = target;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_tiers_min_price
    AFTER INSERT OR DELETE OR UPDATE OF price_minor, hidden ON ticket_tiers
    FOR EACH ROW EXECUTE PROCEDURE refresh_event_min_price();

-- Keyset pagination needs an index per sort order (published events only: the
-- public list never shows anything else).
CREATE INDEX events_published_newest_idx ON events (published_at DESC, id DESC)
    WHERE status = 'published';
CREATE INDEX events_published_price_idx ON events (min_price_minor, id)
    WHERE status = 'published';
CREATE INDEX events_published_category_idx ON events (category, starts_at)
    WHERE status = 'published';
CREATE INDEX events_published_city_idx ON events (lower(city), starts_at)
    WHERE status = 'published';
-- "Near me": a bounding box on latitude narrows the rows the exact great-circle
-- distance is computed for.
CREATE INDEX events_published_geo_idx ON events (latitude, longitude)
    WHERE status = 'published' AND latitude IS NOT NULL;

-- Organizers switch a code off without deleting it (orders keep pointing at it).
ALTER TABLE discount_codes ADD COLUMN active boolean NOT NULL DEFAULT true;

-- Named so that the API can turn a violation into a field error: lowering
-- max_redemptions below what was already redeemed.
ALTER TABLE discount_codes RENAME CONSTRAINT discount_codes_check1 TO discount_codes_redemptions_cap_check;
