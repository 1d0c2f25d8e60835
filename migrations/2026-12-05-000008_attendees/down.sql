DROP INDEX tickets_event_name_idx;
DROP INDEX tickets_holder_search_idx;
