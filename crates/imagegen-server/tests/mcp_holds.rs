//! MCP `generate_image` on the gateway holds a key's budget like an API request: leased
//! to the gateway and naming the call's generation, recorded with its request key
//! before anything is sent. A gateway killed mid-call leaves a hold another gateway
//! resolves from what was sent (settled in full when the submission went out and no job
//! was recorded; settled at the job's charge once the job, taken over, finished); a call
//! that ends settles its hold and closes its generation.
//!
//! The killed gateway ("A") runs on a tokio runtime of its own, shut down without a
//! graceful stop: its tasks vanish mid-call as with `kill -9` (nothing settles, nothing
//! releases its leases). Time is two manual clocks, so nothing waits for real time to
//! pass: the gateways and their ledger handles share one (`clock`), so a killed
//! gateway's lease runs out when the test advances it, and another gateway's keeper
//! (sleeping a third of a lease on it) runs a round when the test advances it; the
//! simulator beside them, on the test's runtime, runs on the other (`sim_clock`), so a
//! job runs until the test ends it.
//! Each runs on SQLite and on PostgreSQL (a throwaway server, as the ledger's own tests
//! start it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use imagegen::core::{Clock, ManualClock, SharedClock, unix_millis};
use imagegen::sim::{Fault, FaultRule, Route, SimHandle};
use imagegen::{Client, ClientConfig, Credits};
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, KeyPeriod, NewApiKey};
use imagegen_ledger::{Backend, HoldOutcome, Lease, Ledger, LedgerOptions};
use imagegen_server::{RunningServer, ServerConfig, serve};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

type McpClient = RunningService<rmcp::RoleClient, ()>;

/// The lease of both gateways, on [`World::clock`]: it runs out when the test says.
const LEASE: Duration = Duration::from_secs(30);

/// A ledger with a key of 100 credits, and a simulator whose jobs run until the test
/// advances its clock.
struct World {
    ledger_url: String,
    /// The test's own handle on the ledger, on `clock`.
    ledger: Arc<dyn Ledger>,
    /// The time of the gateways and of every handle on the ledger: leases, holds and
    /// the keepers' rounds.
    clock: ManualClock,
    sim: SimHandle,
    /// The simulator's time: its jobs finish when the test advances it.
    sim_clock: ManualClock,
    /// The gateway key.
    key: String,
    /// Its budget.
    budget: String,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ledger_url, pg_name) = common::ledger_url(backend, dir.path()).await;
        let clock = ManualClock::manual();
        let ledger = open_ledger(ledger_url.clone(), clock.shared()).await;
        let key = ApiKey::generate().unwrap();
        let new = NewApiKey::new("agent", &key)
            .with_limit(Credits::whole(100))
            .with_period(KeyPeriod::Total);
        let record = ledger.create_api_key(&new).await.unwrap();
        let budget = ledger
            .ensure_key_budget(&record, unix_millis(clock.wall_time()))
            .await
            .unwrap()
            .unwrap();
        let sim_clock = ManualClock::manual();
        let sim =
            imagegen::sim::start(common::sim().with_speed(1.0).with_clock(sim_clock.shared()))
                .await
                .unwrap();
        Self {
            ledger_url,
            ledger,
            clock,
            sim,
            sim_clock,
            key: key.secret().expose_secret().to_owned(),
            budget,
            dir,
            pg_name,
        }
    }

    /// A client of the simulator.
    fn client(&self) -> Client {
        let mut config = ClientConfig::default();
        config.kolbo_api_key = Some(self.sim.kolbo_api_key().to_owned().into());
        config.koala_api_key = Some(self.sim.koala_api_key().to_owned().into());
        config.kolbo_base_url = Some(self.sim.kolbo_base_url().parse().unwrap());
        config.koala_base_url = Some(self.sim.koala_base_url().parse().unwrap());
        config.poll_interval = Some(Duration::from_millis(50));
        Client::builder()
            .config(config)
            .kolbo_pacing(false)
            .build()
            .unwrap()
    }

    /// A gateway on this world's clock, images in `images`, still without its ledger
    /// (see [`open_ledger`]).
    fn config(&self, images: &str) -> ServerConfig {
        ServerConfig::with_client(self.client())
            .listen("127.0.0.1:0".parse().unwrap())
            .with_image_dir(self.dir.path().join(images))
            .with_job_lease(LEASE)
            .with_clock(self.clock.shared())
    }

    /// A live gateway ("B") on this world's ledger, images in `images`, on the current
    /// runtime, with a handle of its own on the ledger. Its MCP calls wait for their
    /// images (up to 20 s of real time, ending as soon as they are there).
    async fn serve(&self, images: &str) -> RunningServer {
        let ledger = open_ledger(self.ledger_url.clone(), self.clock.shared()).await;
        let config = self
            .config(images)
            .with_mcp_wait_limit(Duration::from_secs(20));
        serve(config.with_ledger(ledger)).await.unwrap()
    }

    /// A gateway to be killed ("A"), images in `images`, on a runtime of its own with a
    /// handle of its own on the ledger. Its MCP calls answer `pending` after 200 ms (of
    /// real time) while their job runs.
    async fn doomed(&self, images: &str) -> Doomed {
        Doomed::start(
            self.config(images)
                .with_mcp_wait_limit(Duration::from_millis(200)),
            self.ledger_url.clone(),
            self.clock.shared(),
        )
        .await
    }

    /// Milliseconds since the Unix epoch on [`World::clock`].
    fn now_ms(&self) -> u64 {
        unix_millis(self.clock.wall_time())
    }

    /// Generation `id`, which is in the ledger.
    async fn generation(&self, id: &str) -> imagegen_ledger::GenerationRecord {
        self.ledger.generation(id).await.unwrap().unwrap()
    }

    /// `(reserved, spent)` of the key's budget.
    async fn budget(&self) -> (Credits, Credits) {
        let status = self.ledger.budget(&self.budget).await.unwrap().unwrap();
        (status.reserved, status.spent)
    }

    /// No hold is left for another gateway to resolve.
    async fn assert_no_hold_left(&self) {
        let lease = Lease::new("gw-test", self.now_ms() + 60_000);
        let left = self.ledger.resolve_expired_holds(&lease, 16).await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    fn submissions(&self) -> usize {
        self.sim.request_log().count(Route::KolboGenerate)
            + self.sim.request_log().count(Route::KoalaGenerate)
    }

    async fn finish(self) {
        if let Some(name) = &self.pg_name {
            imagegen_ledger::testing::drop_database(name).await;
        }
    }
}

/// The ledger at `url`, stamping rows and judging leases by `clock`.
async fn open_ledger(url: String, clock: SharedClock) -> Arc<dyn Ledger> {
    let options = LedgerOptions::default().with_clock(clock);
    imagegen_ledger::open_with(&url, &options).await.unwrap()
}

/// A gateway on a runtime of its own, to be killed.
struct Doomed {
    runtime: tokio::runtime::Runtime,
    url: String,
    instance: String,
}

impl Doomed {
    /// A gateway with `config`, on the ledger at `ledger_url` (opened on its runtime, so
    /// the handle dies with it) judging time by `clock`.
    async fn start(config: ServerConfig, ledger_url: String, clock: SharedClock) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (started, up) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let ledger = open_ledger(ledger_url, clock).await;
            let server = serve(config.with_ledger(ledger)).await.unwrap();
            let _ = started.send((server.url(), server.instance().to_owned()));
            // Runs until its runtime is shut down: never stopped gracefully.
            std::future::pending::<()>().await;
            drop(server);
        });
        let (url, instance) = up.await.unwrap();
        Self {
            runtime,
            url,
            instance,
        }
    }

    /// `kill -9`: every task of the gateway stops where it is.
    fn kill(self) {
        self.runtime.shutdown_background();
    }
}

async fn connect(url: &str, key: &str) -> McpClient {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp")).auth_header(key);
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    ().serve(transport).await.unwrap()
}

async fn generate(client: &McpClient, arguments: Value) -> Result<CallToolResult, String> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new("generate_image").with_arguments(arguments))
        .await
        .map_err(|e| e.to_string())
}

/// Waits until `done` holds, up to 20 s.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Waits until `done` holds, up to 20 s, advancing `clock` a third of a lease before
/// each look: the live gateway's keeper, sleeping that long on it, runs a round.
async fn until_kept<F, Fut>(clock: &ManualClock, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until(what, || {
        clock.advance(LEASE / 3);
        done()
    })
    .await;
}

/// The test's resolver, once the killed gateway's lease has run out (the clock moved
/// past it): what it did with the one hold left.
async fn resolve_after_the_lease(world: &World) -> imagegen_ledger::HoldResolution {
    world.clock.advance(LEASE + Duration::from_secs(1));
    let lease = Lease::new("gw-test", world.now_ms() + LEASE.as_millis() as u64);
    let mut resolved = world
        .ledger
        .resolve_expired_holds(&lease, 16)
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    resolved.remove(0)
}

on_both_ledgers!(
    an_mcp_hold_of_a_gateway_killed_while_sending_is_settled_in_full,
    an_mcp_hold_of_a_gateway_killed_while_its_job_runs_is_settled_at_its_charge,
    an_mcp_call_settles_its_hold_and_closes_its_generation,
    an_mcp_call_whose_generation_cannot_be_recorded_sends_nothing_and_holds_nothing,
);

async fn an_mcp_hold_of_a_gateway_killed_while_sending_is_settled_in_full(backend: Backend) {
    let world = World::new(backend).await;
    // The submission reaches the provider and is never answered: the route does not
    // run (nothing is charged), but the gateway cannot know that.
    world.sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::SlowFirstByte(Duration::from_secs(3600)),
    ));
    let a = world.doomed("images-a").await;
    let agent = connect(&a.url, &world.key).await;
    let call = tokio::spawn(async move {
        let _ = generate(&agent, json!({"prompt": "a fox"})).await;
    });
    until("the call is sending", || async { world.submissions() == 1 }).await;
    let (held, _) = world.budget().await;
    assert!(!held.is_zero(), "the call holds the budget");
    let instance = a.instance.clone();
    a.kill();
    call.abort();

    let hold = resolve_after_the_lease(&world).await;
    assert_eq!(hold.owner, instance, "leased to the killed gateway");
    let generation_id = hold.generation_id.clone().expect("names its generation");
    let generation = world.generation(&generation_id).await;
    assert!(
        generation.caller.starts_with("key:"),
        "{}",
        generation.caller
    );
    // The generation names the request key the write-ahead was recorded under (a key
    // that did not match would read as "nothing sent" and give the hold back).
    let key = generation
        .request_key
        .expect("recorded with its request key");
    assert!(world.ledger.request_recorded(&key).await.unwrap());
    assert!(
        matches!(hold.outcome, HoldOutcome::SettledInFull(_)),
        "{:?}",
        hold.outcome
    );
    assert_eq!(world.budget().await, (Credits::ZERO, held));
    world.finish().await;
}

async fn an_mcp_hold_of_a_gateway_killed_while_its_job_runs_is_settled_at_its_charge(
    backend: Backend,
) {
    let world = World::new(backend).await;
    let a = world.doomed("images-a").await;
    let agent = connect(&a.url, &world.key).await;
    // No model named: the hold is the dearest capable model's price, the job the
    // cheapest's.
    let started = generate(&agent, json!({"prompt": "a fox"})).await.unwrap();
    let out = started.structured_content.clone().unwrap();
    assert_eq!(out["status"], "pending", "{out}");
    let job_id = out["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let provider = out["jobs"][0]["provider"].as_str().unwrap().to_owned();
    let (held, _) = world.budget().await;
    let instance = a.instance.clone();
    a.kill();

    // Its job is still open: the hold waits for it.
    let hold = resolve_after_the_lease(&world).await;
    assert_eq!(hold.owner, instance, "leased to the killed gateway");
    let generation_id = hold.generation_id.clone().expect("names its generation");
    assert_eq!(hold.outcome, HoldOutcome::Waiting);
    assert_eq!(hold.amount, held);

    // Gateway B takes the job over once the provider has finished it, and resolves the
    // hold at what the job was charged.
    world.sim_clock.advance(Duration::from_secs(3600));
    let b = world.serve("images-b").await;
    until_kept(&world.clock, "the hold is resolved", || async {
        world.budget().await.0.is_zero()
    })
    .await;
    let job = world
        .ledger
        .job(&provider.as_str().into(), &job_id)
        .await
        .unwrap()
        .unwrap();
    let charged = job.charged.expect("the job's charge");
    assert!(charged < held, "held {held}, charged {charged}");
    assert_eq!(world.budget().await, (Credits::ZERO, charged));
    assert_eq!(world.submissions(), 1, "nothing sent again");
    // And answers the generation it took over, with the image.
    until_kept(&world.clock, "the generation is answered", || async {
        let generation = world.generation(&generation_id).await;
        generation.finished_at_ms.is_some()
    })
    .await;
    let generation = world.generation(&generation_id).await;
    assert_eq!(generation.status, Some(200), "{generation:?}");
    b.shutdown().await.unwrap();
    world.finish().await;
}

async fn an_mcp_call_settles_its_hold_and_closes_its_generation(backend: Backend) {
    let world = World::new(backend).await;
    let gateway = world.serve("images").await;
    let url = gateway.url();
    let agent = connect(&url, &world.key).await;
    world.sim_clock.advance(Duration::from_secs(3600));
    let ends = {
        let clock = world.sim_clock.clone();
        // The job ends as soon as it is submitted.
        tokio::spawn(async move {
            loop {
                clock.advance(Duration::from_secs(60));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let made = generate(
        &agent,
        json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}),
    )
    .await
    .unwrap();
    ends.abort();
    let out = made.structured_content.clone().unwrap();
    assert_eq!(out["status"], "done", "{out}");
    assert_eq!(out["credits"], 0.5);
    assert_eq!(
        world.budget().await,
        (Credits::ZERO, Credits::from_micros(500_000)),
        "settled at the charge"
    );

    // Its generation (the gateway's first request id) is closed with the tool's answer,
    // and reads through the API for the same caller.
    let unique: String = gateway
        .instance()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let id = format!("req_{unique}_1");
    assert_eq!(out["generation_id"], id.as_str(), "the answer names it");
    let generation = world.generation(&id).await;
    assert_eq!(generation.status, Some(200), "{generation:?}");
    assert!(generation.request_key.is_some());
    let read: Value = reqwest::Client::new()
        .get(format!("{url}/v1/generations/{id}"))
        .bearer_auth(&world.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "succeeded", "{read}");
    assert_eq!(read["response"]["status"], "done", "{read}");
    assert_eq!(
        read["response"]["images"][0]["job_id"],
        out["images"][0]["job_id"]
    );
    world.assert_no_hold_left().await;
    gateway.shutdown().await.unwrap();
    world.finish().await;
}

async fn an_mcp_call_whose_generation_cannot_be_recorded_sends_nothing_and_holds_nothing(
    backend: Backend,
) {
    let world = World::new(backend).await;
    common::refuse_generation_rows(backend, &world.ledger_url).await;
    let gateway = world.serve("images").await;
    let agent = connect(&gateway.url(), &world.key).await;
    let refused = generate(
        &agent,
        json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    let out = refused.structured_content.clone().unwrap();
    assert_eq!(out["error"], "ledger_error", "{out}");
    assert!(
        out["message"].as_str().unwrap().contains("generation"),
        "says what could not be recorded: {out}"
    );
    assert_eq!(world.submissions(), 0, "nothing was sent");
    assert_eq!(
        world.budget().await,
        (Credits::ZERO, Credits::ZERO),
        "the hold was given back, not settled"
    );
    world.clock.advance(LEASE + Duration::from_secs(1));
    world.assert_no_hold_left().await;
    agent.cancel().await.unwrap();
    gateway.shutdown().await.unwrap();
    world.finish().await;
}
