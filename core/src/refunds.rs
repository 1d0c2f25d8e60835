//! What a refund of an order gives back: the one place that turns "the whole
//! order", "these tickets" or "this amount" into an amount and the tickets
//! it voids, against what the order's payment has left. Used by refunds on
//! request (the API) and by an event's cancellation (the workers).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::models::{OrderItem, Payment, Refund, RefundKind, RefundStatus, Ticket, TicketStatus};

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Everything not refunded yet.
    Whole,
    /// These tickets (their share of what was paid for them).
    Tickets(Vec<Uuid>),
    /// Part of the amount, voiding no ticket unless it is all that is left.
    Amount(i64),
}

/// Why the ask cannot be refunded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("nothing of this order is left to refund")]
    NothingLeft,
    #[error("ticket {0} is not one of this order's")]
    UnknownTicket(Uuid),
    #[error("ticket {0} is refunded or void already")]
    TicketRefunded(Uuid),
    #[error("the amount must be more than zero")]
    AmountNotPositive,
    #[error("only {left} is left to refund")]
    AmountTooLarge { left: i64 },
}

/// An amount to give back and the tickets it voids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub amount_minor: i64,
    pub ticket_ids: Vec<Uuid>,
}

/// Plans a refund of `payment` (the order's) given the order's `refunds`
/// so far, its `items` and `tickets`. A ticket's share is its unit price
/// less its part of the order's discount (rounded down; asking for every
/// ticket left gives back exactly what is left).
pub fn plan(
    payment: &Payment,
    refunds: &[Refund],
    items: &[OrderItem],
    tickets: &[Ticket],
    ask: &Ask,
) -> Result<Plan, Refusal> {
    let live = || {
        refunds
            .iter()
            .filter(|r| r.payment_id == payment.id && r.status() != RefundStatus::Failed)
    };
    let left = payment.amount_minor - live().map(|r| r.amount_minor).sum::<i64>();
    if left <= 0 {
        return Err(Refusal::NothingLeft);
    }
    let taken: HashSet<Uuid> = live()
        .filter(|r| r.kind() != RefundKind::Returned)
        .flat_map(|r| r.ticket_ids.iter().copied())
        .collect();
    let open: Vec<Uuid> = tickets
        .iter()
        .filter(|t| t.status() != TicketStatus::Void && !taken.contains(&t.id))
        .map(|t| t.id)
        .collect();
    match ask {
        Ask::Whole => Ok(Plan {
            amount_minor: left,
            ticket_ids: open,
        }),
        Ask::Amount(amount) if *amount <= 0 => Err(Refusal::AmountNotPositive),
        Ask::Amount(amount) if *amount > left => Err(Refusal::AmountTooLarge { left }),
        Ask::Amount(amount) => Ok(Plan {
            amount_minor: *amount,
            ticket_ids: if *amount == left { open } else { Vec::new() },
        }),
        Ask::Tickets(ids) => {
            let by_id: HashMap<Uuid, &Ticket> = tickets.iter().map(|t| (t.id, t)).collect();
            let mut wanted: Vec<Uuid> = Vec::with_capacity(ids.len());
            for id in ids {
                if !by_id.contains_key(id) {
                    return Err(Refusal::UnknownTicket(*id));
                }
                if !open.contains(id) {
                    return Err(Refusal::TicketRefunded(*id));
                }
                if !wanted.contains(id) {
                    wanted.push(*id);
                }
            }
            if wanted.is_empty() {
                return Err(Refusal::NothingLeft);
            }
            if wanted.len() == open.len() {
                return Ok(Plan {
                    amount_minor: left,
                    ticket_ids: wanted,
                });
            }
            let price: HashMap<Uuid, i64> =
                items.iter().map(|i| (i.id, i.unit_price_minor)).collect();
            let subtotal: i64 = items
                .iter()
                .map(|i| i.unit_price_minor * i64::from(i.quantity))
                .sum();
            let share = |ticket: &Ticket| {
                let unit = price.get(&ticket.order_item_id).copied().unwrap_or(0);
                if subtotal == 0 {
                    0
                } else {
                    // i128: price × amount can pass i64 for large orders.
                    (i128::from(unit) * i128::from(payment.amount_minor) / i128::from(subtotal))
                        as i64
                }
            };
            let amount: i64 = wanted.iter().map(|id| share(by_id[id])).sum();
            if amount <= 0 {
                return Err(Refusal::AmountNotPositive);
            }
            Ok(Plan {
                amount_minor: amount.min(left),
                ticket_ids: wanted,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn payment(amount: i64) -> Payment {
        Payment::succeeded(Uuid::nil(), "sandbox", "pay_1", amount, "EUR")
    }

    fn item(unit: i64, quantity: i32) -> OrderItem {
        OrderItem {
            id: Uuid::now_v7(),
            order_id: Uuid::nil(),
            tier_id: Uuid::now_v7(),
            quantity,
            unit_price_minor: unit,
            attendees: serde_json::json!([]),
        }
    }

    fn tickets(item: &OrderItem) -> Vec<Ticket> {
        (0..item.quantity)
            .map(|seat| Ticket {
                id: Uuid::now_v7(),
                order_id: Uuid::nil(),
                order_item_id: item.id,
                event_id: Uuid::nil(),
                tier_id: item.tier_id,
                owner_id: Uuid::nil(),
                code: format!("c{seat}"),
                seat_index: seat,
                attendee_name: "A".into(),
                attendee_email: "a@example.com".into(),
                status: TicketStatus::Valid.as_str().into(),
                created_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .collect()
    }

    fn refunded(
        payment: &Payment,
        amount: i64,
        tickets: Vec<Uuid>,
        status: RefundStatus,
    ) -> Refund {
        let mut r = Refund::new(payment, amount, "r", Uuid::now_v7().to_string()).with_request(
            RefundKind::Order,
            tickets,
            None,
            None,
        );
        r.status = status.as_str().into();
        r
    }

    #[test]
    fn every_ask_against_what_is_left() {
        // Two tiers: 2 × 1,000 and 1 × 500, a 10 % discount: 2,250 paid.
        let (a, b) = (item(1_000, 2), item(500, 1));
        let mut all = tickets(&a);
        all.extend(tickets(&b));
        let paid = payment(2_250);
        let items = [a, b];
        let ids: Vec<Uuid> = all.iter().map(|t| t.id).collect();
        let earlier = [refunded(&paid, 900, vec![ids[0]], RefundStatus::Succeeded)];
        let failed = [refunded(&paid, 900, vec![ids[0]], RefundStatus::Failed)];
        type Case<'a> = (&'a str, &'a [Refund], Ask, Result<Plan, Refusal>);
        let cases: Vec<Case<'_>> = vec![
            (
                "whole",
                &[],
                Ask::Whole,
                Ok(Plan {
                    amount_minor: 2_250,
                    ticket_ids: ids.clone(),
                }),
            ),
            (
                "one ticket: its discounted price",
                &[],
                Ask::Tickets(vec![ids[0]]),
                Ok(Plan {
                    amount_minor: 900,
                    ticket_ids: vec![ids[0]],
                }),
            ),
            (
                "the cheap ticket",
                &[],
                Ask::Tickets(vec![ids[2]]),
                Ok(Plan {
                    amount_minor: 450,
                    ticket_ids: vec![ids[2]],
                }),
            ),
            (
                "a repeated id counts once",
                &[],
                Ask::Tickets(vec![ids[2], ids[2]]),
                Ok(Plan {
                    amount_minor: 450,
                    ticket_ids: vec![ids[2]],
                }),
            ),
            (
                "the rest after one: exactly what is left",
                &earlier,
                Ask::Tickets(vec![ids[1], ids[2]]),
                Ok(Plan {
                    amount_minor: 1_350,
                    ticket_ids: vec![ids[1], ids[2]],
                }),
            ),
            (
                "whole after one",
                &earlier,
                Ask::Whole,
                Ok(Plan {
                    amount_minor: 1_350,
                    ticket_ids: vec![ids[1], ids[2]],
                }),
            ),
            (
                "a refunded ticket again",
                &earlier,
                Ask::Tickets(vec![ids[0]]),
                Err(Refusal::TicketRefunded(ids[0])),
            ),
            (
                "a failed refund gives nothing back",
                &failed,
                Ask::Tickets(vec![ids[0]]),
                Ok(Plan {
                    amount_minor: 900,
                    ticket_ids: vec![ids[0]],
                }),
            ),
            (
                "a foreign ticket",
                &[],
                Ask::Tickets(vec![Uuid::nil()]),
                Err(Refusal::UnknownTicket(Uuid::nil())),
            ),
            (
                "no ticket",
                &[],
                Ask::Tickets(vec![]),
                Err(Refusal::NothingLeft),
            ),
            (
                "part of the amount",
                &[],
                Ask::Amount(100),
                Ok(Plan {
                    amount_minor: 100,
                    ticket_ids: vec![],
                }),
            ),
            (
                "all of the amount voids every ticket",
                &earlier,
                Ask::Amount(1_350),
                Ok(Plan {
                    amount_minor: 1_350,
                    ticket_ids: vec![ids[1], ids[2]],
                }),
            ),
            (
                "more than is left",
                &earlier,
                Ask::Amount(1_351),
                Err(Refusal::AmountTooLarge { left: 1_350 }),
            ),
            ("zero", &[], Ask::Amount(0), Err(Refusal::AmountNotPositive)),
            (
                "negative",
                &[],
                Ask::Amount(-5),
                Err(Refusal::AmountNotPositive),
            ),
        ];
        for (name, refunds, ask, expected) in cases {
            assert_eq!(plan(&paid, refunds, &items, &all, &ask), expected, "{name}");
        }
        let everything = [refunded(&paid, 2_250, vec![], RefundStatus::Requested)];
        assert_eq!(
            plan(&paid, &everything, &items, &all, &Ask::Whole),
            Err(Refusal::NothingLeft),
            "a refund in flight counts"
        );
    }
}
