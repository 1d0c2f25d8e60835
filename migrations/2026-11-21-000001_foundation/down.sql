DROP TABLE IF EXISTS email_log, webhook_deliveries, webhook_endpoints, webhook_inbox,
    ledger_entries, payouts, refunds, payments, check_ins, tickets, order_items, orders,
    discount_codes, ticket_tiers, event_images, events, user_tokens, refresh_tokens, users CASCADE;
DROP FUNCTION IF EXISTS ledger_transaction_balances();
DROP FUNCTION IF EXISTS manage_updated_at(regclass);
DROP FUNCTION IF EXISTS set_updated_at();
