//! A TCP forwarder with an off switch: lets one test take "Redis" down for its
//! app without touching the Redis every other test shares.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::{net::TcpListener, sync::watch};

pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (target, up2, cut2) = (target.to_owned(), up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused-ish
                }
                let target = target.clone();
                let mut cut_rx = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    /// A proxy in front of the test Redis.
    pub async fn to_redis() -> Self {
        let target = url::Url::parse(&super::app::redis_url()).unwrap();
        Self::start(&format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port().unwrap_or(6379)
        ))
        .await
    }

    /// Cuts open connections and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
