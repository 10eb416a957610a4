//! A bounded load generator: starts a simulator on loopback and sends a fixed number of
//! requests from concurrent clients to the Kolbo status route (80 %) and models route
//! (20 %), then prints requests per second.
//!
//! ```text
//! cargo run --release -p imagegen-sim --example load -- [REQUESTS] [CONCURRENCY]
//! ```
//!
//! Defaults: 100 000 requests from 64 concurrent keep-alive connections. Only loopback
//! traffic; the run stops by itself.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use imagegen_sim::SimConfig;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let concurrency: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);

    let sim = imagegen_sim::start(SimConfig::default().with_speed(0.0).without_rate_limits())
        .await
        .expect("simulator starts");
    let key = sim.kolbo_api_key().to_owned();
    let base = sim.kolbo_base_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    let started: serde_json::Value = client
        .post(format!("{base}/v1/generate/image"))
        .header("X-API-Key", &key)
        .json(&serde_json::json!({"prompt": "load test", "model": "z-image/turbo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_url = format!(
        "{base}/v1/generate/{}/status",
        started["generation_id"].as_str().unwrap()
    );
    let models_url = format!("{base}/v1/models?type=image");

    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, key, next, failures) =
                (client.clone(), key.clone(), next.clone(), failures.clone());
            let (status_url, models_url) = (status_url.clone(), models_url.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let url = if n % 5 == 0 { &models_url } else { &status_url };
                    let ok = match client.get(url).header("X-API-Key", &key).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = clock.elapsed();
    let failed = failures.load(Ordering::Relaxed);
    println!(
        "{total} requests ({concurrency} concurrent, 80% status / 20% models) in {:.2} s: {:.0} requests/s, {failed} failed; request log kept {} entries",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        sim.request_log().entries().len(),
    );
    sim.shutdown().await;
}
