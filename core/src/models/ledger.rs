//! The double-entry ledger: the only place that builds the legs of a money
//! movement and writes `ledger_entries`. Every movement is a transaction of
//! legs whose signed amounts sum to zero (a deferred trigger refuses the
//! commit otherwise); accounts are named `cash:<provider>` (money held at
//! the provider) and `organizer:<id>:payable` (what the platform owes an
//! organizer). Payouts and platform fees add their movements here.

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
        amount_minor: i64,
        currency: &'a str,
        order_id: Uuid,
        payment_id: Uuid,
    },
    /// Money given back to a buyer: the payment's legs reversed.
    Refund {
        provider: &'a str,
        organizer_id: Uuid,
        amount_minor: i64,
        currency: &'a str,
        order_id: Uuid,
        payment_id: Uuid,
        refund_id: Uuid,
    },
}

/// One leg of a transaction.
struct Leg {
    account: String,
    amount_minor: i64,
}

/// The rows a transaction's entries point at.
#[derive(Default, Clone, Copy)]
struct Refs {
    order_id: Option<Uuid>,
    payment_id: Option<Uuid>,
    refund_id: Option<Uuid>,
    payout_id: Option<Uuid>,
}

fn cash(provider: &str) -> String {
    format!("cash:{provider}")
}

fn payable(organizer_id: Uuid) -> String {
    format!("organizer:{organizer_id}:payable")
}

impl Movement<'_> {
    /// Its legs (summing to zero), currency and references.
    fn entries(&self) -> (Vec<Leg>, &str, Refs) {
        match *self {
            Movement::Payment {
                provider,
                organizer_id,
                amount_minor,
                currency,
                order_id,
                payment_id,
            } => (
                vec![
                    Leg {
                        account: cash(provider),
                        amount_minor,
                    },
                    Leg {
                        account: payable(organizer_id),
                        amount_minor: -amount_minor,
                    },
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
                amount_minor,
                currency,
                order_id,
                payment_id,
                refund_id,
            } => (
                vec![
                    Leg {
                        account: payable(organizer_id),
                        amount_minor,
                    },
                    Leg {
                        account: cash(provider),
                        amount_minor: -amount_minor,
                    },
                ],
                currency,
                Refs {
                    order_id: Some(order_id),
                    payment_id: Some(payment_id),
                    refund_id: Some(refund_id),
                    payout_id: None,
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
                                     order_id, payment_id, refund_id, payout_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                              $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[])",
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
    .prepared()
    .execute(conn)
    .await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_movement_balances() {
        let (organizer, order, payment, refund) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let movements = [
            Movement::Payment {
                provider: "sandbox",
                organizer_id: organizer,
                amount_minor: 2500,
                currency: "EUR",
                order_id: order,
                payment_id: payment,
            },
            Movement::Refund {
                provider: "sandbox",
                organizer_id: organizer,
                amount_minor: 1000,
                currency: "EUR",
                order_id: order,
                payment_id: payment,
                refund_id: refund,
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
    }
}
