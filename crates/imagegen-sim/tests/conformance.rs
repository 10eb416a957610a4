//! Conformance with the documented exchanges in the workspace's `fixtures/`: for every
//! fixture, drive the simulator into the same situation (same route by method and path,
//! same status, same state or error code) and check that what it serves has the same
//! shape: the same status, the same kind of body, and every documented key present with
//! the same JSON type (the simulator may add fields; a fixture's `null` matches anything).
//!
//! The fixtures are globbed, so new ones are checked as they land. A fixture of a route
//! the simulator does not serve, or of a situation it cannot produce, fails the test
//! unless it is listed in `NOT_MODELLED` with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::client;
use imagegen_core::ManualClock;
use imagegen_core::fixture::Fixture;
use imagegen_sim::{
    Fault, FaultRule, ImageSize, KoalaAccount, KoalaErrorBody, KoalaPlan, PollUrlForm, Route,
    SimConfig, SimHandle, Trigger,
};
use serde_json::{Value, json};

/// Fixtures of behaviour the simulator deliberately does not reproduce.
const NOT_MODELLED: &[(&str, &str)] = &[
    (
        "kolbo/models.camel_case.json",
        "camelCase catalog of builds before May 2026; the simulator serves the current snake_case catalog",
    ),
    (
        "kolbo/generate_image.camel_case_id.json",
        "camelCase `generationId` that clients accept as a fallback; the simulator sends `generation_id`",
    ),
    (
        "kolbo/error.success_false_200.json",
        "an error envelope under HTTP 200; the simulator always pairs errors with an error status",
    ),
];

/// Keys clients accept as alternative spellings, which the simulator does not send.
const ALIAS_KEYS: &[&str] = &["_id", "generationId"];

fn fixtures(provider: &str) -> Vec<(String, Fixture)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(provider);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = format!("{provider}/{}", p.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&p).unwrap();
            let fixture: Fixture =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, fixture)
        })
        .collect()
}

/// What the simulator served.
struct Served {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Served {
    fn content_type(&self) -> String {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

async fn start(configure: impl FnOnce(SimConfig) -> SimConfig) -> (SimHandle, ManualClock) {
    let clock = ManualClock::manual();
    let config = SimConfig::default()
        .with_clock(clock.shared())
        .with_image_size(ImageSize::MaxSide(32));
    (imagegen_sim::start(configure(config)).await.unwrap(), clock)
}

async fn send(
    sim: &SimHandle,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: Option<&Value>,
    auth: Auth<'_>,
) -> Served {
    let mut url = format!("{}{path}", sim.api_origin());
    if let Some(q) = query {
        url = format!("{url}?{q}");
    }
    let mut request = match method {
        "POST" => client().post(url),
        _ => client().get(url),
    };
    request = match auth {
        Auth::Kolbo(key) => request.header("X-API-Key", key),
        Auth::Koala(key) => request.bearer_auth(key),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    Served {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Kolbo(&'a str),
    Koala(&'a str),
}

fn code_of(f: &Fixture) -> Option<&str> {
    f.response.body.as_ref()?.get("code")?.as_str()
}

fn state_of(f: &Fixture) -> Option<&str> {
    f.response.body.as_ref()?.get("state")?.as_str()
}

fn is_html(f: &Fixture) -> bool {
    f.response
        .headers
        .get("content-type")
        .is_some_and(|c| c.contains("html"))
}

/// Starts a generation and returns its id.
async fn started(sim: &SimHandle, faults: &[FaultRule]) -> String {
    for rule in faults {
        sim.faults().inject(rule.clone());
    }
    let served = send(
        sim,
        "POST",
        "/api/v1/generate/image",
        None,
        Some(&json!({"prompt": "A futuristic cityscape at night"})),
        Auth::Kolbo(sim.kolbo_api_key()),
    )
    .await;
    assert_eq!(
        served.status,
        200,
        "{}",
        String::from_utf8_lossy(&served.body)
    );
    let body: Value = serde_json::from_slice(&served.body).unwrap();
    body["generation_id"].as_str().unwrap().to_owned()
}

fn sim_model_for(requested: Option<&Value>) -> Option<Value> {
    const KNOWN: &[&str] = &[
        "nano-banana-2",
        "nano-banana-2/4k",
        "nano-banana-pro",
        "gpt-image-2",
        "flux-2/flash",
        "z-image/turbo",
        "midjourney-v7",
        "auto",
    ];
    match requested.and_then(Value::as_str) {
        Some(m) if !KNOWN.contains(&m) => Some(json!("flux-2/flash")),
        _ => None,
    }
}

/// Drives the simulator into the fixture's situation and returns what it served.
async fn kolbo_case(f: &Fixture) -> Result<Served, String> {
    let req = &f.request;
    let status = f.response.status;
    let parts: Vec<&str> = req.path.trim_start_matches("/api/v1/").split('/').collect();
    let key_of = |sim: &SimHandle| sim.kolbo_api_key().to_owned();
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["generate", "image"]) => {
            let body = req.body.clone().unwrap_or(json!({}));
            let poll_form = f
                .response
                .body
                .as_ref()
                .and_then(|b| b["poll_url"].as_str())
                .filter(|p| p.starts_with("/api/"))
                .map(|_| PollUrlForm::OriginRelative);
            let insufficient = code_of(f) == Some("INSUFFICIENT_CREDITS");
            let (sim, _clock) = start(|mut c| {
                if let Some(form) = poll_form {
                    c.kolbo.poll_url = form;
                }
                if insufficient {
                    c.kolbo.insufficient_credits_status = status;
                }
                if status == 429 {
                    c.kolbo.rate_limits.generate = Some(1);
                }
                c
            })
            .await;
            let key = key_of(&sim);
            let mut body = body;
            if let Some(model) = sim_model_for(body.get("model"))
                && code_of(f) != Some("MODEL_NOT_FOUND")
            {
                body["model"] = model;
            }
            match status {
                200 if f.response.body_text.is_some() => {
                    sim.faults().inject(FaultRule::nth(
                        Route::KolboGenerate,
                        1,
                        Fault::TruncatedJson,
                    ));
                }
                200 => {}
                401 => {
                    return Ok(send(
                        &sim,
                        "POST",
                        &req.path,
                        None,
                        Some(&body),
                        Auth::Kolbo("kolbo_live_wrong"),
                    )
                    .await);
                }
                _ if insufficient => {
                    sim.set_kolbo_credits(&key, 0.0);
                }
                400 => {}
                429 if f.response.headers.contains_key("retry-after") => {
                    let _ = send(
                        &sim,
                        "POST",
                        &req.path,
                        None,
                        Some(&body),
                        Auth::Kolbo(&key),
                    )
                    .await;
                }
                302 => {
                    sim.faults().inject(FaultRule::nth(
                        Route::KolboGenerate,
                        1,
                        Fault::RedirectToOtherOrigin,
                    ));
                }
                other => {
                    sim.faults().inject(FaultRule::nth(
                        Route::KolboGenerate,
                        1,
                        Fault::status(other),
                    ));
                }
            }
            Ok(send(
                &sim,
                "POST",
                &req.path,
                None,
                Some(&body),
                Auth::Kolbo(&key),
            )
            .await)
        }
        ("GET", ["generate", _, "status"]) => {
            let (sim, clock) = start(|c| c).await;
            let key = key_of(&sim);
            if status == 404 {
                return Ok(send(
                    &sim,
                    "GET",
                    "/api/v1/generate/unknown/status",
                    None,
                    None,
                    Auth::Kolbo(&key),
                )
                .await);
            }
            if f.response.body_text.is_some() {
                let id = started(&sim, &[]).await;
                let fault = if is_html(f) {
                    Fault::HtmlErrorPage { status }
                } else {
                    Fault::TruncatedJson
                };
                sim.faults()
                    .inject(FaultRule::nth(Route::KolboStatus, 1, fault));
                let path = format!("/api/v1/generate/{id}/status");
                return Ok(send(&sim, "GET", &path, None, None, Auth::Kolbo(&key)).await);
            }
            let state = state_of(f).ok_or("a status fixture without a state")?;
            let zero = f
                .response
                .body
                .as_ref()
                .and_then(|b| b["result"]["urls"].as_array())
                .is_some_and(Vec::is_empty);
            let faults = match state {
                "failed" => vec![FaultRule::nth(
                    Route::KolboGenerate,
                    1,
                    Fault::content_flagged(),
                )],
                "completed" if zero => {
                    vec![FaultRule::nth(Route::KolboGenerate, 1, Fault::ZeroUrls)]
                }
                // Plain generations start `processing`; a queued one shows `pending`.
                "pending" => vec![FaultRule::nth(Route::KolboGenerate, 1, Fault::Queued)],
                _ => Vec::new(),
            };
            let id = started(&sim, &faults).await;
            let path = format!("/api/v1/generate/{id}/status");
            match state {
                "pending" => {}
                "processing" => clock.advance(Duration::from_secs(2)),
                "completed" | "failed" => clock.advance(Duration::from_secs(300)),
                "cancelled" => {
                    send(
                        &sim,
                        "POST",
                        &format!("/api/v1/generate/{id}/cancel"),
                        None,
                        Some(&json!({})),
                        Auth::Kolbo(&key),
                    )
                    .await;
                }
                other => {
                    clock.advance(Duration::from_secs(2));
                    sim.faults().inject(FaultRule::nth(
                        Route::KolboStatus,
                        1,
                        Fault::UnknownState(other.to_owned()),
                    ));
                }
            }
            Ok(send(&sim, "GET", &path, None, None, Auth::Kolbo(&key)).await)
        }
        ("POST", ["generate", _, "cancel"]) => {
            let (sim, clock) = start(|c| c).await;
            let key = key_of(&sim);
            let id = started(&sim, &[]).await;
            if status == 409 {
                clock.advance(Duration::from_secs(300));
            }
            Ok(send(
                &sim,
                "POST",
                &format!("/api/v1/generate/{id}/cancel"),
                None,
                Some(&json!({})),
                Auth::Kolbo(&key),
            )
            .await)
        }
        ("GET", ["models"]) => {
            let lists_router = f
                .response
                .body
                .as_ref()
                .is_some_and(|b| b.to_string().contains("kolbo_smart_select_router"));
            let (sim, _clock) = start(|mut c| {
                c.kolbo.list_smart_select_router = lists_router;
                c
            })
            .await;
            let key = key_of(&sim);
            Ok(send(
                &sim,
                "GET",
                &req.path,
                req.query.as_deref(),
                None,
                Auth::Kolbo(&key),
            )
            .await)
        }
        ("GET", ["account", "credits"] | ["moodboards"] | ["visual-dna"]) => {
            let (sim, _clock) = start(|c| c).await;
            let key = key_of(&sim);
            Ok(send(
                &sim,
                "GET",
                &req.path,
                req.query.as_deref(),
                None,
                Auth::Kolbo(&key),
            )
            .await)
        }
        ("GET", [kind @ ("moodboards" | "visual-dna"), id]) => {
            let (sim, _clock) = start(|c| c).await;
            let key = key_of(&sim);
            let list_key = if *kind == "moodboards" {
                "moodboards"
            } else {
                "visual_dnas"
            };
            let list = send(
                &sim,
                "GET",
                &format!("/api/v1/{kind}"),
                None,
                None,
                Auth::Kolbo(&key),
            )
            .await;
            let list: Value = serde_json::from_slice(&list.body).unwrap();
            let ids: Vec<String> = list[list_key]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            let id = if status == 404 || ids.iter().any(|i| i == id) {
                (*id).to_owned()
            } else {
                ids[0].clone()
            };
            Ok(send(
                &sim,
                "GET",
                &format!("/api/v1/{kind}/{id}"),
                None,
                None,
                Auth::Kolbo(&key),
            )
            .await)
        }
        _ => Err(format!(
            "no simulator route for {} {}",
            req.method, req.path
        )),
    }
}

async fn koala_case(f: &Fixture) -> Result<Served, String> {
    let req = &f.request;
    let status = f.response.status;
    let plain = f.response.body_text.is_some();
    let (sim, clock) = start(|mut c| {
        if plain {
            c.koala.error_body = KoalaErrorBody::PlainText;
        }
        if status == 429 {
            c.koala.generate_per_minute = Some(0);
        }
        c
    })
    .await;
    let key = sim.koala_api_key().to_owned();
    let body = req.body.clone().unwrap_or(json!({"prompt": "cat"}));
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/image-generation/") => {
            let (auth_key, body) = match status {
                401 => ("00000000-0000-4000-a000-000000000000".to_owned(), body),
                400 => (key, json!({"prompt": "cat", "numImages": 9})),
                402 => {
                    sim.set_koala_credits(&key, 0);
                    (key, body)
                }
                403 => {
                    let basic = "11111111-1111-4111-a111-111111111111";
                    sim.add_koala_account(KoalaAccount::new(basic, KoalaPlan::Basic));
                    (
                        basic.to_owned(),
                        json!({"prompt": "cat", "model": "ideogram-3.0"}),
                    )
                }
                200 | 429 => (key, body),
                other => {
                    sim.faults().inject(FaultRule::new(
                        Some(Route::KoalaGenerate),
                        Fault::status(other),
                        Trigger::Nth(1),
                    ));
                    (key, body)
                }
            };
            Ok(send(
                &sim,
                "POST",
                &req.path,
                None,
                Some(&body),
                Auth::Koala(&auth_key),
            )
            .await)
        }
        ("GET", path) if path.starts_with("/api/image/") => {
            if status == 404 {
                return Ok(send(
                    &sim,
                    "GET",
                    "/api/image/v2-zzzzz-zzzzz.jpg",
                    None,
                    None,
                    Auth::Koala(""),
                )
                .await);
            }
            let made = send(
                &sim,
                "POST",
                "/api/image-generation/",
                None,
                Some(&json!({"prompt": "cat"})),
                Auth::Koala(&key),
            )
            .await;
            let made: Value = serde_json::from_slice(&made.body).unwrap();
            let url = made[0]["url"].as_str().unwrap().to_owned();
            clock.advance(Duration::from_secs(300));
            let path = url.strip_prefix(sim.api_origin()).unwrap().to_owned();
            Ok(send(&sim, "GET", &path, None, None, Auth::Koala("")).await)
        }
        _ => Err(format!(
            "no simulator route for {} {}",
            req.method, req.path
        )),
    }
}

/// The JSON types a key takes across every element of every array it appears in.
#[derive(Default, Debug)]
struct Shape {
    types: BTreeSet<&'static str>,
    fields: BTreeMap<String, Shape>,
    items: Option<Box<Shape>>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shape_of(value: &Value, into: &mut Shape) {
    into.types.insert(type_name(value));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                shape_of(v, into.fields.entry(k.clone()).or_default());
            }
        }
        Value::Array(items) => {
            for v in items {
                shape_of(v, into.items.get_or_insert_with(Default::default));
            }
        }
        _ => {}
    }
}

fn conforms(documented: &Shape, served: &Shape, path: &str, errors: &mut Vec<String>) {
    let doc: BTreeSet<_> = documented.types.iter().filter(|t| **t != "null").collect();
    let got: BTreeSet<_> = served.types.iter().filter(|t| **t != "null").collect();
    if !doc.is_empty() && !got.is_subset(&doc) {
        errors.push(format!("{path}: documented as {doc:?}, served as {got:?}"));
        return;
    }
    for (key, shape) in &documented.fields {
        if ALIAS_KEYS.contains(&key.as_str()) {
            continue;
        }
        match served.fields.get(key) {
            Some(s) => conforms(shape, s, &format!("{path}.{key}"), errors),
            None if served.types.contains("object") => {
                errors.push(format!("{path}.{key}: missing"))
            }
            None => {}
        }
    }
    if let (Some(doc_items), Some(got_items)) = (&documented.items, &served.items) {
        conforms(doc_items, got_items, &format!("{path}[]"), errors);
    }
}

fn compare(name: &str, f: &Fixture, served: &Served) -> Vec<String> {
    let mut errors = Vec::new();
    let r = &f.response;
    if served.status != r.status {
        errors.push(format!(
            "status {} where the fixture has {}",
            served.status, r.status
        ));
        return errors.into_iter().map(|e| format!("{name}: {e}")).collect();
    }
    let ct = served.content_type();
    if r.headers.contains_key("retry-after") && !served.headers.contains_key("retry-after") {
        errors.push("no Retry-After header".into());
    }
    if let Some(location) = r.headers.get("location") {
        let origin = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
        match served.headers.get("location").and_then(|v| v.to_str().ok()) {
            Some(got) if origin(got) != origin(location) || !location.starts_with("http") => {}
            other => errors.push(format!(
                "redirect Location {other:?} does not leave the API origin"
            )),
        }
    }
    match (&r.body, &r.body_text) {
        (Some(documented), None) => {
            if !ct.starts_with("application/json") {
                errors.push(format!("content type {ct}, not JSON"));
            }
            match serde_json::from_slice::<Value>(&served.body) {
                Ok(got) => {
                    let (mut d, mut g) = (Shape::default(), Shape::default());
                    shape_of(documented, &mut d);
                    shape_of(&got, &mut g);
                    conforms(&d, &g, "$", &mut errors);
                }
                Err(e) => errors.push(format!("body is not JSON: {e}")),
            }
        }
        (_, Some(_)) => {
            let documented_ct = r
                .headers
                .get("content-type")
                .map(|c| c.to_ascii_lowercase())
                .unwrap_or_default();
            let parses = serde_json::from_slice::<Value>(&served.body).is_ok();
            if documented_ct.contains("html") && !ct.contains("html") {
                errors.push(format!("content type {ct}, not HTML"));
            } else if documented_ct.starts_with("text/plain") && !ct.starts_with("text/plain") {
                errors.push(format!("content type {ct}, not plain text"));
            } else if documented_ct.contains("json") && parses {
                errors.push("the body should be unreadable JSON but parses".into());
            }
        }
        (None, None) => {}
    }
    errors.into_iter().map(|e| format!("{name}: {e}")).collect()
}

async fn check(provider: &str) {
    let all = fixtures(provider);
    if all.is_empty() {
        eprintln!("no fixtures in fixtures/{provider}/ yet: nothing to compare (skipped)");
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, fixture) in &all {
        if let Some((_, why)) = NOT_MODELLED.iter().find(|(n, _)| n == name) {
            eprintln!("{name}: not modelled ({why})");
            continue;
        }
        let served = match provider {
            "kolbo" => kolbo_case(fixture).await,
            _ => koala_case(fixture).await,
        };
        match served {
            Ok(served) => {
                compared += 1;
                failures.extend(compare(name, fixture, &served));
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{provider}: compared {compared} of {} fixtures", all.len());
    assert!(
        failures.is_empty(),
        "the simulator differs from the fixtures:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn kolbo_matches_the_documented_exchanges() {
    check("kolbo").await;
}

#[tokio::test]
async fn koala_matches_the_documented_exchanges() {
    check("koala").await;
}

#[test]
fn shapes_compare_keys_and_types() {
    let mut doc = Shape::default();
    shape_of(
        &json!({"a": 1, "b": [{"c": "x"}, {"c": null, "d": true}], "e": null}),
        &mut doc,
    );
    let mut ok = Shape::default();
    shape_of(
        &json!({"a": 2.5, "b": [{"c": "y", "d": false, "extra": 1}], "e": [1], "more": {}}),
        &mut ok,
    );
    let mut errors = Vec::new();
    conforms(&doc, &ok, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = Shape::default();
    shape_of(&json!({"a": "1", "b": [{"d": true}]}), &mut bad);
    conforms(&doc, &bad, "$", &mut errors);
    assert_eq!(
        errors,
        [
            "$.a: documented as {\"number\"}, served as {\"string\"}",
            "$.b[].c: missing",
            "$.e: missing"
        ]
    );
}
