//! `imagegen mcp` driven by the official Rust SDK's client over stdio: its tools, an
//! estimate, a generation (images inline, credits as the simulator charged), a budget
//! refusal as a tool error, and a wait past `--wait-limit` finished by `get_generation`
//! (in the same server, and in a new one on the same ledger) with no second submission.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use imagegen::sim::{ImageSize, SimConfig};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use common::{Sim, VARS, bare_cmd, run};

type Client = RunningService<rmcp::RoleClient, ()>;

/// `imagegen mcp ARGS` in `dir`, pointed at `sim`, as an MCP client's child process.
async fn spawn(sim: &Sim, dir: &Path, args: &[&str]) -> Client {
    let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("imagegen"));
    cmd.current_dir(dir).env("NO_COLOR", "1");
    for var in VARS {
        cmd.env_remove(var);
    }
    cmd.env("XDG_DATA_HOME", common::data_home(dir))
        .env("KOLBO_API_KEY", sim.sim().kolbo_api_key())
        .env("KOALA_API_KEY", sim.sim().koala_api_key())
        .env("KOLBO_BASE_URL", sim.sim().kolbo_base_url())
        .env("KOALA_BASE_URL", sim.sim().koala_base_url())
        .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
        .arg("mcp")
        .args(args);
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport).await.unwrap()
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

fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content: {result:?}"))
}

/// The ledger at `db`, opened beside the server (SQLite in WAL mode takes both).
async fn ledger(db: &str) -> std::sync::Arc<dyn imagegen::ledger::Ledger> {
    imagegen::ledger::open(db).await.unwrap()
}

fn inline_images(result: &CallToolResult) -> usize {
    result
        .content
        .iter()
        .filter(|c| matches!(c, ContentBlock::Image(_)))
        .count()
}

/// A runtime for one test's client (the simulator runs on its own).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn tools_estimate_generate_and_a_budget_refusal() {
    let sim = Sim::instant();
    runtime().block_on(estimate_generate_refuse(&sim));
}

async fn estimate_generate_refuse(sim: &Sim) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.sqlite3").display().to_string();
    let client = spawn(
        sim,
        dir.path(),
        &["--db", &db, "--out", "out", "--budget", "1"],
    )
    .await;

    let mut names: Vec<String> = client
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

    let estimate = call(
        &client,
        "estimate_cost",
        json!({"prompt": "a fox", "aspect": "16:9", "count": 2}),
    )
    .await;
    let out = structured(&estimate);
    assert_eq!(out["plans"][0]["model"], "kolbo/z-image/turbo", "{out}");
    assert_eq!(out["plans"][0]["credits"], 1.0);
    assert!(
        out["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["reason"].is_string())
    );
    assert_eq!(out["budget"]["remaining_credits"], 1.0);
    assert_eq!(sim.posts(), 0, "an estimate sends nothing");

    let made = call(
        &client,
        "generate_image",
        json!({"prompt": "a fox", "provider": "kolbo", "model": "z-image/turbo"}),
    )
    .await;
    assert_ne!(made.is_error, Some(true), "{made:?}");
    assert_eq!(inline_images(&made), 1);
    let out = structured(&made);
    assert_eq!(out["status"], "done");
    let image = &out["images"][0];
    let path = Path::new(image["path"].as_str().unwrap());
    assert!(path.is_absolute(), "{path:?}");
    assert!(path.exists());
    assert_eq!(
        (image["provider"].as_str(), image["model"].as_str()),
        (Some("kolbo"), Some("z-image/turbo"))
    );
    assert_eq!(image["credits"], 0.5);
    let history = ledger(&db)
        .await
        .history(&imagegen::ledger::HistoryQuery::newest(10))
        .await
        .unwrap();
    assert_eq!(
        history[0].charged,
        Some(imagegen::Credits::from_micros(500_000)),
        "the simulator's charge, recorded"
    );
    assert_eq!(sim.posts(), 1);

    let refused = call(
        &client,
        "generate_image",
        json!({"prompt": "a fox", "count": 2, "model": "kolbo/flux-2/flash"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    let out = structured(&refused);
    assert_eq!(out["error"], "budget_exceeded");
    assert_eq!(out["remaining_credits"], 0.5);
    assert_eq!(out["needed_credits"], 3.0);
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("0.5 credits left"),
        "{out}"
    );
    assert_eq!(sim.posts(), 1, "a refusal sends nothing");
    client.cancel().await.unwrap();
}

#[test]
fn a_wait_past_the_limit_is_fetched_later_never_paid_twice() {
    let sim = Sim::start(
        SimConfig::default()
            .with_speed(1.0)
            .with_image_size(ImageSize::MaxSide(64)),
    );
    runtime().block_on(wait_then_fetch(&sim));
}

async fn wait_then_fetch(sim: &Sim) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.sqlite3").display().to_string();
    let client = spawn(
        sim,
        dir.path(),
        &["--db", &db, "--out", "out", "--wait-limit", "0.2"],
    )
    .await;
    let started = call(
        &client,
        "generate_image",
        json!({"prompt": "a slow heron", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    assert_ne!(
        started.is_error,
        Some(true),
        "not an error an agent would retry: {started:?}"
    );
    let out = structured(&started).clone();
    assert_eq!(out["status"], "pending", "{out}");
    assert!(out["message"].as_str().unwrap().contains("get_generation"));
    let job_id = out["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(out["jobs"][0]["provider"], "kolbo");
    assert_eq!(sim.posts(), 1);
    // The job is in the ledger before anything is waited on.
    let open = ledger(&db).await.open_jobs().await.unwrap();
    assert!(open.iter().any(|j| j.job_id == job_id), "{open:?}");

    // Asked at once, in the same server: it joins the wait, still pending.
    let again = call(&client, "get_generation", json!({"job_id": job_id})).await;
    assert_eq!(structured(&again)["status"], "pending", "{again:?}");
    // The server stops with the job open; a new one on the same ledger finishes it.
    client.cancel().await.unwrap();
    let client = spawn(
        sim,
        dir.path(),
        &["--db", &db, "--out", "out", "--wait-limit", "30"],
    )
    .await;
    let fetched = call(
        &client,
        "get_generation",
        json!({"job_id": format!("kolbo:{job_id}")}),
    )
    .await;
    let out = structured(&fetched);
    assert_eq!(out["status"], "done", "{out}");
    assert_eq!(inline_images(&fetched), 1);
    assert_eq!(out["images"][0]["job_id"], job_id.as_str());
    assert_eq!(out["credits"], 0.5);
    assert!(Path::new(out["images"][0]["path"].as_str().unwrap()).exists());
    assert_eq!(sim.posts(), 1, "finished by waiting, never submitted again");
    let history = call(&client, "list_history", json!({"search": "heron"})).await;
    assert_eq!(
        structured(&history)["generations"][0]["state"],
        "done",
        "{history:?}"
    );
    client.cancel().await.unwrap();
}

#[test]
fn stdout_is_the_protocol_alone_and_the_simulator_is_said_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // stdin at its end at once: the server starts, says where it is, and stops.
    let out = run(bare_cmd(dir.path()).arg("mcp").write_stdin(""));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("built-in simulator"), "{}", out.stderr);
    assert!(
        out.stderr.contains("MCP server on stdin/stdout"),
        "{}",
        out.stderr
    );
}
