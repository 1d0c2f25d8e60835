// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    use diesel::sql_types::*;

    check_ins (id) {
        id -> Uuid,
        ticket_id -> Uuid,
        event_id -> Uuid,
        scanned_by -> Nullable<Uuid>,
        device -> Nullable<Text>,
        created_at -> Timestamptz,
        undone_at -> Nullable<Timestamptz>,
        undone_by -> Nullable<Uuid>,
        client_nonce -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    event_staff (event_id, user_id) {
        event_id -> Uuid,
        user_id -> Uuid,
        granted_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    discount_codes (id) {
        id -> Uuid,
        event_id -> Uuid,
        code -> Citext,
        kind -> Text,
        amount -> Int8,
        tier_ids -> Nullable<Array<Nullable<Uuid>>>,
        max_redemptions -> Nullable<Int4>,
        redemptions -> Int4,
        per_buyer_limit -> Nullable<Int4>,
        valid_from -> Nullable<Timestamptz>,
        valid_until -> Nullable<Timestamptz>,
        min_order_total_minor -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        active -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    email_suppressions (address) {
        address -> Citext,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    email_log (id) {
        id -> Uuid,
        dedupe_key -> Text,
        template -> Text,
        to_address -> Text,
        user_id -> Nullable<Uuid>,
        params -> Jsonb,
        status -> Text,
        attempts -> Int4,
        message_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        event_message_id -> Nullable<Uuid>,
        due_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    event_images (id) {
        id -> Uuid,
        event_id -> Uuid,
        object_key -> Text,
        content_type -> Text,
        width -> Int4,
        height -> Int4,
        size_bytes -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    event_messages (id) {
        id -> Uuid,
        event_id -> Uuid,
        sender_id -> Uuid,
        subject -> Text,
        body -> Text,
        tier_ids -> Nullable<Array<Uuid>>,
        fanned_out_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    events (id) {
        id -> Uuid,
        organizer_id -> Uuid,
        title -> Text,
        description -> Text,
        category -> Text,
        venue_name -> Text,
        address -> Text,
        city -> Text,
        country -> Text,
        latitude -> Nullable<Float8>,
        longitude -> Nullable<Float8>,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        timezone -> Text,
        capacity -> Nullable<Int4>,
        cover_image_url -> Nullable<Text>,
        refund_until_hours -> Nullable<Int4>,
        #[max_length = 3]
        currency -> Bpchar,
        max_tickets_per_buyer -> Nullable<Int4>,
        status -> Text,
        published_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        search -> Nullable<Tsvector>,
        min_price_minor -> Nullable<Int8>,
        cancel_message -> Nullable<Text>,
        reminders -> Bool,
        reminded_for -> Nullable<Timestamptz>,
        guest_emails -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    ledger_entries (id) {
        id -> Uuid,
        transaction_id -> Uuid,
        account -> Text,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        order_id -> Nullable<Uuid>,
        payment_id -> Nullable<Uuid>,
        refund_id -> Nullable<Uuid>,
        payout_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        event_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    order_items (id) {
        id -> Uuid,
        order_id -> Uuid,
        tier_id -> Uuid,
        quantity -> Int4,
        unit_price_minor -> Int8,
        attendees -> Jsonb,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    orders (id) {
        id -> Uuid,
        event_id -> Uuid,
        buyer_id -> Uuid,
        idempotency_key -> Text,
        request_hash -> Bytea,
        status -> Text,
        reject_reason -> Nullable<Text>,
        discount_code_id -> Nullable<Uuid>,
        #[max_length = 3]
        currency -> Bpchar,
        subtotal_minor -> Int8,
        discount_minor -> Int8,
        total_minor -> Int8,
        provider -> Nullable<Text>,
        provider_checkout_id -> Nullable<Text>,
        checkout_url -> Nullable<Text>,
        reserved_until -> Nullable<Timestamptz>,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payments (id) {
        id -> Uuid,
        order_id -> Uuid,
        provider -> Text,
        provider_payment_id -> Text,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        status -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payouts (id) {
        id -> Uuid,
        organizer_id -> Uuid,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        status -> Text,
        provider_transfer_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        provider -> Text,
        destination -> Text,
        paid_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payout_lines (payout_id, event_id) {
        payout_id -> Uuid,
        event_id -> Uuid,
        amount_minor -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    refunds (id) {
        id -> Uuid,
        order_id -> Uuid,
        payment_id -> Uuid,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        reason -> Text,
        status -> Text,
        provider_refund_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        idempotency_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        kind -> Text,
        ticket_ids -> Array<Uuid>,
        requested_by -> Nullable<Uuid>,
        request_hash -> Nullable<Bytea>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    pending_sales (order_item_id) {
        order_item_id -> Uuid,
        tier_id -> Uuid,
        quantity -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    tier_stock (tier_id) {
        tier_id -> Uuid,
        quantity -> Int4,
        held -> Int4,
        sold -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    ticket_tiers (id) {
        id -> Uuid,
        event_id -> Uuid,
        name -> Text,
        description -> Text,
        price_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        sales_start_at -> Nullable<Timestamptz>,
        sales_end_at -> Nullable<Timestamptz>,
        min_per_order -> Int4,
        max_per_order -> Int4,
        hidden -> Bool,
        unlock_code -> Nullable<Text>,
        low_stock_threshold -> Nullable<Int4>,
        sort_order -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    tickets (id) {
        id -> Uuid,
        order_id -> Uuid,
        order_item_id -> Uuid,
        event_id -> Uuid,
        tier_id -> Uuid,
        owner_id -> Uuid,
        code -> Text,
        seat_index -> Int4,
        attendee_name -> Text,
        attendee_email -> Text,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    user_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        purpose -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    users (id) {
        id -> Uuid,
        email -> Citext,
        password_hash -> Text,
        display_name -> Text,
        role -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        token_version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        payout_account -> Nullable<Text>,
        payment_provider -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhook_deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        queued_at -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        last_latency_ms -> Nullable<Int4>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhook_endpoints (id) {
        id -> Uuid,
        organizer_id -> Uuid,
        url -> Text,
        secret -> Text,
        event_types -> Array<Nullable<Text>>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        description -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhook_events (id) {
        id -> Uuid,
        organizer_id -> Uuid,
        #[sql_name = "type"]
        type_ -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhook_inbox (id) {
        id -> Uuid,
        provider -> Text,
        provider_event_id -> Text,
        event_type -> Text,
        payload -> Jsonb,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(check_ins -> events (event_id));
diesel::joinable!(check_ins -> tickets (ticket_id));
diesel::joinable!(discount_codes -> events (event_id));
diesel::joinable!(email_log -> event_messages (event_message_id));
diesel::joinable!(email_log -> users (user_id));
diesel::joinable!(event_messages -> events (event_id));
diesel::joinable!(event_staff -> events (event_id));
diesel::joinable!(event_messages -> users (sender_id));
diesel::joinable!(event_images -> events (event_id));
diesel::joinable!(events -> users (organizer_id));
diesel::joinable!(ledger_entries -> events (event_id));
diesel::joinable!(ledger_entries -> orders (order_id));
diesel::joinable!(ledger_entries -> payments (payment_id));
diesel::joinable!(ledger_entries -> payouts (payout_id));
diesel::joinable!(ledger_entries -> refunds (refund_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(order_items -> ticket_tiers (tier_id));
diesel::joinable!(orders -> discount_codes (discount_code_id));
diesel::joinable!(orders -> events (event_id));
diesel::joinable!(orders -> users (buyer_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(pending_sales -> order_items (order_item_id));
diesel::joinable!(pending_sales -> ticket_tiers (tier_id));
diesel::joinable!(payout_lines -> events (event_id));
diesel::joinable!(payout_lines -> payouts (payout_id));
diesel::joinable!(payouts -> users (organizer_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(refunds -> orders (order_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(ticket_tiers -> events (event_id));
diesel::joinable!(tickets -> events (event_id));
diesel::joinable!(tickets -> order_items (order_item_id));
diesel::joinable!(tickets -> orders (order_id));
diesel::joinable!(tickets -> ticket_tiers (tier_id));
diesel::joinable!(tickets -> users (owner_id));
diesel::joinable!(tier_stock -> ticket_tiers (tier_id));
diesel::joinable!(user_tokens -> users (user_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> webhook_events (event_id));
diesel::joinable!(webhook_events -> users (organizer_id));
diesel::joinable!(webhook_endpoints -> users (organizer_id));

diesel::allow_tables_to_appear_in_same_query!(
    check_ins,
    discount_codes,
    email_log,
    email_suppressions,
    event_images,
    event_messages,
    event_staff,
    events,
    ledger_entries,
    order_items,
    orders,
    payments,
    payout_lines,
    payouts,
    pending_sales,
    refresh_tokens,
    refunds,
    ticket_tiers,
    tier_stock,
    tickets,
    user_tokens,
    users,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
    webhook_inbox,
);
