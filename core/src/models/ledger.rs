//! The double-entry ledger: the only place that builds the legs of a money
//! movement and writes `ledger_entries`. Every movement is a transaction of
//! legs whose signed amounts sum to zero (a deferred trigger refuses the
//! commit otherwise); accounts are named `cash:<provider>` (money held at
//! the provider), `organizer:<id>:payable` (what the platform owes an
//! organizer) and `platform:revenue` (its fees). Each entry names the event
//! it belongs to (but a payout's cash leg, which covers several), so an
//! organizer's balance per event is a sum of entries.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::prepared::Prepare;

/// One money movement, with the rows it belongs to.
#[derive(Debug, Clone)]
pub enum Movement<'a> {
    /// A buyer paid `amount_minor` through `provider` for an order of the
    /// organizer's: cash in, owed to the organizer.
    Payment {
        provider: &'a str,
        organizer_id: Uuid,
        event_id: Uuid,
        amount_minor: i64,
        currency: &'a str,
        order_id: Uuid,
        payment_id: Uuid,
    },
    /// The platform's fee on a paid order: out of what the organizer is
    /// owed, into the platform's revenue.
    PlatformFee {
        organizer_id: Uuid,
        event_id: Uuid,
        amount_minor: i64,
        currency: &'a str,
        order_id: Uuid,
        payment_id: Uuid,
    },
    /// Money given back to a buyer: the payment's legs reversed.
    Refund {
        provider: &'a str,
        organizer_id: Uuid,
        event_id: Uuid,
        amount_minor: i64,
        currency: &'a str,
        order_id: Uuid,
        payment_id: Uuid,
        refund_id: Uuid,
    },
    /// What the organizer is owed for each event (`lines`, a negative one
    /// carried from a refund after an earlier payout) leaves for their
    /// account: one leg per event, one cash leg for the total.
    Payout {
        provider: &'a str,
        organizer_id: Uuid,
        currency: &'a str,
        payout_id: Uuid,
        lines: &'a [(Uuid, i64)],
    },
    /// A payout the provider refused: its legs reversed, the balance back.
    PayoutReversal {
        provider: &'a str,
        organizer_id: Uuid,
        currency: &'a str,
        payout_id: Uuid,
        lines: &'a [(Uuid, i64)],
    },
}

/// One leg of a transaction.
struct Leg {
    account: String,
    amount_minor: i64,
    event_id: Option<Uuid>,
}

impl Leg {
    fn new(account: String, amount_minor: i64, event_id: Option<Uuid>) -> Self {
        Self {
            account,
            amount_minor,
            event_id,
        }
    }
}

/// The rows a transaction's entries point at.
#[derive(Default, Clone, Copy)]
struct Refs {
    order_id: Option<Uuid>,
    payment_id: Option<Uuid>,
    refund_id: Option<Uuid>,
    payout_id: Option<Uuid>,
}

/// Money held at a provider.
pub fn cash(provider: &str) -> String {
    format!("cash:{provider}")
}

/// What the platform owes an organizer (negative balance: owed to them).
pub fn payable(organizer_id: Uuid) -> String {
    format!("organizer:{organizer_id}:payable")
}

/// The platform's fees.
pub const PLATFORM_REVENUE: &str = "platform:revenue";

/// A payout's legs: each event's line out of payable, the total out of cash
/// (`sign` -1 reverses them).
fn payout_legs(provider: &str, organizer_id: Uuid, lines: &[(Uuid, i64)], sign: i64) -> Vec<Leg> {
    let total: i64 = lines.iter().map(|l| l.1).sum();
    lines
        .iter()
        .map(|&(event_id, amount)| Leg::new(payable(organizer_id), sign * amount, Some(event_id)))
        .chain([Leg::new(cash(provider), -sign * total, None)])
        .collect()
}

impl Movement<'_> {
    /// Its legs (summing to zero), currency and references.
    fn entries(&self) -> (Vec<Leg>, &str, Refs) {
        match *self {
            Movement::Payment {
                provider,
                organizer_id,
                event_id,
                amount_minor,
                currency,
                order_id,
                payment_id,
            } => (
                vec![
                    Leg::new(cash(provider), amount_minor, Some(event_id)),
                    Leg::new(payable(organizer_id), -amount_minor, Some(event_id)),
                ],
                currency,
                Refs {
                    order_id: Some(order_id),
                    payment_id: Some(payment_id),
                    ..Refs::default()
                },
            ),
            Movement::PlatformFee {
                organizer_id,
                event_id,
                amount_minor,
                currency,
                order_id,
                payment_id,
            } => (
                vec![
                    Leg::new(payable(organizer_id), amount_minor, Some(event_id)),
                    Leg::new(PLATFORM_REVENUE.into(), -amount_minor, Some(event_id)),
                ],
                currency,
                Refs {
                    order_id: Some(order_id),
                    payment_id: Some(payment_id),
                    ..Refs::default()
                },
            ),
            Movement::Refund {
                provider,
                organizer_id,
                event_id,
                amount_minor,
                currency,
                order_id,
                payment_id,
                refund_id,
            } => (
                vec![
                    Leg::new(payable(organizer_id), amount_minor, Some(event_id)),
                    Leg::new(cash(provider), -amount_minor, Some(event_id)),
                ],
                currency,
                Refs {
                    order_id: Some(order_id),
                    payment_id: Some(payment_id),
                    refund_id: Some(refund_id),
                    payout_id: None,
                },
            ),
            Movement::Payout {
                provider,
                organizer_id,
                currency,
                payout_id,
                lines,
            } => (
                payout_legs(provider, organizer_id, lines, 1),
                currency,
                Refs {
                    payout_id: Some(payout_id),
                    ..Refs::default()
                },
            ),
            Movement::PayoutReversal {
                provider,
                organizer_id,
                currency,
                payout_id,
                lines,
            } => (
                payout_legs(provider, organizer_id, lines, -1),
                currency,
                Refs {
                    payout_id: Some(payout_id),
                    ..Refs::default()
                },
            ),
        }
    }
}

/// Posts movements, each its own balanced transaction, in one statement (of
/// one text for any number of entries: parsed once per connection). Zero
/// legs are skipped. Returns the transactions' ids in order.
pub async fn post(
    conn: &mut AsyncPgConnection,
    movements: &[Movement<'_>],
) -> QueryResult<Vec<Uuid>> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
    let ids: Vec<Uuid> = movements.iter().map(|_| Uuid::now_v7()).collect();
    let entries: Vec<_> = movements.iter().map(Movement::entries).collect();
    // (transaction, currency, leg, refs) per entry.
    let rows: Vec<(Uuid, &str, &Leg, Refs)> = entries
        .iter()
        .zip(&ids)
        .flat_map(|((legs, currency, refs), transaction_id)| {
            legs.iter()
                .filter(|l| l.amount_minor != 0)
                .map(move |l| (*transaction_id, *currency, l, *refs))
        })
        .collect();
    if rows.is_empty() {
        return Ok(ids);
    }
    let refs = |f: fn(&Refs) -> Option<Uuid>| rows.iter().map(|r| f(&r.3)).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO ledger_entries (id, transaction_id, account, amount_minor, currency,
                                     order_id, payment_id, refund_id, payout_id, event_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                              $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[], $10::uuid[])",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        rows.iter()
            .map(|r| r.2.account.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.2.amount_minor).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.order_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.payment_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.refund_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.payout_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(rows.iter().map(|r| r.2.event_id).collect::<Vec<_>>())
    .prepared()
    .execute(conn)
    .await?;
    Ok(ids)
}

/// What `boxoffice ledger check` found: each problem named, with the row.
#[derive(Debug, Default)]
pub struct Report {
    pub transactions: i64,
    pub orders: i64,
    pub problems: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} transactions, {} paid orders checked: {}",
            self.transactions,
            self.orders,
            if self.problems.is_empty() {
                "the ledger balances".to_owned()
            } else {
                format!("{} problems", self.problems.len())
            }
        )?;
        for problem in &self.problems {
            writeln!(f, "- {problem}")?;
        }
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Unbalanced {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    transaction_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    off_by: i64,
}

#[derive(QueryableByName)]
struct Mismatch {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    order_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    expected: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    booked: i64,
}

#[derive(QueryableByName)]
struct PayoutMismatch {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    payout_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    amount_minor: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    lines_minor: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    cash_minor: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Proves the ledger from the rows it stands for: every transaction sums
/// to zero per currency; each order's cash entries equal its successful
/// payments minus its successful refunds; each payout's lines add up to its
/// amount and its cash entries to what it paid out (nothing once failed
/// and reversed). (The balance trigger guards
/// writes; this also catches what got past it: a trigger disabled, a row
/// edited by hand, a movement never posted.)
pub async fn check(conn: &mut AsyncPgConnection) -> QueryResult<Report> {
    let transactions =
        diesel::sql_query("SELECT count(DISTINCT transaction_id) AS n FROM ledger_entries")
            .get_result::<Count>(conn)
            .await?
            .n;
    let unbalanced: Vec<Unbalanced> = diesel::sql_query(
        "SELECT transaction_id, currency::text AS currency, sum(amount_minor)::bigint AS off_by
           FROM ledger_entries GROUP BY transaction_id, currency
         HAVING sum(amount_minor) <> 0 ORDER BY transaction_id",
    )
    .load(conn)
    .await?;
    let orders = diesel::sql_query("SELECT count(DISTINCT order_id) AS n FROM payments")
        .get_result::<Count>(conn)
        .await?
        .n;
    let mismatched: Vec<Mismatch> = diesel::sql_query(
        "WITH paid AS (SELECT order_id, sum(amount_minor) AS amount FROM payments
                        WHERE status = 'succeeded' GROUP BY order_id),
              refunded AS (SELECT order_id, sum(amount_minor) AS amount FROM refunds
                            WHERE status = 'succeeded' GROUP BY order_id),
              booked AS (SELECT order_id, sum(amount_minor) AS amount FROM ledger_entries
                          WHERE account LIKE 'cash:%' AND order_id IS NOT NULL GROUP BY order_id)
         SELECT o.order_id,
                (coalesce(p.amount, 0) - coalesce(r.amount, 0))::bigint AS expected,
                coalesce(b.amount, 0)::bigint AS booked
           FROM (SELECT order_id FROM paid UNION SELECT order_id FROM booked) o
           LEFT JOIN paid p USING (order_id)
           LEFT JOIN refunded r USING (order_id)
           LEFT JOIN booked b USING (order_id)
          WHERE coalesce(p.amount, 0) - coalesce(r.amount, 0) <> coalesce(b.amount, 0)
          ORDER BY o.order_id",
    )
    .load(conn)
    .await?;
    let payouts: Vec<PayoutMismatch> = diesel::sql_query(
        "SELECT p.id AS payout_id, p.status, p.amount_minor,
                coalesce((SELECT sum(l.amount_minor) FROM payout_lines l WHERE l.payout_id = p.id), 0)::bigint
                    AS lines_minor,
                coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                           WHERE e.payout_id = p.id AND e.account LIKE 'cash:%'), 0)::bigint AS cash_minor
           FROM payouts p",
    )
    .load(conn)
    .await?;
    let mut problems: Vec<String> = unbalanced
        .into_iter()
        .map(|u| {
            format!(
                "transaction {} does not balance in {} (off by {})",
                u.transaction_id, u.currency, u.off_by
            )
        })
        .collect();
    problems.extend(mismatched.into_iter().map(|m| {
        format!(
            "order {}: paid minus refunded is {}, its cash entries say {}",
            m.order_id, m.expected, m.booked
        )
    }));
    for p in payouts {
        let failed = p.status == crate::models::PayoutStatus::Failed.as_str();
        let paid_out = if failed { 0 } else { p.amount_minor };
        if p.lines_minor != p.amount_minor || -p.cash_minor != paid_out {
            problems.push(format!(
                "payout {} ({}): amount {}, lines add up to {}, cash entries say {} out",
                p.payout_id, p.status, p.amount_minor, p.lines_minor, -p.cash_minor
            ));
        }
    }
    Ok(Report {
        transactions,
        orders,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_movement_balances() {
        let (organizer, event, order, payment, refund) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let lines = [(event, 2_000), (Uuid::now_v7(), -300)];
        let movements = [
            Movement::Payment {
                provider: "sandbox",
                organizer_id: organizer,
                event_id: event,
                amount_minor: 2500,
                currency: "EUR",
                order_id: order,
                payment_id: payment,
            },
            Movement::Refund {
                provider: "sandbox",
                organizer_id: organizer,
                event_id: event,
                amount_minor: 1000,
                currency: "EUR",
                order_id: order,
                payment_id: payment,
                refund_id: refund,
            },
            Movement::PlatformFee {
                organizer_id: organizer,
                event_id: event,
                amount_minor: 113,
                currency: "EUR",
                order_id: order,
                payment_id: payment,
            },
            Movement::Payout {
                provider: "sandbox",
                organizer_id: organizer,
                currency: "EUR",
                payout_id: Uuid::now_v7(),
                lines: &lines,
            },
            Movement::PayoutReversal {
                provider: "sandbox",
                organizer_id: organizer,
                currency: "EUR",
                payout_id: Uuid::now_v7(),
                lines: &lines,
            },
        ];
        for movement in &movements {
            let (legs, _, _) = movement.entries();
            assert_eq!(
                legs.iter().map(|l| l.amount_minor).sum::<i64>(),
                0,
                "{movement:?}"
            );
        }
        let (paid, _, _) = movements[0].entries();
        let (refunded, _, refs) = movements[1].entries();
        assert_eq!(paid[0].account, "cash:sandbox");
        assert_eq!(paid[0].amount_minor, 2500);
        assert_eq!(refunded[1].account, "cash:sandbox");
        assert_eq!(refunded[1].amount_minor, -1000);
        assert_eq!(refs.refund_id, Some(refund));
        let (out, _, _) = movements[3].entries();
        assert_eq!(out.len(), 3, "a leg per event and one for the cash");
        assert_eq!(out[2].account, "cash:sandbox");
        assert_eq!(out[2].amount_minor, -1_700);
        assert_eq!(out[1].amount_minor, -300, "a negative line is carried");
    }
}
