//! `generate_image`'s `notifications/progress`, heard by the official Rust SDK's client:
//! over the stdio transport (the server of `imagegen mcp`, on an in-process pipe) a call
//! with a `progressToken` gets rising progress ending at the total, and a call without
//! one gets none; over the gateway's stateless `/mcp` the same call is answered as an
//! event stream carrying them, and a call without a token is still answered as JSON.
//!
//! The client runs each notification's handler on a task of its own: the tests run on
//! a current-thread runtime, where those tasks run in the order they were spawned, so
//! the order heard is the order sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use imagegen::Client;
use imagegen::sim::{ImageSize, SimConfig};
use imagegen_server::mcp::ImagegenMcp;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

/// A client that keeps every progress notification it hears.
struct Heard(mpsc::UnboundedSender<ProgressNotificationParam>);

impl ClientHandler for Heard {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params);
    }
}

type Agent = RunningService<RoleClient, Heard>;

/// A simulator slow enough for Kolbo to report its progress while a job runs (a
/// z-image/turbo image in about half a second), with small images.
fn sim() -> SimConfig {
    SimConfig::default()
        .with_speed(0.1)
        .with_image_size(ImageSize::MaxSide(64))
}

/// `generate_image` with `arguments`: the SDK's client gives the call a progress token.
async fn generate(agent: &Agent, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let params = CallToolRequestParams::new("generate_image").with_arguments(arguments);
    agent.call_tool(params).await.unwrap()
}

/// Every notification heard until one reaches its total (the call's last).
async fn until_total(
    heard: &mut mpsc::UnboundedReceiver<ProgressNotificationParam>,
) -> Vec<ProgressNotificationParam> {
    let mut all = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .expect("no notification reached the total")
            .expect("the client stopped");
        let last = Some(next.progress) == next.total;
        all.push(next);
        if last {
            return all;
        }
    }
}

/// `notes` are one call's: all for one token, at least two, progress rising to the
/// total, with the steps of a generation in words.
fn assert_rising(notes: &[ProgressNotificationParam]) {
    let messages: Vec<&str> = notes
        .iter()
        .map(|n| n.message.as_deref().unwrap_or(""))
        .collect();
    assert!(notes.len() >= 2, "{messages:?}");
    let token = &notes[0].progress_token;
    assert!(
        notes.iter().all(|n| &n.progress_token == token),
        "{notes:?}"
    );
    assert!(
        notes.windows(2).all(|w| w[0].progress < w[1].progress),
        "progress never goes back: {:?}",
        notes.iter().map(|n| n.progress).collect::<Vec<_>>()
    );
    let last = notes.last().unwrap();
    assert_eq!(last.total, Some(100.0));
    assert!(notes.iter().all(|n| n.total == Some(100.0)));
    assert_eq!(last.progress, 100.0);
    assert_eq!(last.message.as_deref(), Some("done"));
    assert!(
        messages.contains(&"submitted to kolbo/z-image/turbo"),
        "{messages:?}"
    );
    assert!(messages.contains(&"saved 1 of 1"), "{messages:?}");
}

/// `server` on a pipe: `imagegen mcp`'s transport (JSON-RPC lines on a reader and a
/// writer), on this end instead of the process's stdin and stdout. The client's end.
fn serve_on_a_pipe(server: ImagegenMcp) -> tokio::io::DuplexStream {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let running = server.serve(tokio::io::split(server_end)).await.unwrap();
        let _ = running.waiting().await;
    });
    client_end
}

/// A client speaking the protocol's lines by hand (the SDK's client gives every request
/// a progress token of its own, so a call without one needs this).
struct Lines {
    read: tokio::io::Lines<BufReader<ReadHalf<tokio::io::DuplexStream>>>,
    write: WriteHalf<tokio::io::DuplexStream>,
}

impl Lines {
    async fn connect(pipe: tokio::io::DuplexStream) -> Self {
        let (read, write) = tokio::io::split(pipe);
        let mut lines = Self {
            read: BufReader::new(read).lines(),
            write,
        };
        let hello = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "lines", "version": "0"},
        });
        lines.request(1, "initialize", hello).await;
        lines
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        lines
    }

    async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.write.write_all(&line).await.unwrap();
    }

    /// Sends request `id` and returns every message up to its answer, that included.
    async fn request(&mut self, id: u64, method: &str, params: Value) -> Vec<Value> {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&request).await;
        let mut heard = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.read.next_line())
                .await
                .expect("no answer")
                .unwrap()
                .expect("the server closed its end");
            let message: Value = serde_json::from_str(&line).unwrap();
            let answered = message["id"] == id;
            heard.push(message);
            if answered {
                return heard;
            }
        }
    }
}

#[tokio::test]
async fn progress_over_stdio_only_with_a_token() {
    let client = Client::simulated_builder(sim())
        .await
        .unwrap()
        .kolbo_pacing(false)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = imagegen::ledger::open(&dir.path().join("ledger.sqlite3").display().to_string())
        .await
        .unwrap();
    let server = ImagegenMcp::new(client.clone(), Arc::clone(&ledger), dir.path().join("out"));
    let (slow_client, slow_ledger) = (client, ledger);

    // The SDK's client: its call carries a token, and hears rising progress.
    let (tx, mut heard) = mpsc::unbounded_channel();
    let agent = Heard(tx)
        .serve(tokio::io::split(serve_on_a_pipe(server.clone())))
        .await
        .unwrap();
    let made = generate(
        &agent,
        json!({"prompt": "a red fox", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    assert_ne!(made.is_error, Some(true), "{made:?}");
    assert_eq!(made.structured_content.as_ref().unwrap()["status"], "done");
    // Written before the answer; heard on the client's tasks, so maybe just after it.
    let notes = until_total(&mut heard).await;
    assert_rising(&notes);
    assert!(heard.try_recv().is_err(), "nothing after the total");
    agent.cancel().await.unwrap();

    // By hand, on the wire: no token, no notification; with one, they come first.
    let mut lines = Lines::connect(serve_on_a_pipe(server)).await;
    let call = |meta: Value| {
        json!({
            "name": "generate_image",
            "arguments": {"prompt": "a grey fox", "model": "kolbo/z-image/turbo"},
            "_meta": meta,
        })
    };
    let quiet = lines.request(2, "tools/call", call(json!({}))).await;
    assert_eq!(quiet.len(), 1, "the answer alone: {quiet:?}");
    assert_eq!(
        quiet[0]["result"]["structuredContent"]["status"], "done",
        "{quiet:?}"
    );
    let told = lines
        .request(3, "tools/call", call(json!({"progressToken": "fox-3"})))
        .await;
    let (answer, notes) = told.split_last().unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "done",
        "{answer}"
    );
    assert!(notes.len() >= 2, "{told:?}");
    assert!(
        notes.iter().all(|n| n["method"] == "notifications/progress"
            && n["params"]["progressToken"] == "fox-3"
            && n["params"]["total"] == 100.0),
        "{notes:?}"
    );
    let progress: Vec<f64> = notes
        .iter()
        .map(|n| n["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0));

    // Answered `pending` past the wait limit: short of the total, and silent after it
    // while the job runs on (get_generation waits for its end, hearing nothing more).
    let hasty = ImagegenMcp::new(slow_client, slow_ledger, dir.path().join("out"))
        .with_wait_limit(Duration::from_millis(50));
    let mut lines = Lines::connect(serve_on_a_pipe(hasty)).await;
    let told = lines
        .request(2, "tools/call", call(json!({"progressToken": "heron"})))
        .await;
    let (answer, notes) = told.split_last().unwrap();
    let out = &answer["result"]["structuredContent"];
    assert_eq!(out["status"], "pending", "{answer}");
    assert!(!notes.is_empty(), "{told:?}");
    assert!(
        notes
            .iter()
            .all(|n| n["params"]["progress"].as_f64().unwrap() < 100.0),
        "{notes:?}"
    );
    let job_id = out["jobs"][0]["job_id"].clone();
    // Each fetch waits up to the wait limit: until the job ends, hearing nothing more.
    for id in 3.. {
        assert!(id < 1000, "the job never finished");
        let arguments = json!({"name": "get_generation", "arguments": {"job_id": job_id}});
        let fetched = lines.request(id, "tools/call", arguments).await;
        assert_eq!(
            fetched.len(),
            1,
            "no notification after the answer: {fetched:?}"
        );
        if fetched[0]["result"]["structuredContent"]["status"] == "done" {
            break;
        }
    }
}

/// Over `/mcp` (stateless, JSON answers) the SDK answers a call that sends progress as
/// an event stream instead, so the notifications arrive; a call without a token is
/// still a plain JSON answer.
#[tokio::test]
async fn progress_over_stateless_http_arrives_as_an_event_stream() {
    let gateway = common::start_with(sim(), |config| config).await;
    let url = gateway.server.url();
    let (tx, mut heard) = mpsc::unbounded_channel();
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp"));
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let agent = Heard(tx).serve(transport).await.unwrap();
    let made = generate(
        &agent,
        json!({"prompt": "a red fox", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    assert_ne!(made.is_error, Some(true), "{made:?}");
    assert_eq!(made.structured_content.as_ref().unwrap()["status"], "done");
    assert_rising(&until_total(&mut heard).await);
    agent.cancel().await.unwrap();

    // The same call by hand, with and without a token: the answer's media type.
    let post = |meta: Value| {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {
                "name": "generate_image",
                "arguments": {"prompt": "a grey fox", "model": "kolbo/z-image/turbo"},
                "_meta": meta,
            },
        });
        gateway
            .http
            .post(format!("{url}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
    };
    let plain = post(json!({})).await.unwrap();
    assert_eq!(plain.status(), 200);
    let media = plain.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(media.starts_with("application/json"), "{media}");
    let answer: Value = plain.json().await.unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "done",
        "{answer}"
    );

    let streamed = post(json!({"progressToken": 42})).await.unwrap();
    assert_eq!(streamed.status(), 200);
    let media = streamed.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(media.starts_with("text/event-stream"), "{media}");
    let text = streamed.text().await.unwrap();
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let (notes, rest): (Vec<&Value>, Vec<&Value>) = messages
        .iter()
        .partition(|m| m["method"] == "notifications/progress");
    assert!(notes.len() >= 2, "{text}");
    assert!(notes.iter().all(|n| n["params"]["progressToken"] == 42));
    assert_eq!(notes.last().unwrap()["params"]["progress"], 100.0);
    assert_eq!(rest.len(), 1, "then the answer alone: {text}");
    assert_eq!(rest[0]["result"]["structuredContent"]["status"], "done");
    gateway.server.shutdown().await.unwrap();
}
