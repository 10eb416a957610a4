//! What `estimate` shows is what is sent: for every model of the simulator's catalogs and
//! a table of requests, the model is pinned, the estimate taken, and (when the candidate
//! is eligible) the same request generated with the same options; the JSON bodies the
//! simulator received must be the wire crates' `request_body` of each planned call. One
//! insta snapshot per model pins the table: eligible with its planned bodies, or why not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use imagegen::core::ProviderExtras;
use imagegen::kolbo_api::poll::PollSchedule;
use imagegen::sim::{ImageSize, KolboRateLimits, Route, SimConfig, SimHandle};
use imagegen::{
    CallOptions, CallPlan, Candidate, Client, GenerateOptions, GenerationRequest, ProviderId,
    Quality,
};
use serde_json::{Value, json};

/// A moodboard the simulator's library has.
const MOODBOARD: &str = "6601a1b2c3d4e5f6a7b8c9d0";

/// The requests every model is asked, by name.
fn requests() -> Vec<(&'static str, GenerationRequest)> {
    let base = || GenerationRequest::builder("a lighthouse at dusk");
    let extras = |provider: &str, options: Value| {
        let mut extras = ProviderExtras::default();
        extras.set(ProviderId::new(provider), &options).unwrap();
        extras
    };
    let shaped = |shape: &str| base().shape(shape.parse().unwrap());
    vec![
        ("no shape", base()),
        ("16:9", shaped("16:9")),
        ("1:1", shaped("1:1")),
        ("9:16", shaped("9:16")),
        ("1536x1024", shaped("1536x1024")),
        ("count 2", base().count(2)),
        ("count 6 (splits)", base().count(6)),
        ("quality high", base().quality(Quality::High)),
        ("style watercolor", base().style("watercolor")),
        (
            "kolbo moodboard",
            base().extras(extras("kolbo", json!({ "moodboard_id": MOODBOARD }))),
        ),
        (
            "koala alt text",
            base().extras(extras("koala", json!({ "generate_alt_text": true }))),
        ),
    ]
    .into_iter()
    .map(|(name, builder)| (name, builder.build().unwrap()))
    .collect()
}

/// The simulator: generations finish at once, tiny images, no rate limit, deep wallets.
async fn client() -> Client {
    let mut config = SimConfig::default()
        .with_speed(0.0)
        .with_image_size(ImageSize::MaxSide(16));
    config.kolbo.rate_limits = KolboRateLimits::unlimited();
    let mut schedule = PollSchedule::fixed(Duration::from_millis(2));
    schedule.min_interval = Duration::from_millis(1);
    schedule.backoff_initial = Duration::from_millis(5);
    let client = Client::simulated_builder(config)
        .await
        .unwrap()
        .poll_schedule(schedule)
        .kolbo_pacing(false)
        .build()
        .unwrap();
    let sim = client.simulator().unwrap();
    assert!(sim.set_kolbo_credits(sim.kolbo_api_key(), 1e9));
    assert!(sim.set_koala_credits(sim.koala_api_key(), 1_000_000_000));
    client
}

/// The body the wire crate writes for `call`, as JSON.
fn planned_body(call: &CallPlan) -> Value {
    let body = match call.provider.as_str() {
        "kolbo" => imagegen::kolbo_api::request_body::request_body(call)
            .map(|body| serde_json::to_value(body).unwrap()),
        "koala" => {
            imagegen::koala_api::request_body(call).map(|body| serde_json::to_value(body).unwrap())
        }
        other => panic!("a plan for an unknown provider {other}"),
    };
    body.unwrap_or_else(|e| panic!("{}: {e}", call.label()))
}

/// The JSON bodies of the generation POSTs the simulator received since the log was
/// cleared.
fn bodies_received(sim: &SimHandle) -> Vec<Value> {
    let log = sim.request_log();
    [Route::KolboGenerate, Route::KoalaGenerate]
        .into_iter()
        .flat_map(|route| log.for_route(route))
        .map(|entry| {
            let body = entry.body.clone();
            body.unwrap_or_else(|| panic!("a generation POST without a JSON body: {entry:?}"))
        })
        .collect()
}

/// Bodies in a stable order: concurrent calls of one request may arrive in any order.
fn sorted(mut bodies: Vec<Value>) -> Vec<Value> {
    bodies.sort_by_cached_key(Value::to_string);
    bodies
}

/// One row of a model's table.
fn row(request: &str, candidate: &Candidate) -> Value {
    if !candidate.eligible {
        return json!({ "request": request, "excluded": candidate.reason });
    }
    let calls: Vec<Value> = candidate
        .calls
        .iter()
        .map(|call| json!({ "credits": call.credits.to_string(), "body": planned_body(call) }))
        .collect();
    let mut row = json!({
        "request": request,
        "eligible": true,
        "total_credits": candidate.total_credits.map(|c| c.to_string()),
        "calls": calls,
    });
    if !candidate.warnings.is_empty() {
        row["warnings"] = json!(candidate.warnings);
    }
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_sends_the_plan_its_estimate_showed() {
    let started = Instant::now();
    let client = client().await;
    let sim = client.simulator().unwrap();
    let catalog = client.models().await.unwrap();
    assert!(catalog.failures.is_empty(), "{:?}", catalog.failures);
    let mut models: Vec<(ProviderId, String)> = catalog
        .entries
        .iter()
        .map(|m| (m.provider.clone(), m.id.as_str().to_owned()))
        .collect();
    models.sort();
    let providers: Vec<&str> = models.iter().map(|(p, _)| p.as_str()).collect();
    assert!(providers.contains(&"kolbo") && providers.contains(&"koala"));

    let requests = requests();
    let (mut sent, mut excluded) = (0, 0);
    for (provider, model) in &models {
        let call = CallOptions::default()
            .provider(provider.clone())
            .model(model.as_str());
        let mut table = Vec::new();
        for (name, request) in &requests {
            let case = format!("{provider}/{model}, {name}");
            let estimate = client.estimate_with(request, &call).await.unwrap();
            let candidate = estimate
                .candidates
                .iter()
                .find(|c| {
                    c.provider == *provider
                        && c.model.as_ref().map(|m| m.as_str()) == Some(model.as_str())
                })
                .unwrap_or_else(|| panic!("{case}: no candidate in {estimate}"));
            table.push(row(name, candidate));
            if !candidate.eligible {
                excluded += 1;
                continue;
            }
            assert_eq!(
                estimate.best().map(Candidate::label),
                Some(candidate.label()),
                "{case}: the pinned candidate is not the one tried first"
            );
            assert!(
                candidate.calls.iter().all(|c| c.provider == *provider),
                "{case}"
            );
            let planned = sorted(candidate.calls.iter().map(planned_body).collect());

            sim.request_log().clear();
            let generation = client
                .generate_with(request, &GenerateOptions::default().call(call.clone()))
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert!(!generation.images.is_empty(), "{case}");
            let received = sorted(bodies_received(sim));
            assert_eq!(
                received, planned,
                "{case}: the bodies sent are not the plan the estimate showed"
            );
            sent += 1;
        }
        let name = format!("{provider}__{}", model.replace(['/', '.'], "_"));
        insta::with_settings!({
            description => format!("{provider}/{model}: each request's plan, as estimate shows it and as it is sent"),
            omit_expression => true,
            filters => vec![
                (r"https?://127\.0\.0\.1:\d+", "[sim]"),
                (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[timestamp]"),
            ],
        }, {
            insta::assert_json_snapshot!(name, table);
        });
    }
    assert!(sent > 0 && excluded > 0, "sent {sent}, excluded {excluded}");
    eprintln!(
        "{} models × {} requests: {sent} sent as planned, {excluded} excluded, in {:?}",
        models.len(),
        requests.len(),
        started.elapsed()
    );
}
