//! The gateway's MCP server at `/mcp`, driven by the official Rust SDK's client over
//! Streamable HTTP: its tools, an estimate, a generation (images inline, credits as
//! charged), a budget refusal as a tool error, a fetch by job id that pays nothing
//! again, and the API's keys in front of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imagegen::Credits;
use imagegen::sim::Route;
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, NewApiKey};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use common::start;

type Client = RunningService<rmcp::RoleClient, ()>;

async fn connect(url: &str, key: Option<&str>) -> Result<Client, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp"));
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    ().serve(transport).await.map_err(|e| e.to_string())
}

async fn call(client: &Client, tool: &'static str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
        .await
        .unwrap()
}

fn images(result: &CallToolResult) -> usize {
    result
        .content
        .iter()
        .filter(|c| matches!(c, ContentBlock::Image(_)))
        .count()
}

fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

fn posts(gateway: &common::Gateway) -> usize {
    gateway.sim().request_log().count(Route::KolboGenerate)
        + gateway.sim().request_log().count(Route::KoalaGenerate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_over_http_with_keys_and_budgets() {
    let gateway = start().await;
    let url = gateway.server.url();

    // No key in the ledger: this machine without one.
    let local = connect(&url, None).await.unwrap();
    let mut names: Vec<String> = local
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "estimate_cost",
            "generate_image",
            "get_generation",
            "list_history",
            "list_models"
        ]
    );
    let models = call(&local, "list_models", json!({"provider": "kolbo"})).await;
    assert_ne!(models.is_error, Some(true));
    assert!(
        structured(&models)["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["provider"] == "kolbo")
    );
    local.cancel().await.unwrap();

    // A key with 1 credit: keys are required from now on.
    let key = ApiKey::generate().unwrap();
    let new = NewApiKey::new("agent", &key).with_limit(Credits::whole(1));
    gateway.server.ledger().create_api_key(&new).await.unwrap();
    let secret = key.secret().expose_secret().to_owned();
    assert!(connect(&url, None).await.is_err(), "no key, no MCP");
    assert!(
        connect(&url, Some("igk_0000000000000000000000000000000000000000"))
            .await
            .is_err()
    );
    let agent = connect(&url, Some(&secret)).await.unwrap();

    // An estimate spends nothing.
    let estimate = call(
        &agent,
        "estimate_cost",
        json!({"prompt": "a fox", "count": 2, "model": "kolbo/z-image/turbo"}),
    )
    .await;
    let plans = &structured(&estimate)["plans"];
    assert_eq!(plans[0]["model"], "kolbo/z-image/turbo", "{estimate:?}");
    assert_eq!(plans[0]["credits"], 1.0);
    assert_eq!(structured(&estimate)["budget"]["remaining_credits"], 1.0);
    assert_eq!(posts(&gateway), 0);

    // A generation: the image inline, its URL on the gateway, the simulator's charge.
    let made = call(
        &agent,
        "generate_image",
        json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    assert_ne!(made.is_error, Some(true), "{made:?}");
    assert_eq!(images(&made), 1);
    let out = structured(&made);
    assert_eq!(out["status"], "done");
    let image = &out["images"][0];
    assert!(
        image["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{url}/v1/files/")),
        "{image}"
    );
    assert_eq!(image["provider"], "kolbo");
    assert_eq!(image["model"], "z-image/turbo");
    assert_eq!(image["credits"], 0.5);
    assert_eq!(out["credits"], 0.5);
    let job_id = image["job_id"].as_str().unwrap().to_owned();
    let job = gateway
        .server
        .ledger()
        .job(&"kolbo".into(), &job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.charged,
        Some(Credits::from_micros(500_000)),
        "the simulator's charge"
    );
    assert_eq!(job.api_key, Some(new_key_id(&gateway, "agent").await));
    let file = gateway
        .http
        .get(image["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(common::is_png_or_jpeg(&file.bytes().await.unwrap()));
    assert_eq!(posts(&gateway), 1);

    // Over what is left: a tool error saying what is left and what it needs.
    let refused = call(
        &agent,
        "generate_image",
        json!({"prompt": "a fox", "count": 2, "model": "kolbo/flux-2/flash"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    let out = structured(&refused);
    assert_eq!(out["error"], "budget_exceeded", "{out}");
    assert_eq!(out["remaining_credits"], 0.5);
    assert_eq!(out["needed_credits"], 3.0);
    assert_eq!(posts(&gateway), 1, "nothing sent");

    // Fetched again by its job id: from the ledger, nothing submitted.
    let fetched = call(&agent, "get_generation", json!({"job_id": job_id})).await;
    assert_eq!(structured(&fetched)["status"], "done", "{fetched:?}");
    assert_eq!(structured(&fetched)["images"][0]["url"], image["url"]);
    assert_eq!(images(&fetched), 1);
    let history = call(&agent, "list_history", json!({"search": "fox"})).await;
    assert_eq!(structured(&history)["images"][0]["job_id"], job_id.as_str());
    assert_eq!(posts(&gateway), 1);
    agent.cancel().await.unwrap();
    gateway.server.shutdown().await.unwrap();
}

async fn new_key_id(gateway: &common::Gateway, name: &str) -> imagegen_ledger::ApiKeyId {
    gateway
        .server
        .ledger()
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == name)
        .unwrap()
        .id
}

/// Over HTTP too, a wait past the gateway's MCP wait limit is `pending` with the paid
/// job id, and `get_generation` later returns its images with nothing submitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_past_the_limit_is_pending_then_fetched() {
    let gateway = common::start_with(common::sim().with_speed(0.5), |config| {
        config.with_mcp_wait_limit(std::time::Duration::from_millis(200))
    })
    .await;
    let url = gateway.server.url();
    let agent = connect(&url, None).await.unwrap();
    let started = call(
        &agent,
        "generate_image",
        json!({"prompt": "a slow heron", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    assert_ne!(started.is_error, Some(true), "{started:?}");
    let out = structured(&started).clone();
    assert_eq!(out["status"], "pending", "{out}");
    let job_id = out["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let generation_id = out["generation_id"].as_str().expect("names its generation");
    let generation_url = format!("{url}/v1/generations/{generation_id}");
    assert_eq!(posts(&gateway), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let fetched = call(&agent, "get_generation", json!({"job_id": job_id})).await;
        let out = structured(&fetched).clone();
        if out["status"] == "done" {
            assert_eq!(images(&fetched), 1, "{out}");
            break;
        }
        assert_eq!(out["status"], "pending", "{out}");
        assert!(
            std::time::Instant::now() < deadline,
            "never finished: {out}"
        );
    }
    assert_eq!(posts(&gateway), 1, "fetched, never submitted again");
    // The generation the pending answer named reads back through the API, closed with
    // the tool's answer once the run ends.
    loop {
        let read: Value = reqwest::get(&generation_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if read["status"] == "succeeded" {
            assert_eq!(read["response"]["jobs"][0]["job_id"], job_id.as_str());
            assert_eq!(read["response"]["generation_id"], generation_id);
            break;
        }
        assert_eq!(read["status"], "running", "{read}");
        assert!(std::time::Instant::now() < deadline, "never closed: {read}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    agent.cancel().await.unwrap();
    gateway.server.shutdown().await.unwrap();
}
