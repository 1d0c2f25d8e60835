//! The workers role: one supervised apalis worker per queue, each draining its
//! queue with that queue's concurrency, timeout and retry policy.

mod checkouts;
mod email_marks;
mod emails;
mod fulfil;
pub mod jobs;
mod mailer;
mod pay;
mod refund_starts;
mod refunds;
mod reserve;
mod selling;
mod send_rate;
mod settle;
mod smtp_relay;
mod supervisor;
mod templates;

use std::{sync::Arc, time::Duration};

use boxoffice_core::{Services, queue::QueueName};
use tokio::sync::watch;

pub use jobs::{JobError, Perform};
pub use mailer::{MailError, MailSetupError, Mailer};
pub use supervisor::run_queue;

/// What every job handler gets: the shared services and the outside-world
/// clients chosen by configuration.
#[derive(Clone)]
pub struct WorkerCtx {
    pub services: Services,
    pub mailer: Arc<Mailer>,
    /// The SMTP account's send rate, if one is set.
    pub send_rate: Option<Arc<send_rate::SendRate>>,
    /// Batches seat reservations of this process (see `reserve`).
    pub reserver: reserve::Reserver,
    /// Folds this process's payments into tier stock (see `settle`).
    pub settler: settle::Settler,
    /// Batches this process's checkout writes (see `checkouts`).
    pub checkouts: checkouts::Checkouts,
    /// Batches this process's payments (see `pay`).
    pub payer: pay::Payer,
    /// Batches this process's refunds about to be sent (see
    /// `refund_starts`).
    pub refund_starts: refund_starts::RefundStarts,
    /// Batches this process's confirmed refunds (see `refunds`).
    pub refunds: refunds::RefundFinisher,
    /// Batches this process's email claims and sent marks.
    pub email_marks: email_marks::EmailMarks,
    /// Lets emails yield to this process's purchases and payments.
    pub selling: Arc<selling::Selling>,
    /// Outcomes per queue, flushed to Redis for the ops views.
    pub tally: boxoffice_core::queue::JobTally,
    /// Sends outgoing webhooks, through the SSRF guard.
    pub webhooks: reqwest::Client,
}

impl WorkerCtx {
    pub fn new(services: Services) -> Result<Self, mailer::MailSetupError> {
        let emails = services
            .config
            .workers
            .concurrency
            .unwrap_or(QueueName::Emails.settings().concurrency);
        let mailer = Mailer::from_config(
            &services.config.smtp,
            u32::try_from(emails).unwrap_or(u32::MAX),
        )?;
        let tally = boxoffice_core::queue::JobTally::new();
        tally.spawn_flusher(services.queues.clone());
        boxoffice_core::payments::circuits::spawn_reporter(
            services.queues.clone(),
            services.payments.clone(),
        );
        let send_rate = send_rate::SendRate::new(
            services.queues.clone(),
            &services.config.smtp.account(),
            services.config.smtp.send_rate,
        )
        .map(Arc::new);
        let hooks = &services.config.webhooks;
        let webhooks = hooks
            .policy()
            .client(Duration::from_secs(5), hooks.timeout)?;
        Ok(Self {
            webhooks,
            send_rate,
            tally,
            reserver: reserve::Reserver::start(services.clone()),
            settler: settle::Settler::start(&services),
            checkouts: checkouts::Checkouts::start(&services),
            payer: pay::Payer::start(&services),
            refund_starts: refund_starts::RefundStarts::start(&services),
            refunds: refunds::RefundFinisher::start(&services),
            email_marks: email_marks::EmailMarks::start(&services),
            selling: selling::Selling::start(
                services.config.workers.emails_per_sec_while_selling,
                services.config.workers.refunds_per_sec_while_selling,
                &services.queues,
                services
                    .config
                    .workers
                    .queues
                    .iter()
                    .any(|q| matches!(q, QueueName::Purchases | QueueName::Payments)),
            ),
            services,
            mailer: Arc::new(mailer),
        })
    }
}

/// Runs workers for the configured queues until `shutdown` turns true, then
/// lets in-flight jobs finish (bounded by `WORKER_SHUTDOWN_TIMEOUT_SECS`).
pub async fn run(
    services: Services,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), mailer::MailSetupError> {
    let ctx = WorkerCtx::new(services.clone())?;
    let workers = &services.config.workers;
    let mut tasks = tokio::task::JoinSet::new();
    for &queue in &workers.queues {
        let concurrency = workers.concurrency.unwrap_or(queue.settings().concurrency);
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        match queue {
            QueueName::Emails => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::SendEmail>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
            QueueName::Purchases => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::OrderJob>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
            QueueName::Payments => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::ApplyPaymentEvent>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
            QueueName::Refunds => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::RefundJob>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
            QueueName::Payouts => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::PayoutJob>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
            QueueName::Webhooks => {
                tasks.spawn(run_queue::<boxoffice_core::jobs::DeliverWebhook>(
                    ctx,
                    concurrency,
                    shutdown,
                ));
            }
        }
    }
    tracing::info!(queues = ?workers.queues, "workers started");
    if tasks.is_empty() {
        // Nothing to drain yet on these queues; stay up like any other worker
        // process (so a deployment does not crash-loop) until told to stop.
        tracing::warn!(queues = ?workers.queues, "none of these queues has job handlers yet");
        supervisor::stopped(&mut shutdown).await;
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("workers stopped");
    Ok(())
}
