DROP INDEX ledger_entries_event_idx;
