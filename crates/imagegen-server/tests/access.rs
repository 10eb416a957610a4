//! Who may call the gateway, and what they may spend: gateway keys from the ledger, each
//! drawing on its own budget; without keys, this machine only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{error_of, json, sim, start, start_with};
use imagegen::Credits;
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, NewApiKey};
use imagegen_server::{ServerConfig, ServerError, serve};
use serde_json::json;

/// The cheapest model at 1024x1024: half a credit an image.
fn cheap() -> serde_json::Value {
    json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_required_once_the_ledger_has_one_and_its_budget_holds() {
    let gateway = start().await;
    assert!(!gateway.server.requires_keys());
    // A key made while the gateway runs: keys are required from then on.
    let key = ApiKey::generate().unwrap();
    let new = NewApiKey::new("ci-bot", &key).with_limit(Credits::whole(1));
    gateway.server.ledger().create_api_key(&new).await.unwrap();
    let secret = key.secret().expose_secret().to_owned();

    let post = |token: Option<&str>| {
        let mut request = gateway
            .http
            .post(gateway.url("/v1/images/generations"))
            .json(&cheap());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let (status, body, _) = error_of(post(None).await.unwrap()).await;
    assert_eq!(status, 401, "{body}");
    assert!(gateway.server.requires_keys());
    let (status, body, _) = error_of(post(Some("sk-placeholder")).await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let unknown = "igk_0123456789abcdef0123456789abcdef01234567";
    let (status, body, _) = error_of(post(Some(unknown)).await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(
        !body.to_string().contains(&unknown[12..]),
        "a key is never echoed"
    );

    // Two images at half a credit each fit the key's one credit; a third does not.
    for _ in 0..2 {
        let response = post(Some(&secret)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-imagegen-credits"], "0.5");
    }
    let response = post(Some(&secret)).await.unwrap();
    let (status, body, retry) = error_of(response).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(retry.as_deref(), Some("false"));
    assert_eq!(
        gateway
            .sim()
            .request_log()
            .count(imagegen::sim::Route::KolboGenerate),
        2,
        "the refused request sent nothing"
    );
    let keys = gateway.server.ledger().list_api_keys().await.unwrap();
    assert_eq!(
        (keys[0].spent, keys[0].reserved),
        (Credits::whole(1), Credits::ZERO)
    );

    // Models need the key too; files do not (their names are unguessable).
    let models = gateway
        .http
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_key_draw_on_the_local_budget() {
    let gateway = start_with(sim(), |config| config.with_local_budget("gateway")).await;
    gateway
        .server
        .ledger()
        .set_budget("gateway", Some(Credits::from_micros(500_000)))
        .await
        .unwrap();
    let first = gateway.generate(&cheap()).await;
    assert_eq!(first.status(), 200);
    let (status, body, retry) = error_of(gateway.generate(&cheap()).await).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(retry.as_deref(), Some("false"));
    let budget = gateway
        .server
        .ledger()
        .budget("gateway")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(budget.remaining, Some(Credits::ZERO));
    assert_eq!(budget.reserved, Credits::ZERO);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_it_serves_this_machine_only() {
    let gateway = start().await;
    let response = gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .header("host", "evil.example")
        .json(&cheap())
        .send()
        .await
        .unwrap();
    let (status, body, _) = error_of(response).await;
    assert_eq!(status, 403, "{body}");
    let ok = gateway
        .http
        .get(gateway.url("/v1/models"))
        .header(
            "host",
            format!("localhost:{}", gateway.server.local_addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    gateway.server.shutdown().await.unwrap();

    // Off loopback it does not start at all.
    let client = imagegen::Client::simulated_builder(sim())
        .await
        .unwrap()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refused = serve(
        ServerConfig::with_client(client)
            .listen("0.0.0.0:0".parse().unwrap())
            .with_ledger_url(dir.path().join("l.sqlite3").display().to_string())
            .with_image_dir(dir.path().join("images")),
    )
    .await;
    assert!(
        matches!(refused, Err(ServerError::NoKeysOffLoopback { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_urls_follow_the_host_or_the_public_url() {
    let public: url::Url = "https://images.example.org/gw".parse().unwrap();
    let gateway = start_with(sim(), |config| config.with_public_url(public)).await;
    let body = json(gateway.generate(&cheap()).await).await;
    let url = body["data"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://images.example.org/gw/v1/files/"),
        "{url}"
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_never_shows_a_secret() {
    let client = imagegen::Client::simulated_builder(sim())
        .await
        .unwrap()
        .build()
        .unwrap();
    let kolbo_key = client.simulator().unwrap().kolbo_api_key().to_owned();
    let config = ServerConfig::with_client(client)
        .with_ledger_url("postgres://imagegen:hunter2@db.example/ledger")
        .with_public_url(
            "https://user:swordfish@images.example.org/"
                .parse()
                .unwrap(),
        );
    let shown = format!("{config:?}");
    for secret in ["hunter2", "swordfish", kolbo_key.as_str()] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // And `serve` refuses a public URL with credentials (before opening anything),
    // without repeating them.
    let dir = tempfile::tempdir().unwrap();
    let refused = serve(config.with_ledger_url(dir.path().join("l.sqlite3").display().to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ServerError::PublicUrl { .. }),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains("swordfish"), "{refused}");
    assert!(!dir.path().join("l.sqlite3").exists());
}
