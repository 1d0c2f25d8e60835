use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// Polls `check` until it returns `Ok`; once `timeout` has passed, fails the
/// test with the last `Err`, which should describe the state it saw.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => panic!("not within {timeout:?}: {state}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
