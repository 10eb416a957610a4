//! Helpers shared by the integration tests: clients aimed at a local server, and a server
//! that never answers (which mockito cannot be).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use imagegen_core::ManualClock;
use koala_api::{KoalaClient, KoalaPlan};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A key-shaped test key (not a real one).
pub const TEST_KEY: &str = "00000000-test-4000-8000-000000000000";

/// A client for `base` (a mockito URL) on `clock`.
pub fn client(base: &str, clock: &ManualClock, plan: KoalaPlan) -> KoalaClient {
    KoalaClient::builder(TEST_KEY)
        .base_url(format!("{base}/api"))
        .plan(plan)
        .clock(clock.shared())
        .http_client(http())
        .build()
        .unwrap()
}

/// A client (which never retries a POST).
pub fn client_without_retries(base: &str) -> KoalaClient {
    KoalaClient::builder(TEST_KEY)
        .base_url(format!("{base}/api"))
        .clock(ManualClock::new().shared())
        .http_client(http())
        .build()
        .unwrap()
}

/// An HTTP client like the crate's own: no redirects, no proxy.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A local server that reads one request and never answers: a request that left and got
/// no reply. Returns its base URL and how many requests it read.
pub async fn silent_server() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            if socket.read(&mut buf).await.unwrap_or(0) > 0 {
                *count.lock().unwrap() += 1;
            }
            held.push(socket);
        }
    });
    (url, seen)
}
