//! Helpers for purchase tests: a published event, buyers, orders.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TestApp, eventually};

pub struct Shop {
    pub organizer: String,
    pub event_id: String,
    pub tier_id: String,
}

impl TestApp {
    /// A published event with one tier of `seats` at `price_minor` EUR.
    pub async fn shop(&self, seats: i32, price_minor: i64) -> Shop {
        self.shop_with(seats, price_minor, json!({})).await
    }

    /// `shop`, with the event's `fields` (as `create_event` takes them).
    pub async fn shop_with(&self, seats: i32, price_minor: i64, fields: Value) -> Shop {
        let organizer = self
            .organizer(&format!(
                "org-{}@example.com",
                uuid::Uuid::new_v4().simple()
            ))
            .await;
        let event = self.create_event(&organizer, fields).await;
        let event_id = event["id"].as_str().unwrap().to_owned();
        let tier = self
            .create_tier(
                &organizer,
                &event_id,
                json!({"name": "General", "price_minor": price_minor, "quantity": seats, "max_per_order": 10}),
            )
            .await;
        let (status, body) = self
            .post(
                &format!("/v1/events/{event_id}/publish"),
                json!({}),
                Some(&organizer),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Shop {
            organizer,
            event_id,
            tier_id: tier["id"].as_str().unwrap().to_owned(),
        }
    }

    /// A new buyer's order of `seats` in `shop`, once its checkout is open
    /// at whichever provider; returns (buyer, order id, checkout URL).
    pub async fn order_with_checkout(&self, shop: &Shop, seats: i32) -> (String, String, String) {
        let (buyer, _, _) = self
            .register(
                &format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple()),
                "attendee",
            )
            .await;
        let (status, order) = self
            .order(
                &buyer,
                &shop.event_id,
                "k1",
                json!({"items": [{"tier_id": shop.tier_id, "quantity": seats}]}),
            )
            .await;
        assert_eq!(status, 202, "{order}");
        let id = order["id"].as_str().unwrap().to_owned();
        let url = eventually(Duration::from_secs(20), || async {
            let (_, order) = self.get(&format!("/v1/orders/{id}"), Some(&buyer)).await;
            order["checkout_url"]
                .as_str()
                .map(str::to_owned)
                .ok_or(order.to_string())
        })
        .await;
        (buyer, id, url)
    }

    /// Places an order with an Idempotency-Key.
    pub async fn order(&self, token: &str, event_id: &str, key: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .post(self.url(&format!("/v1/events/{event_id}/orders")))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
    }

    /// `buyer` orders one seat of `shop`'s tier with `key`; returns the
    /// order's id and, once its checkout is open, the checkout's URL.
    pub async fn reserved_checkout(&self, buyer: &str, shop: &Shop, key: &str) -> (String, String) {
        let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
        let (status, order) = self.order(buyer, &shop.event_id, key, body).await;
        assert_eq!(status, 202, "{order}");
        let id = order["id"].as_str().unwrap().to_owned();
        let url = eventually(Duration::from_secs(20), || async {
            let (_, order) = self.get(&format!("/v1/orders/{id}"), Some(buyer)).await;
            order["checkout_url"]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("{order}"))
        })
        .await;
        (id, url)
    }

    /// Waits until the order reaches `status`; returns it.
    pub async fn wait_order(&self, token: &str, order_id: &str, status: &str) -> Value {
        eventually(Duration::from_secs(20), || async {
            let (code, order) = self
                .get(&format!("/v1/orders/{order_id}"), Some(token))
                .await;
            if code == 200 && order["status"] == status {
                Ok(order)
            } else {
                Err(format!("{code} {order}"))
            }
        })
        .await
    }

    /// `(held, sold, quantity)` of a tier as the product reads it (paid seats
    /// not yet settled count as sold).
    pub async fn stock(&self, tier_id: &str) -> (i64, i64, i64) {
        use boxoffice_core::{models::Tier, schema::ticket_tiers};
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = self.services.db.get().await.unwrap();
        let tier: Tier = Tier::with_stock()
            .filter(ticket_tiers::id.eq(tier_id.parse::<uuid::Uuid>().unwrap()))
            .select(Tier::as_select())
            .get_result(&mut conn)
            .await
            .unwrap();
        (
            i64::from(tier.held),
            i64::from(tier.sold),
            i64::from(tier.quantity),
        )
    }

    /// One number from SQL.
    pub async fn scalar(&self, query: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.services.db.get().await.unwrap();
        let row: N = diesel::sql_query(query)
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        row.n
    }

    /// The text in column `t` of the one row `query` returns.
    pub async fn scalar_text(&self, query: &str) -> String {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut conn = self.services.db.get().await.unwrap();
        let row: T = diesel::sql_query(query)
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        row.t
    }

    /// Pays (or declines) an order's checkout on the sandbox's hosted page.
    pub async fn settle(&self, checkout_url: &str, action: &str) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .post(format!("{checkout_url}/{action}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "sandbox {action}");
    }
}
