//! The live hub: one Redis pub/sub connection per API process, subscribed to
//! exactly the channels its streaming clients follow, fanned out in-process
//! to each client of a channel. So a client on any replica sees changes made
//! by any worker, at one Redis connection per replica, not per client.
//!
//! Why per channel and not one pattern over every channel: every order's
//! status changes are published (two or three per sold order), and a
//! pattern made Redis send each of them to every API replica, which parsed
//! and dropped nearly all (in a drop, almost no order is watched), on the
//! cores the buyers' requests need. Now an order nobody follows is
//! published into no subscription at all.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use boxoffice_core::Services;
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long a new stream waits for Redis to confirm its subscription before
/// it goes on (Redis unreachable: the stream shows the current state, and
/// what follows once the hub is back).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// How often the channels nobody follows any more are let go. A channel is
/// also let go when a message finds it unfollowed.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// What the subscription task is asked to do, in the order the channel map
/// changed (the commands are sent under its lock).
enum Command {
    Subscribe {
        channel: String,
        confirmed: oneshot::Sender<()>,
    },
    Unsubscribe(String),
}

pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    /// True while the Redis subscription is up (readiness of live streams).
    connected: std::sync::atomic::AtomicBool,
    commands: mpsc::UnboundedSender<Command>,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    pub fn start(services: &Services, shutdown: watch::Receiver<bool>) -> Arc<Hub> {
        let (commands, requests) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            channels: Mutex::default(),
            connected: Default::default(),
            commands,
            shutdown: shutdown.clone(),
        });
        tokio::spawn(subscribe_loop(
            hub.clone(),
            services.config.redis.url.clone(),
            requests,
            shutdown,
        ));
        hub
    }

    /// Resolves when the process starts shutting down: live streams end
    /// then (clients reconnect, to another replica), instead of holding the
    /// graceful shutdown open for as long as anyone watches.
    pub fn closing(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut shutdown = self.shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|s| *s).await;
        }
    }

    /// Messages published on `channel` from now on: returns once Redis has
    /// confirmed the subscription (or after `SUBSCRIBE_WAIT`), so a caller
    /// that subscribes and then reads the current state misses nothing.
    pub async fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<str>> {
        let (confirmed, confirmation) = oneshot::channel();
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            let receiver = channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(256).0)
                .subscribe();
            // Asked again even when followed already: the first follower's
            // subscription may still be on its way, and Redis takes a
            // repeated SUBSCRIBE as a no-op.
            let _ = self.commands.send(Command::Subscribe {
                channel: channel.to_owned(),
                confirmed,
            });
            receiver
        };
        let _ = tokio::time::timeout(SUBSCRIBE_WAIT, confirmation).await;
        receiver
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn dispatch(&self, channel: &str, payload: Arc<str>) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = channels.get(channel)
            && tx.send(payload).is_err()
        {
            // Nobody listens any more.
            channels.remove(channel);
            let _ = self.commands.send(Command::Unsubscribe(channel.to_owned()));
        }
    }

    /// Lets go of the channels nobody follows any more.
    fn sweep(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|channel, tx| {
            let followed = tx.receiver_count() > 0;
            if !followed {
                let _ = self.commands.send(Command::Unsubscribe(channel.clone()));
            }
            followed
        });
    }

    fn followed(&self) -> Vec<String> {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.keys().cloned().collect()
    }
}

async fn subscribe_loop(
    hub: Arc<Hub>,
    url: String,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            result = session(&hub, &url, &mut commands, &mut sweep) => {
                hub.connected.store(false, std::sync::atomic::Ordering::Relaxed);
                let Err(e) = result;
                tracing::warn!(error = %e, "live hub lost Redis; reconnecting");
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: subscribes to what is followed, then relays
/// messages and carries out commands until Redis fails.
async fn session(
    hub: &Hub,
    url: &str,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    sweep: &mut tokio::time::Interval,
) -> redis::RedisResult<Infallible> {
    let client = redis::Client::open(url)?;
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    // After a reconnect: what the clients followed meanwhile.
    let followed = hub.followed();
    if !followed.is_empty() {
        sink.subscribe(&followed).await?;
    }
    hub.connected
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(channels = followed.len(), "live hub subscribed");
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "pub/sub connection closed",
                    )));
                };
                let payload: String = message.get_payload().unwrap_or_default();
                hub.dispatch(message.get_channel_name(), Arc::from(payload));
            }
            Some(command) = commands.recv() => match command {
                Command::Subscribe { channel, confirmed } => {
                    sink.subscribe(&channel).await?;
                    let _ = confirmed.send(());
                }
                Command::Unsubscribe(channel) => sink.unsubscribe(&channel).await?,
            },
            _ = sweep.tick() => hub.sweep(),
        }
    }
}
