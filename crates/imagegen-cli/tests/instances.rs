//! Several `imagegen serve --db postgres://…` processes behave as one gateway (issue #16):
//! real processes (the built binary), a real PostgreSQL (a throwaway server from
//! `imagegen_ledger::testing`; without one these tests fail saying how to install it), and
//! the simulator running in this test process on the real clock.
//!
//! - a key's budget holds across instances: 200 concurrent requests over 3 gateways charge
//!   at most what the budget allows, and every other request is refused `budget_exceeded`;
//! - Kolbo's rate limit is kept together: the gateways pace their generation starts through
//!   the ledger (`--kolbo-rate-limit`), and the simulator answers no 429;
//! - a gateway killed with SIGKILL leaves no job behind: another claims its open jobs once
//!   their lease ran out (`--job-lease`), and finishes them without a second paid POST.
//!
//! The tests take turns (one lock): the machines running them have two cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{
    Gateway, GatewaySetup, PgDatabase, create_gateway_key, credits_per_image, get_json, post_json,
};
use imagegen_ledger::JobState;
use imagegen_sim::{ImageSize, KolboRateLimits, Route, SimConfig, SimHandle};
use serde_json::json;

/// One test at a time: each starts 3 gateways, a simulator and a database.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The pinned model of the budget test: KoalaImages answers synchronously, with no limit.
const KOALA_MODEL: &str = "koala/gpt-image-2";
/// The pinned Kolbo model (a 4 s typical generation at speed 1).
const KOLBO_MODEL: &str = "kolbo/z-image/turbo";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(50))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap()
}

async fn start_sim(config: SimConfig) -> SimHandle {
    let sim = imagegen_sim::start(config.with_image_size(ImageSize::MaxSide(32)))
        .await
        .unwrap();
    // Plenty of credits: the budgets under test are the gateway's, not the account's.
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e9);
    sim.set_koala_credits(sim.koala_api_key(), 1_000_000_000);
    sim
}

/// Every gateway's stderr, for a failure message.
fn stderrs(gateways: &[Gateway]) -> String {
    gateways
        .iter()
        .enumerate()
        .map(|(i, g)| format!("--- gateway {i} ({}) stderr:\n{}", g.url, g.stderr()))
        .collect()
}

/// 200 concurrent requests over 3 gateways on one key whose budget covers 37 images:
/// at most 37 are charged (as the simulator counts them), every success is one of them,
/// and every other request is refused with 402 `budget_exceeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_budget_holds_across_instances() {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let sim = start_sim(SimConfig::default().with_speed(0.0).without_rate_limits()).await;
    let db = PgDatabase::fresh().await;
    let (home, images) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let setup = GatewaySetup {
        sim: &sim,
        db: &db.url,
        image_dir: images.path(),
        home: home.path(),
    };
    // The price first (a gateway with no key yet serves this machine without one).
    let price = {
        let probe = setup.start(1, &[]);
        credits_per_image(&http(), &probe[0].url, None, KOALA_MODEL).await
    };
    assert!(price > 0.0, "{KOALA_MODEL} costs {price}");
    let budget = format!("{}", price * 37.0);
    let key = create_gateway_key(home.path(), &db.url, "budget-test", &budget);
    let gateways = setup.start(3, &["--max-in-flight-per-key", "1000"]);
    let koala_before = sim.koala_credits(sim.koala_api_key()).unwrap();
    sim.request_log().clear();

    let http = http();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (http, key) = (http.clone(), key.clone());
            let url = format!("{}/v1/images/generations", gateways[i % 3].url);
            tokio::spawn(async move {
                let body = json!({
                    "prompt": format!("budget request {i:03}"),
                    "model": KOALA_MODEL,
                    "quality": "auto",
                    "size": "1024x1024",
                });
                post_json(&http, &url, Some(&key), &body).await
            })
        })
        .collect();
    let mut successes = 0;
    let mut refused = 0;
    let mut other = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            200 => successes += 1,
            400..=499 if answer.body["error"]["code"] == "budget_exceeded" => refused += 1,
            _ => other.push(answer),
        }
    }
    let koala_after = sim.koala_credits(sim.koala_api_key()).unwrap();
    let generated = sim
        .request_log()
        .for_route(Route::KoalaGenerate)
        .iter()
        .filter(|r| r.status == Some(200))
        .count();
    let charged = (koala_before - koala_after) as f64 / price;
    eprintln!(
        "budget: {successes} succeeded, {refused} refused, {} other; the simulator made {generated} \
         generation(s) and charged {charged} image(s) ({:.1} s)",
        other.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        other.is_empty(),
        "answers neither 200 nor budget_exceeded: {other:?}\n{}",
        stderrs(&gateways)
    );
    assert!(
        generated <= 37,
        "the simulator made {generated} generations for a budget of 37"
    );
    assert_eq!(
        charged, generated as f64,
        "credits charged by the simulator, in images"
    );
    assert_eq!(
        successes, generated,
        "every success is one charged generation"
    );
    assert_eq!(successes + refused, 200);
    assert!(successes > 0, "nothing succeeded:\n{}", stderrs(&gateways));
    drop(gateways);
    db.drop_database().await;
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Kolbo's generation limit, made 5 per 2 s in the simulator, and the same limit given to
/// 3 gateways: 15 requests spread over them all succeed, and the simulator answered no
/// generation start with 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kolbo_rate_limit_is_kept_together() {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let limits = KolboRateLimits::default()
        .with_generate(Some(5))
        .with_window(Duration::from_secs(2));
    let sim = start_sim(
        SimConfig::default()
            .with_speed(0.0)
            .with_kolbo_rate_limits(limits),
    )
    .await;
    let db = PgDatabase::fresh().await;
    let (home, images) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let setup = GatewaySetup {
        sim: &sim,
        db: &db.url,
        image_dir: images.path(),
        home: home.path(),
    };
    let gateways = setup.start(
        3,
        &[
            "--kolbo-rate-limit",
            "5/2s",
            "--max-in-flight-per-key",
            "1000",
        ],
    );
    let http = http();
    const REQUESTS: usize = 15;
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let http = http.clone();
            let url = format!("{}/v1/images/generations", gateways[i % 3].url);
            tokio::spawn(async move {
                let body = json!({"prompt": format!("paced request {i:02}"), "model": KOLBO_MODEL});
                post_json(&http, &url, None, &body).await
            })
        })
        .collect();
    let mut failed = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status != 200 {
            failed.push(answer);
        }
    }
    let starts = sim.request_log().for_route(Route::KolboGenerate);
    let statuses: BTreeMap<Option<u16>, usize> =
        starts.iter().fold(BTreeMap::new(), |mut counts, r| {
            *counts.entry(r.status).or_default() += 1;
            counts
        });
    let span = match (starts.first(), starts.last()) {
        (Some(first), Some(last)) => last.at.saturating_sub(first.at).as_secs_f64(),
        _ => 0.0,
    };
    eprintln!(
        "rate limit: {} of {REQUESTS} succeeded; the simulator's generation starts by status: \
         {statuses:?}, over {span:.2} s ({:.1} s in all)",
        REQUESTS - failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "failed requests: {failed:?}\n{}",
        stderrs(&gateways)
    );
    assert_eq!(
        statuses.get(&Some(429)).copied().unwrap_or(0),
        0,
        "the simulator answered 429: {statuses:?}\n{}",
        stderrs(&gateways)
    );
    assert_eq!(
        statuses.get(&Some(200)).copied(),
        Some(REQUESTS),
        "{statuses:?}"
    );
    // 15 starts at 5 per 2 s take at least two full windows.
    assert!(
        span >= 3.9,
        "15 starts over {span} s cannot have kept 5 per 2 s"
    );
    drop(gateways);
    db.drop_database().await;
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// 12 background generations sent to gateway A, A killed with SIGKILL once their jobs are
/// open in the ledger: B and C claim them after the 2 s lease and finish them with their
/// images, and the simulator saw each generation started exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_gateways_jobs_are_finished_by_another() {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    // z-image/turbo takes 4 s typically: 4.2–7.8 s at speed 1.5, time to kill A mid-way.
    let sim = start_sim(SimConfig::default().with_speed(1.5).without_rate_limits()).await;
    let db = PgDatabase::fresh().await;
    let (home, images) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let setup = GatewaySetup {
        sim: &sim,
        db: &db.url,
        image_dir: images.path(),
        home: home.path(),
    };
    let mut gateways = setup.start(
        3,
        &[
            "--job-lease",
            "2",
            "--kolbo-rate-limit",
            "100/1s",
            "--max-in-flight-per-key",
            "1000",
        ],
    );
    let http = http();
    const REQUESTS: usize = 12;
    let marker = |i: usize| format!("lease job {i:02} of {REQUESTS}");
    // The first few wait for their answer (with an Idempotency-Key) and lose it with A;
    // the others run in the background.
    const WAITED: usize = 4;
    let waited_body = |i: usize| json!({"prompt": marker(i), "model": KOLBO_MODEL});
    for i in 0..WAITED {
        let (http, url, body) = (
            http.clone(),
            format!("{}/v1/images/generations", gateways[0].url),
            waited_body(i),
        );
        tokio::spawn(async move {
            // Cut off when A dies: the repeat below gets the answer.
            let _ = http
                .post(url)
                .header("Idempotency-Key", format!("waited-{i}"))
                .json(&body)
                .send()
                .await;
        });
    }
    let mut ids = Vec::new();
    for i in WAITED..REQUESTS {
        let body = json!({"prompt": marker(i), "model": KOLBO_MODEL});
        let answer = post_json(
            &http,
            &format!("{}/v1/generations", gateways[0].url),
            None,
            &body,
        )
        .await;
        assert_eq!(
            answer.status,
            202,
            "{:?}\n{}",
            answer.body,
            stderrs(&gateways)
        );
        ids.push(answer.body["id"].as_str().unwrap().to_owned());
    }

    // Wait until the ledger holds every job open (accepted by the provider, not finished).
    let ledger = db.open().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let open = loop {
        let open = ledger.open_jobs().await.unwrap();
        if open.len() == REQUESTS {
            break open;
        }
        assert!(
            Instant::now() < deadline,
            "after 15 s the ledger holds {} open job(s) of {REQUESTS}; the simulator saw {} start(s)\n{}",
            open.len(),
            sim.request_log().count(Route::KolboGenerate),
            stderrs(&gateways)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed_at = Instant::now();
    gateways[0].kill();
    eprintln!(
        "kill: {} job(s) open when A was killed ({:.1} s in)",
        open.len(),
        started.elapsed().as_secs_f64()
    );

    // Every job that was open finishes, done, with its images, within the deadline.
    let deadline = killed_at + Duration::from_secs(30);
    let wanted: BTreeSet<(String, String)> = open
        .iter()
        .map(|j| (j.provider.to_string(), j.job_id.clone()))
        .collect();
    loop {
        let mut states = BTreeMap::new();
        for job in &open {
            let now = ledger
                .job(&job.provider, &job.job_id)
                .await
                .unwrap()
                .map(|j| (j.state, j.lease.is_some()));
            states.insert(job.job_id.clone(), now);
        }
        if states
            .values()
            .all(|s| matches!(s, Some((JobState::Done, _))))
        {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "30 s after A was killed, the jobs it held stand as (state, leased): {states:?}\n\
                 the simulator's status polls since: {}\n{}",
                sim.request_log().count(Route::KolboStatus),
                stderrs(&gateways)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished_after = killed_at.elapsed().as_secs_f64();
    let history = ledger
        .history(&imagegen_ledger::HistoryQuery::newest(1_000))
        .await
        .unwrap();
    for entry in history
        .iter()
        .filter(|e| wanted.contains(&(e.provider.to_string(), e.job_id.clone())))
    {
        assert!(
            !entry.files.is_empty(),
            "job {} is done without images",
            entry.job_id
        );
        for file in &entry.files {
            let path = if file.is_absolute() {
                file.clone()
            } else {
                images.path().join(file)
            };
            assert!(
                path.is_file() || images.path().join(file.file_name().unwrap()).is_file(),
                "job {}'s image {} is not on disk",
                entry.job_id,
                file.display()
            );
        }
    }

    // The simulator saw each generation started once: no second paid POST.
    let starts = sim.request_log().for_route(Route::KolboGenerate);
    for i in 0..REQUESTS {
        let marker = marker(i);
        let posts = starts
            .iter()
            .filter(|r| {
                r.body
                    .as_ref()
                    .and_then(|b| b["prompt"].as_str())
                    .is_some_and(|p| p.contains(&marker))
            })
            .count();
        assert_eq!(posts, 1, "{marker:?} was started {posts} time(s)");
    }
    assert_eq!(starts.len(), REQUESTS);
    eprintln!(
        "kill: every job done {finished_after:.1} s after the kill, each started once ({:.1} s in)",
        started.elapsed().as_secs_f64()
    );

    // The background generations A started are readable on B.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &ids {
        loop {
            let answer = get_json(
                &http,
                &format!("{}/v1/generations/{id}", gateways[1].url),
                None,
            )
            .await;
            if answer.status == 200 && answer.body["status"] == "succeeded" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "GET /v1/generations/{id} on B, after A was killed and the job finished: {} {}",
                answer.status,
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A waited request repeated on B with its Idempotency-Key gets the images the jobs A
    // paid for saved, and nothing is submitted again.
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..WAITED {
        loop {
            let response = http
                .post(format!("{}/v1/images/generations", gateways[1].url))
                .header("Idempotency-Key", format!("waited-{i}"))
                .json(&waited_body(i))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if status == 200 {
                assert!(body["data"][0]["url"].is_string(), "{body}");
                assert_eq!(body["imagegen"]["taken_over"], true, "{body}");
                break;
            }
            assert_eq!(status, 409, "repeat {i} on B: {body}");
            assert!(
                Instant::now() < deadline,
                "repeat {i} on B still running: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        sim.request_log().count(Route::KolboGenerate),
        REQUESTS,
        "no repeat was submitted again"
    );
    ledger.close().await;
    drop(gateways);
    db.drop_database().await;
    assert!(started.elapsed() < Duration::from_secs(60));
}
