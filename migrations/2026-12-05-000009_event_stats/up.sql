-- Event stats sum the ledger per event.
CREATE INDEX ledger_entries_event_idx ON ledger_entries (event_id);
