//! Helpers shared by the integration tests: a simulator on a manual clock, HTTP clients,
//! and image header parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::time::Duration;

use imagegen_core::ManualClock;
use imagegen_sim::{ImageSize, SimConfig, SimHandle};
use serde_json::Value;

/// A simulator with small images on a clock that moves only when told.
pub async fn sim(configure: impl FnOnce(SimConfig) -> SimConfig) -> (SimHandle, ManualClock) {
    let clock = ManualClock::manual();
    let config = SimConfig::default()
        .with_clock(clock.shared())
        .with_image_size(ImageSize::MaxSide(64));
    let sim = imagegen_sim::start(configure(config)).await.unwrap();
    (sim, clock)
}

thread_local! {
    // One client per test thread (each `#[tokio::test]` has its own thread and runtime):
    // building a client loads the TLS roots, which is slow.
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
}

/// A client that never follows redirects.
pub fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// A Kolbo GET with `X-API-Key` (path below the base URL, like `/v1/models`).
pub async fn kolbo_get(sim: &SimHandle, key: &str, path: &str) -> Reply {
    let url = format!("{}{path}", sim.kolbo_base_url());
    reply(
        client()
            .get(url)
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A Kolbo POST with `X-API-Key` and a JSON body.
pub async fn kolbo_post(sim: &SimHandle, key: &str, path: &str, body: &Value) -> Reply {
    let url = format!("{}{path}", sim.kolbo_base_url());
    reply(
        client()
            .post(url)
            .header("X-API-Key", key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A KoalaImages generation with `Authorization: Bearer`.
pub async fn koala_generate(sim: &SimHandle, key: &str, body: &Value) -> Reply {
    let url = format!("{}/image-generation/", sim.koala_base_url());
    reply(
        client()
            .post(url)
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A plain GET of any URL, without credentials.
pub async fn fetch(url: &str) -> Reply {
    reply(client().get(url).send().await.unwrap()).await
}

/// Width and height of a PNG (IHDR) or baseline/progressive JPEG (SOF).
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let be =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        return (be(16), be(20));
    }
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "neither PNG nor JPEG");
    let mut i = 2;
    while i + 9 < bytes.len() {
        assert_eq!(bytes[i], 0xFF);
        let marker = bytes[i + 1];
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if matches!(marker, 0xC0..=0xC2) {
            let h = u32::from(u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]));
            let w = u32::from(u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]));
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no SOF marker")
}

/// Waits (real time, bounded) until the simulator has logged `n` requests in total: used
/// before advancing the manual clock, so a request is known to be in the server.
pub async fn until_logged(sim: &SimHandle, n: u64) {
    for _ in 0..400 {
        if sim.request_log().total() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the simulator never logged {n} requests");
}
