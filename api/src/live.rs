//! The live hub: one Redis pub/sub subscription per API process (a pattern
//! over every live channel), fanned out in-process to each streaming client
//! of that channel. So a client on any replica sees changes made by any
//! worker, at one Redis connection per replica, not per client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use boxoffice_core::Services;
use futures::StreamExt;
use tokio::sync::{broadcast, watch};

#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    /// True while the Redis subscription is up (readiness of live streams).
    connected: std::sync::atomic::AtomicBool,
}

impl Hub {
    pub fn start(services: &Services, shutdown: watch::Receiver<bool>) -> Arc<Hub> {
        let hub = Arc::new(Hub::default());
        tokio::spawn(subscribe_loop(
            hub.clone(),
            services.config.redis.url.clone(),
            services.live.pattern(),
            shutdown,
        ));
        hub
    }

    /// Messages published on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<str>> {
        let mut channels = self.channels.lock().expect("lock");
        channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn dispatch(&self, channel: &str, payload: Arc<str>) {
        let mut channels = self.channels.lock().expect("lock");
        if let Some(tx) = channels.get(channel)
            && tx.send(payload).is_err()
        {
            // Nobody listens any more.
            channels.remove(channel);
        }
    }
}

async fn subscribe_loop(
    hub: Arc<Hub>,
    url: String,
    pattern: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            hub.connected
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%pattern, "live hub subscribed");
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                hub.dispatch(msg.get_channel_name(), Arc::from(payload));
            }
            Ok::<(), redis::RedisError>(())
        };
        tokio::select! {
            result = session => {
                hub.connected.store(false, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "live hub lost Redis; reconnecting");
                }
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
