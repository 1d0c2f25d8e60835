//! Confirmation emails, and the refunds of a cancelled event, yield to a
//! sale in progress.
//!
//! Why: an email costs the machine about what the rest of its sale costs
//! (three queries, a QR code and a PNG per ticket, an SMTP conversation, two
//! batched writes). In a drop on one box, the first second's 667 sales
//! became 667 emails in the next second, on the same cores as the buyers
//! still ordering, whose `POST /orders` p99 went from ~25 ms to several
//! hundred. So while this process places orders or applies payments,
//! emails start at most `rate` per second; otherwise at once. Nothing else
//! waits: an order is paid, and its confirmation written, as before; only
//! the sending is spread out. With dedicated email workers (no purchases or
//! payments in their process) there is no limit.
//!
//! The default rate (`EMAILS_PER_SEC_WHILE_SELLING`, 20) is low on purpose:
//! on a warm two-core box at 2,098 orders/s, 200 a second still cost the
//! drop's POST p99 two to four times what 1–20 did, run for run. A drop's
//! confirmations then mostly go out when its orders stop coming in, at
//! full speed; the buyer sees the paid order and its tickets at once.

//!
//! The refunds of an event cancellation yield the same way
//! (`REFUNDS_PER_SEC_WHILE_SELLING`, 50): sent at full speed, 10,000 of them
//! took the CPU from another event's drop on the same box, whose `POST
//! /orders` p99 went from 16 to 116 ms (docs/PERFORMANCE.md, "Event
//! cancellation"). Refunds asked for one at a time are not paced.
//!
//! Selling means purchases jobs, and payments jobs applying a payment
//! (taken in `jobs::apply_payment_event`): a refund's or a payout's webhook
//! is no sale, or a cancellation would slow itself down.
//!
//! A cancellation's refunds also yield to a sale in another workers
//! process: the database is shared whatever the topology. Processes that
//! sell say so in Redis (`Queues::mark_selling`, at most every 500 ms, for
//! 1.5 s); the others look every 250 ms (`watch_sales`). Measured with a
//! second, refunds-and-emails process on the same box: unpaced there, it
//! took the side drop's p99 to 2.1–2.8× its solo run. Emails keep their
//! rule (dedicated email workers send at once).

use std::{
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use boxoffice_core::queue::Queues;
use tokio::time::Instant;

/// How long a process's word that it sells holds, and how often it is
/// renewed while it does.
const SELLING_TTL: Duration = Duration::from_millis(1_500);
const SELLING_RENEWAL: Duration = Duration::from_millis(500);
/// How often a process looks for sales elsewhere.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Between two of a sale's jobs none may be running for a moment: a sale
/// whose last job ended this recently still counts, for the work that
/// yields to it by this measure (a cancellation's refunds and fan-out).
pub const SALE_GAP: Duration = Duration::from_millis(500);

pub struct Selling {
    /// Purchases and payments jobs running in this process.
    in_flight: AtomicUsize,
    /// When the last of them ended: milliseconds since `epoch`, plus one
    /// (0: none yet).
    last_ended: AtomicU64,
    epoch: Instant,
    emails: Pace,
    refunds: Pace,
    /// Where this process says it sells (`None`: it does not tell).
    announce: Option<Queues>,
    /// When it last said so: milliseconds since `epoch`, plus one.
    announced: AtomicU64,
    /// Another process said it sells, as last seen by `watch_sales`.
    elsewhere: AtomicBool,
}

/// One kind of work spread out while selling.
struct Pace {
    /// Time between two starts while selling; `None`: no limit.
    gap: Option<Duration>,
    /// When the next may start while selling.
    next: Mutex<Instant>,
}

impl Pace {
    /// `per_sec`: the limit while selling (0: none).
    fn new(per_sec: u32) -> Self {
        Self {
            gap: (per_sec > 0).then(|| Duration::from_secs(1) / per_sec),
            next: Mutex::new(Instant::now()),
        }
    }
}

/// A purchases or payments job running; dropped when it ends.
pub struct SaleJob<'a>(&'a Selling);

impl Drop for SaleJob<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        let ms = self.0.epoch.elapsed().as_millis() as u64 + 1;
        self.0.last_ended.store(ms, Ordering::Relaxed);
    }
}

impl Selling {
    /// The limits per second while selling (0: none).
    pub fn new(emails_per_sec: u32, refunds_per_sec: u32) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last_ended: AtomicU64::new(0),
            epoch: Instant::now(),
            emails: Pace::new(emails_per_sec),
            refunds: Pace::new(refunds_per_sec),
            announce: None,
            announced: AtomicU64::new(0),
            elsewhere: AtomicBool::new(false),
        }
    }

    pub fn job(&self) -> SaleJob<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(queues) = &self.announce {
            let now = self.epoch.elapsed().as_millis() as u64 + 1;
            let last = self.announced.load(Ordering::Relaxed);
            if (last == 0 || now - last >= SELLING_RENEWAL.as_millis() as u64)
                && self
                    .announced
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let queues = queues.clone();
                tokio::spawn(async move {
                    if let Err(e) = queues.mark_selling(SELLING_TTL).await {
                        tracing::debug!(error = %e, "could not say this process sells");
                    }
                });
            }
        }
        SaleJob(self)
    }

    /// For a workers process: one that sells (serves purchases or
    /// payments) says so in Redis; one that does not watches for sales
    /// elsewhere, for its cancellation refunds.
    pub fn start(
        emails_per_sec: u32,
        refunds_per_sec: u32,
        queues: &Queues,
        sells_here: bool,
    ) -> Arc<Self> {
        let mut selling = Self::new(emails_per_sec, refunds_per_sec);
        if sells_here {
            selling.announce = Some(queues.clone());
        }
        let selling = Arc::new(selling);
        if !sells_here && selling.refunds.gap.is_some() {
            tokio::spawn(watch_sales(Arc::downgrade(&selling), queues.clone()));
        }
        selling
    }

    /// Whether this process is selling, or was within `within` (between
    /// two of a sale's jobs nothing may be running for a moment), or, for
    /// a process that sells nothing, another one is.
    pub fn sold_within(&self, within: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 || self.elsewhere.load(Ordering::Relaxed) {
            return true;
        }
        match self.last_ended.load(Ordering::Relaxed) {
            0 => false,
            ended => {
                self.epoch.elapsed().as_millis() as u64 + 1 - ended <= within.as_millis() as u64
            }
        }
    }

    /// Waits for this email's turn: now, unless the process is selling.
    pub async fn email_turn(&self) {
        if let Some(turn) = self.turn(&self.emails, false, Instant::now()) {
            tokio::time::sleep_until(turn).await;
        }
    }

    /// Waits for this cancellation refund's turn: now, unless a sale runs
    /// (`sold_within(SALE_GAP)`: at the moment between two of its jobs
    /// too, where the first cancellation runs let refunds through at up to
    /// three times the rate).
    pub async fn refund_turn(&self) {
        let selling = self.sold_within(SALE_GAP);
        if let Some(turn) = self.turn(&self.refunds, selling, Instant::now()) {
            tokio::time::sleep_until(turn).await;
        }
    }

    /// When work paced by `pace` asking at `now` may start; `None`: at once.
    /// `selling`: a sale counts though none of this process's sale jobs
    /// runs right now.
    fn turn(&self, pace: &Pace, selling: bool, now: Instant) -> Option<Instant> {
        let gap = pace.gap?;
        if self.in_flight.load(Ordering::Relaxed) == 0 && !selling {
            return None;
        }
        let mut next = pace.next.lock().unwrap_or_else(|e| e.into_inner());
        let turn = (*next).max(now);
        *next = turn + gap;
        Some(turn)
    }
}

/// Looks for a sale in another process until the process's `Selling` is
/// gone.
async fn watch_sales(selling: Weak<Selling>, queues: Queues) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(selling) = selling.upgrade() else {
            return;
        };
        // Redis away: nobody is known to sell.
        let seen = queues.selling_somewhere().await.unwrap_or(false);
        selling.elsewhere.store(seen, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_spaced_only_while_selling() {
        let selling = Selling::new(200, 100);
        let (emails, refunds) = (&selling.emails, &selling.refunds);
        let now = Instant::now();
        assert!(!selling.sold_within(Duration::from_secs(60)), "never sold");
        assert_eq!(
            selling.turn(emails, false, now),
            None,
            "nothing sold: at once"
        );

        let job = selling.job();
        let turns: Vec<Duration> = (0..4)
            .map(|_| {
                selling
                    .turn(emails, false, now)
                    .expect("spaced while selling")
                    - now
            })
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(turns, [ms(0), ms(5), ms(10), ms(15)]);
        // Asking later than the next free turn starts at once.
        assert_eq!(
            selling.turn(emails, false, now + ms(100)),
            Some(now + ms(100))
        );
        // Refunds keep their own pace.
        let turns: Vec<Duration> = (0..3)
            .map(|_| {
                selling
                    .turn(refunds, false, now)
                    .expect("spaced while selling")
                    - now
            })
            .collect();
        assert_eq!(turns, [ms(0), ms(10), ms(20)]);

        assert!(selling.sold_within(Duration::ZERO));
        drop(job);
        assert_eq!(
            selling.turn(emails, false, now),
            None,
            "the sale's jobs ended"
        );
        assert!(selling.sold_within(Duration::from_secs(60)), "just now");
        assert_eq!(selling.turn(refunds, false, now), None);
        assert!(selling.turn(refunds, true, now).is_some(), "a sale counts");
    }

    #[test]
    fn zero_means_no_limit() {
        let selling = Selling::new(0, 0);
        let _job = selling.job();
        assert_eq!(selling.turn(&selling.emails, false, Instant::now()), None);
        assert_eq!(selling.turn(&selling.refunds, false, Instant::now()), None);
    }
}
