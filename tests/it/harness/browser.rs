//! A real browser: headless Chromium driven over the W3C WebDriver protocol
//! by ChromeDriver (`./scripts/services.sh --browser` installs both). The
//! protocol is a handful of JSON calls, spoken here with the client the
//! tests already use rather than another crate.
//!
//! Every wait has a deadline; a test that fails on a page first writes
//! screenshots of it at desktop and phone widths to `$BROWSER_SCREENSHOTS`
//! (default `target/browser-screenshots/`).

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};

/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(20);

/// `$name` if set, else the first of `names` on `PATH`.
fn program(var: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("the web app's tests need {names:?}: run ./scripts/services.sh --browser or set {var}")
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:{port}/session/{id}`
    session: String,
    driver: Child,
    profile: PathBuf,
    name: String,
}

/// The phone width screenshots and layout checks use (an iPhone 14's).
pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 900);

impl Browser {
    /// A fresh browser with an empty profile; `name` names its screenshots.
    pub async fn start(name: &str) -> Browser {
        let port = free_port();
        let driver = Command::new(program("CHROMEDRIVER", &["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ChromeDriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(started.elapsed() < WAIT, "ChromeDriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("boxoffice-chromium-{}", uuid::Uuid::new_v4()));
        let args = [
            "--headless".to_owned(),
            // Tests run as root in CI, where the sandbox cannot start; the
            // pages are our own.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            // Without these Chromium reaches out to Google's hosts.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--lang=en-US".into(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": program("CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]),
                "args": args,
            },
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("new session answer");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {answer}"));
        let browser = Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            profile,
            name: name.to_owned(),
        };
        // Finding an element waits for it to appear, up to this long.
        browser
            .call(
                "POST",
                "/timeouts",
                json!({"implicit": WAIT.as_millis() as u64}),
            )
            .await;
        browser
    }

    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request.send().await.map_err(|e| json!(e.to_string()))?;
        let ok = response.status().is_success();
        let answer: Value = response.json().await.map_err(|e| json!(e.to_string()))?;
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(answer["value"].clone())
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(error) => self.fail(&format!("{method} {path}: {error}")).await,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Calls `method` on the element matching `css`, finding it again when
    /// the page re-rendered it between the find and the call (a live page
    /// replaces its nodes as its stream reports changes).
    async fn on_element(&self, css: &str, method: &str, action: &str, body: Value) -> Value {
        let started = Instant::now();
        loop {
            let id = self.element(css).await;
            let path = format!("/element/{id}/{action}");
            match self.try_call(method, &path, body.clone()).await {
                Ok(value) => return value,
                Err(error)
                    if error["error"] == "stale element reference" && started.elapsed() < WAIT => {}
                Err(error) => self.fail(&format!("{method} {path}: {error}")).await,
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, "POST", "click", json!({})).await;
    }

    /// Types `text` into the field, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "clear", json!({})).await;
        self.on_element(css, "POST", "value", json!({ "text": text }))
            .await;
    }

    /// Chooses the file at `path` in the file input matching `css`.
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let path = path.display().to_string();
        self.on_element(css, "POST", "value", json!({ "text": path }))
            .await;
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let text = self.on_element(css, "GET", "text", json!({})).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page; a returned promise is awaited.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        let value = self
            .call(
                "POST",
                "/execute/async",
                json!({
                    "script": format!("const done = arguments[arguments.length - 1];\
                        Promise.resolve((async (...a) => {{ {script} }})(...Array.from(arguments).slice(0, -1)))\
                        .then(done, (e) => done({{ __error: String(e) }}));"),
                    "args": args,
                }),
            )
            .await;
        if let Some(error) = value.get("__error") {
            self.fail(&format!("the script threw {error}")).await;
        }
        value
    }

    /// Waits until the text of the element matching `css` contains `needle`,
    /// and returns it.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < WAIT {
            let script =
                "const el = document.querySelector(arguments[0]); return el ? el.innerText : null;";
            if let Ok(Value::String(text)) = self
                .try_call(
                    "POST",
                    "/execute/sync",
                    json!({"script": script, "args": [css]}),
                )
                .await
            {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fail(&format!(
            "{css} never read {needle:?}; it last read {last:?}"
        ))
        .await
    }

    /// Waits until `condition` (a JavaScript expression) holds in the page.
    pub async fn wait_for(&self, condition: &str) {
        let started = Instant::now();
        let script = format!("return Boolean({condition});");
        while started.elapsed() < WAIT {
            if let Ok(Value::Bool(true)) = self
                .try_call(
                    "POST",
                    "/execute/sync",
                    json!({"script": script, "args": []}),
                )
                .await
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fail(&format!("{condition} never held")).await
    }

    /// Waits until the page's address satisfies `done`.
    pub async fn wait_url(&self, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if done(&url) {
                return url;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("the page stayed at {url}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cuts the page off the network (or restores it), as a phone losing
    /// its signal would (ChromeDriver's network conditions extension).
    pub async fn offline(&self, offline: bool) {
        self.call(
            "POST",
            "/chromium/network_conditions",
            json!({"network_conditions": {
                "offline": offline,
                "latency": 0,
                "download_throughput": -1,
                "upload_throughput": -1,
            }}),
        )
        .await;
    }

    /// Lets the page know where it is (the geolocation permission granted
    /// and a fixed position, as ChromeDriver allows).
    pub async fn locate(&self, latitude: f64, longitude: f64) {
        self.call(
            "POST",
            "/permissions",
            json!({"descriptor": {"name": "geolocation"}, "state": "granted"}),
        )
        .await;
        self.call(
            "POST",
            "/location",
            json!({"location": {"latitude": latitude, "longitude": longitude, "altitude": 0}}),
        )
        .await;
    }

    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// The page's serious and critical accessibility violations (WCAG 2 A
    /// and AA rules of axe-core, vendored by `scripts/vendor.sh`), one line
    /// each with the elements at fault.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("../../assets/axe-core/axe.min.js");
        let found = self
            .eval(
                &format!(
                    "{AXE}
                    const result = await axe.run(document, {{ runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] }});
                    return result.violations
                      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                      .map((v) => `${{v.id}} (${{v.impact}}): ${{v.nodes.map((n) => n.target.join(' ')).join(', ')}}`);"
                ),
                json!([]),
            )
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Whether the page is wider than the window (scrolls sideways).
    pub async fn overflows_sideways(&self) -> bool {
        self.eval(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            json!([]),
        )
        .await
            == true
    }

    /// Writes the page at desktop and phone widths, then panics with `why`.
    pub async fn fail(&self, why: &str) -> ! {
        let folder = std::env::var_os("BROWSER_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots")
            });
        let _ = std::fs::create_dir_all(&folder);
        let mut written = vec![];
        for (label, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            let url = format!("{}/window/rect", self.session);
            let _ = self
                .http
                .post(url)
                .json(&json!({"width": size.0, "height": size.1}))
                .send()
                .await;
            if let Ok(Value::String(png)) = self.try_call("GET", "/screenshot", json!({})).await
                && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(png)
            {
                let path = folder.join(format!("{}-{label}.png", self.name));
                if std::fs::write(&path, png).is_ok() {
                    written.push(path.display().to_string());
                }
            }
        }
        panic!("{why} (screenshots: {written:?})");
    }
}

impl Drop for Browser {
    /// Ends the session (ChromeDriver then closes Chromium) and the driver.
    /// Synchronously: a `Drop` cannot await, and a test may be unwinding.
    fn drop(&mut self) {
        if let Some(rest) = self.session.strip_prefix("http://")
            && let Some((host, path)) = rest.split_once('/')
            && let Ok(mut stream) = TcpStream::connect(host)
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
