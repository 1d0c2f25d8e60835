//! `boxoffice queues`: the per-queue table, dead jobs, retry, discard, pause.

use anyhow::{Result, bail};
use boxoffice_core::{Services, queue::QueueName};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum QueuesCommand {
    /// List a queue's dead jobs with their last error.
    Dead {
        queue: String,
    },
    /// Put a dead job (or all of them) back on its queue.
    Retry {
        queue: String,
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete a dead job for good.
    Discard {
        queue: String,
        id: String,
    },
    /// Stop taking new jobs from a queue (in-flight ones finish).
    Pause {
        queue: String,
    },
    Resume {
        queue: String,
    },
}

fn queue_name(raw: &str) -> Result<QueueName> {
    raw.parse().map_err(anyhow::Error::msg)
}

pub async fn run(services: &Services, command: Option<QueuesCommand>) -> Result<()> {
    let queues = &services.queues;
    match command {
        None => {
            println!(
                "{:<10} {:>7} {:>9} {:>7} {:>8} {:>6} {:>5} {:>10} {:>8} {:>7} {:>7}",
                "queue",
                "pending",
                "scheduled",
                "running",
                "done",
                "failed",
                "dead",
                "oldest",
                "per min",
                "workers",
                "state"
            );
            for q in QueueName::ALL {
                let s = queues.stats(q).await?;
                let per_min = s.per_minute.last().map_or(0, |m| m.done);
                let alive = s.worker_heartbeats.iter().filter(|w| w.alive).count();
                println!(
                    "{:<10} {:>7} {:>9} {:>7} {:>8} {:>6} {:>5} {:>10} {:>8} {:>7} {:>7}",
                    q.as_str(),
                    s.counts.pending,
                    s.counts.scheduled,
                    s.counts.running,
                    s.counts.done,
                    s.failed,
                    s.counts.dead,
                    s.oldest_pending_age_secs
                        .map_or("-".to_owned(), |a| format!("{a:.1}s")),
                    per_min,
                    format!("{alive}/{}", s.worker_heartbeats.len()),
                    if s.paused { "paused" } else { "running" },
                );
            }
        }
        Some(QueuesCommand::Dead { queue }) => {
            let q = queue_name(&queue)?;
            let dead = queues.dead_jobs(q).await?;
            if dead.is_empty() {
                println!("no dead jobs in {q}");
            }
            for job in dead {
                println!(
                    "{}  {}  {}",
                    job.id,
                    job.payload,
                    job.last_error.unwrap_or_default()
                );
            }
        }
        Some(QueuesCommand::Retry { queue, id, all }) => {
            let q = queue_name(&queue)?;
            let n = match (id, all) {
                (_, true) => queues.retry_all_dead(q).await?,
                (Some(id), false) => {
                    if !queues.retry_dead(q, &id).await? {
                        bail!("no dead job {id} in {q}");
                    }
                    1
                }
                (None, false) => bail!("name a job id or pass --all"),
            };
            println!("retried {n} job(s) in {q}");
        }
        Some(QueuesCommand::Discard { queue, id }) => {
            let q = queue_name(&queue)?;
            if !queues.discard(q, &id).await? {
                bail!("no dead job {id} in {q}");
            }
            println!("discarded {id} from {q}");
        }
        Some(QueuesCommand::Pause { queue }) => {
            let q = queue_name(&queue)?;
            queues.pause(q).await?;
            println!("{q} paused: workers finish what they hold and take nothing new");
        }
        Some(QueuesCommand::Resume { queue }) => {
            let q = queue_name(&queue)?;
            queues.resume(q).await?;
            println!("{q} resumed");
        }
    }
    Ok(())
}
