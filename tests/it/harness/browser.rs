//! Pages in a real browser: Chromium, headless, loads a page of the web
//! app, runs its scripts (and the API calls they make) and hands back the
//! DOM as they left it. `./scripts/services.sh --browser` installs it.

use std::{path::PathBuf, process::Command};

/// `$CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .expect("the web app's tests need Chromium: run ./scripts/services.sh --browser or set CHROMIUM")
}

/// The DOM of `url` once its scripts are done: the browser's virtual clock
/// stands still while requests are in flight, so every API call the page
/// makes on load has been answered and drawn.
pub async fn rendered(url: &str) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let profile =
            std::env::temp_dir().join(format!("boxoffice-chromium-{}", uuid::Uuid::new_v4()));
        let output = Command::new(chromium())
            .args([
                "--headless",
                // Tests run as root in CI, where the sandbox cannot start;
                // the pages are our own.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                // Without these Chromium reaches out to Google's hosts.
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=10000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(&url)
            .output()
            .expect("Chromium starts");
        let _ = std::fs::remove_dir_all(&profile);
        assert!(
            output.status.success(),
            "Chromium failed on {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 DOM")
    })
    .await
    .expect("the browser task")
}
