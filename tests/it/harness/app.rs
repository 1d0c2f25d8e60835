//! `TestApp`: the real API (and, with `.full()`, the real workers) on an
//! ephemeral port against a fresh database and a private Redis namespace.

use std::{net::SocketAddr, time::Duration};

use boxoffice_core::{
    Config, Services,
    auth::password,
    models::{NewUser, Role},
};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{db, smtp::SmtpSink};

type ConfigTweak = Box<dyn FnOnce(&mut Config)>;

pub struct TestAppBuilder {
    workers: usize,
    tweaks: Vec<ConfigTweak>,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub services: Services,
    pub smtp: SmtpSink,
    /// The sandbox payment provider, on its own port, over real HTTP.
    pub sandbox: boxoffice_sandbox::Sandbox,
    pub sandbox_url: String,
    db_url: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Each test's uploads go to their own folder, removed with the app.
fn media_dir(namespace: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("boxoffice-media-{namespace}"))
}

/// A config for tests: defaults, a fresh database, a private namespace.
pub async fn test_config(smtp_port: u16) -> (Config, String) {
    boxoffice_core::install_crypto_provider();
    let mut config = Config::from_env().expect("config");
    let db_url = db::create_test_database().await;
    config.database.url = db_url.clone();
    config.database.pool_size = 8;
    config.redis.url = redis_url();
    config.redis.namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.http.public_url = "http://boxoffice.test".into();
    config.smtp.transport =
        boxoffice_core::config::EmailTransportConfig::Smtp(format!("smtp://127.0.0.1:{smtp_port}"));
    config.workers.shutdown_timeout = Duration::from_secs(5);
    // Edge limits are tested on their own; elsewhere they would only make
    // busy tests flaky.
    config.http.ip_rate_limit = 0;
    config.http.user_rate_limit = 0;
    config.media.store_url = media_dir(&config.redis.namespace)
        .to_string_lossy()
        .into_owned();
    config.media.public_url = "http://boxoffice.test/media".into();
    (config, db_url)
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            workers: 0,
            tweaks: Vec::new(),
        }
    }

    pub async fn spawn() -> TestApp {
        Self::builder().start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        read(req.send().await.expect("request")).await
    }

    /// Registers through the API; returns (access token, refresh token, user id).
    pub async fn register(&self, email: &str, role: &str) -> (String, String, String) {
        let (status, body) = self
            .post(
                "/v1/auth/register",
                json!({"email": email, "password": "violet-otter-43-lamp", "display_name": "Test User", "role": role}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an admin straight in the database (as the CLI does) and signs in.
    pub async fn admin(&self) -> String {
        let hash = password::hash("violet-otter-43-lamp".into()).await.unwrap();
        let mut conn = self.services.db.get().await.unwrap();
        NewUser {
            id: uuid::Uuid::now_v7(),
            email: "root@boxoffice.test",
            password_hash: &hash,
            display_name: "Root",
            role: Role::Admin.as_str(),
        }
        .insert(&mut conn)
        .await
        .unwrap();
        let (status, body) = self
            .post(
                "/v1/auth/login",
                json!({"email": "root@boxoffice.test", "password": "violet-otter-43-lamp"}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers an organizer; returns its access token.
    pub async fn organizer(&self, email: &str) -> String {
        self.register(email, "organizer").await.0
    }

    /// Creates a draft event through the API (fields merged over a valid
    /// default) and returns it.
    pub async fn create_event(&self, token: &str, fields: Value) -> Value {
        let mut body = json!({
            "title": "Night at the Opera",
            "description": "A long evening of arias.",
            "category": "music",
            "venue_name": "Palais Garnier",
            "address": "Place de l'Opéra",
            "city": "Paris",
            "country": "FR",
            "latitude": 48.8719,
            "longitude": 2.3316,
            "starts_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
            "ends_at": (chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(3)).to_rfc3339(),
            "timezone": "Europe/Paris",
            "currency": "EUR",
        });
        for (k, v) in fields.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let (status, event) = self.post("/v1/events", body, Some(token)).await;
        assert_eq!(status, 201, "{event}");
        event
    }

    /// Adds a tier to an event; returns the tier.
    pub async fn create_tier(&self, token: &str, event_id: &str, fields: Value) -> Value {
        let mut body = json!({"name": "General", "price_minor": 2500, "quantity": 100});
        for (k, v) in fields.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let (status, tier) = self
            .post(&format!("/v1/events/{event_id}/tiers"), body, Some(token))
            .await;
        assert_eq!(status, 201, "{tier}");
        tier
    }

    /// A draft with one tier, published; returns the event as created.
    pub async fn published_event(&self, token: &str, fields: Value) -> Value {
        let event = self.create_event(token, fields).await;
        let id = event["id"].as_str().unwrap();
        self.create_tier(token, id, json!({})).await;
        let (status, published) = self
            .post(&format!("/v1/events/{id}/publish"), json!({}), Some(token))
            .await;
        assert_eq!(status, 200, "{published}");
        published
    }

    /// Runs one SQL statement (test set-up that no endpoint offers yet).
    pub async fn sql(&self, statement: &str) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.services.db.get().await.unwrap();
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    pub async fn count(&self, table: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.services.db.get().await.unwrap();
        let row: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result(&mut conn)
            .await
            .unwrap();
        row.n
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let is_problem = response.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or("")
            .starts_with("application/problem+json")
    });
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        assert!(is_problem, "error {status} must be problem+json: {body}");
    }
    (status, body)
}

impl TestAppBuilder {
    /// Runs the queue workers in-process too.
    pub fn full(mut self) -> Self {
        self.workers = self.workers.max(1);
        self
    }

    /// Runs `n` independent worker groups (each as a separate process would:
    /// its own connections and its own reservation batcher).
    pub fn worker_groups(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Listens where a browser on this machine reaches it, and says so in
    /// `PUBLIC_URL`: the links it makes (the provider's way back, emailed
    /// links) and the origin its refresh cookie trusts are its own.
    pub fn for_browser(self) -> Self {
        let port = super::browser::free_port();
        self.with_config(move |config| {
            config.http.addr = ([127, 0, 0, 1], port).into();
            config.http.public_url = format!("http://127.0.0.1:{port}");
            config.media.public_url = format!("http://127.0.0.1:{port}/media");
        })
    }

    pub fn with_config(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.tweaks.push(Box::new(f));
        self
    }

    pub async fn start(self) -> TestApp {
        let smtp = SmtpSink::start().await;
        let (mut config, db_url) = test_config(smtp.port).await;
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let (shutdown, rx) = watch::channel(false);
        // The provider first: the app must know its URL.
        let sandbox = boxoffice_sandbox::Sandbox::new(config.sandbox.clone()).expect("sandbox");
        let (sandbox_addr, sandbox_server) = sandbox
            .bind("127.0.0.1:0".parse().unwrap(), rx.clone())
            .await
            .expect("bind sandbox");
        let sandbox_url = format!("http://{sandbox_addr}/sandbox");
        config.payments.provider_url = sandbox_url.clone();
        config.sandbox.public_url = sandbox_url.clone();
        sandbox.set_public_url(sandbox_url.clone());
        let services = Services::connect(config.clone()).await.expect("services");
        let (addr, server) = boxoffice_api::bind(services.clone(), rx.clone())
            .await
            .expect("bind");
        sandbox.set_webhook_url(format!("http://{addr}/v1/webhooks/payments/sandbox"));
        let mut tasks = vec![
            tokio::spawn(async move {
                server.await.expect("server");
            }),
            tokio::spawn(async move {
                sandbox_server.await.expect("sandbox server");
            }),
        ];
        for group in 0..self.workers {
            let s = if group == 0 {
                services.clone()
            } else {
                Services::connect(config.clone()).await.expect("services")
            };
            let rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                boxoffice_workers::run(s, rx).await.expect("workers");
            }));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            addr,
            client,
            services,
            smtp,
            sandbox,
            sandbox_url,
            db_url,
            shutdown,
            tasks,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
        let queues = self.services.queues.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let ns = queues.namespace().to_owned();
                if let Ok(conn) = boxoffice_core::queue::connect(&redis_url()).await {
                    let _ = boxoffice_core::queue::Queues::new(conn, ns)
                        .purge_namespace()
                        .await;
                }
            });
        })
        .join();
        db::drop_database_blocking(self.db_url.clone());
        let _ = std::fs::remove_dir_all(media_dir(self.services.queues.namespace()));
    }
}
