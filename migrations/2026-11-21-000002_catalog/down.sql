ALTER TABLE discount_codes RENAME CONSTRAINT discount_codes_redemptions_cap_check TO discount_codes_check1;
ALTER TABLE discount_codes DROP COLUMN active;
DROP INDEX events_published_geo_idx, events_published_city_idx,
    events_published_category_idx, events_published_price_idx, events_published_newest_idx;
DROP TRIGGER ticket_tiers_min_price ON ticket_tiers;
DROP FUNCTION refresh_event_min_price();
ALTER TABLE events DROP COLUMN min_price_minor;
DROP INDEX events_search_idx;
ALTER TABLE events DROP COLUMN search;
ALTER TABLE events ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple',
        coalesce(title, '') || ' ' || coalesce(description, '') || ' ' ||
        coalesce(venue_name, '') || ' ' || coalesce(city, ''))
) STORED;
CREATE INDEX events_search_idx ON events USING gin (search);
