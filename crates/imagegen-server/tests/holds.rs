//! A gateway killed while holding a key's budget: another gateway on the ledger resolves
//! the hold once its lease runs out, from what was sent. Given back when nothing was;
//! settled in full (never given back) when the request was recorded and no job was.
//!
//! The dead gateway is its rows in the ledger, exactly as a `kill -9` leaves them (a
//! hold leased to it, its running generation, and for the second case the write-ahead
//! request row); time is a manual clock shared by the live gateway and its ledger, so
//! the lease runs out when the test says, not after a sleep. Each runs on SQLite and on
//! PostgreSQL (a throwaway server, as the ledger's own tests start it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Gateway, error_of, start_with};
use imagegen::Credits;
use imagegen::core::{Clock, ManualClock, unix_millis};
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, KeyPeriod, NewApiKey};
use imagegen_ledger::{Backend, Lease, Ledger, LedgerOptions, NewGeneration, NewRequest};
use serde_json::json;

/// What the dead gateway had done before it was killed.
#[derive(Clone, Copy, PartialEq)]
enum Killed {
    /// Held the budget, sent nothing.
    BeforeSending,
    /// Held the budget and recorded its request (the write-ahead): the submission may
    /// have gone out and been charged; no job was recorded.
    WhileSending,
}

/// A live gateway beside the rows of a dead one.
struct Setup {
    gateway: Gateway,
    clock: ManualClock,
    /// The gateway key.
    key: String,
    /// The key's budget.
    budget: String,
    /// Holds the ledger (SQLite).
    _dir: tempfile::TempDir,
    /// The ledger's database (PostgreSQL), dropped by [`Setup::finish`].
    pg_name: Option<String>,
}

impl Setup {
    /// Stops the gateway and drops its database.
    async fn finish(self) {
        self.gateway.server.shutdown().await.unwrap();
        if let Some(name) = &self.pg_name {
            imagegen_ledger::testing::drop_database(name).await;
        }
    }
}

/// A live gateway on a ledger where a dead one ("gw-dead") holds all of a key's one
/// credit for its generation "req_dead", its lease running out 30 s from now.
async fn a_dead_gateway_holds_the_budget(backend: Backend, killed: Killed) -> Setup {
    let clock = ManualClock::manual();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_name) = common::ledger_url(backend, dir.path()).await;
    let options = LedgerOptions::default().with_clock(clock.shared());
    let ledger: Arc<dyn Ledger> = imagegen_ledger::open_with(&url, &options).await.unwrap();
    let key = ApiKey::generate().unwrap();
    let new = NewApiKey::new("team-a", &key)
        .with_limit(Credits::whole(1))
        .with_period(KeyPeriod::Total);
    let record = ledger.create_api_key(&new).await.unwrap();
    let now = unix_millis(clock.wall_time());
    let budget = ledger
        .ensure_key_budget(&record, now)
        .await
        .unwrap()
        .unwrap();

    // The dead gateway's rows: its generation (named with its request before anything
    // is sent) and its hold, both leased to it.
    let lease = Lease::new("gw-dead", now + 30_000);
    let generation = NewGeneration::new("req_dead", format!("key:{}", record.id.0), lease.clone())
        .with_request_key("dead-request");
    ledger.create_generation(&generation).await.unwrap();
    ledger
        .reserve_leased(&budget, Credits::whole(1), "req_dead", &lease)
        .await
        .unwrap();
    if killed == Killed::WhileSending {
        let request = NewRequest::new("a fox", "{}", dir.path().join("out"), "dead-request", now);
        ledger.record_request(&request).await.unwrap();
    }

    let gateway = start_with(common::sim(), {
        let clock = clock.clone();
        move |config| config.with_ledger(ledger).with_clock(clock.shared())
    })
    .await;
    Setup {
        gateway,
        clock,
        key: key.secret().expose_secret().to_owned(),
        budget,
        _dir: dir,
        pg_name,
    }
}

/// `POST /v1/images/generations` of one half-credit image with `key`.
async fn post(gateway: &Gateway, key: &str) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .bearer_auth(key)
        .json(&json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}))
        .send()
        .await
        .unwrap()
}

/// `(reserved, spent)` of `budget` now.
async fn budget_of(gateway: &Gateway, budget: &str) -> (Credits, Credits) {
    let status = gateway
        .server
        .ledger()
        .budget(budget)
        .await
        .unwrap()
        .unwrap();
    (status.reserved, status.spent)
}

/// Lets the dead gateway's lease run out and waits until the live gateway's keeper has
/// resolved its hold: `(reserved, spent)` of `budget` then.
async fn after_the_lease(
    gateway: &Gateway,
    clock: &ManualClock,
    budget: &str,
) -> (Credits, Credits) {
    clock.advance(Duration::from_secs(31));
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (reserved, spent) = budget_of(gateway, budget).await;
            if reserved.is_zero() {
                return (reserved, spent);
            }
            // The keeper sleeps a third of a lease on the manual clock.
            clock.advance(Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dead gateway's hold was resolved")
}

on_both_ledgers!(
    a_hold_of_a_gateway_killed_before_sending_is_given_back,
    a_hold_of_a_gateway_killed_while_sending_is_settled_in_full,
    a_request_whose_generation_cannot_be_recorded_sends_nothing_and_holds_nothing,
);

async fn a_hold_of_a_gateway_killed_before_sending_is_given_back(backend: Backend) {
    let setup = a_dead_gateway_holds_the_budget(backend, Killed::BeforeSending).await;
    let (gateway, key, budget) = (&setup.gateway, &setup.key, &setup.budget);
    // While the dead gateway's lease runs, its hold stands: the key has nothing left.
    let (status, body, _) = error_of(post(gateway, key).await).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");

    let (reserved, spent) = after_the_lease(gateway, &setup.clock, budget).await;
    assert_eq!(
        (reserved, spent),
        (Credits::ZERO, Credits::ZERO),
        "given back"
    );
    // The key's whole credit is there again: two half-credit images.
    for _ in 0..2 {
        let response = post(gateway, key).await;
        assert_eq!(response.status(), 200);
    }
    let (status, _, _) = error_of(post(gateway, key).await).await;
    assert_eq!(status, 402);
    assert_eq!(gateway.submissions(), 2);
    assert_eq!(
        budget_of(gateway, budget).await,
        (Credits::ZERO, Credits::whole(1))
    );
    setup.finish().await;
}

async fn a_hold_of_a_gateway_killed_while_sending_is_settled_in_full(backend: Backend) {
    let setup = a_dead_gateway_holds_the_budget(backend, Killed::WhileSending).await;
    let (gateway, key, budget) = (&setup.gateway, &setup.key, &setup.budget);
    let (reserved, spent) = after_the_lease(gateway, &setup.clock, budget).await;
    // The provider may have charged for what was sent: what was held counts as spent,
    // never given back.
    assert_eq!((reserved, spent), (Credits::ZERO, Credits::whole(1)));
    let (status, body, _) = error_of(post(gateway, key).await).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(gateway.submissions(), 0, "nothing sent again");
    setup.finish().await;
}

async fn a_request_whose_generation_cannot_be_recorded_sends_nothing_and_holds_nothing(
    backend: Backend,
) {
    let setup = a_dead_gateway_holds_the_budget(backend, Killed::BeforeSending).await;
    let (gateway, key, budget) = (&setup.gateway, &setup.key, &setup.budget);
    // The dead gateway's hold given back first, so the key has its credit to spend.
    let given_back = after_the_lease(gateway, &setup.clock, budget).await;
    assert_eq!(given_back, (Credits::ZERO, Credits::ZERO));
    let url = gateway.server.ledger().url().to_owned();
    common::refuse_generation_rows(backend, &url).await;

    let (status, body, _) = error_of(post(gateway, key).await).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "ledger_error", "{body}");
    assert_eq!(gateway.submissions(), 0, "nothing was sent");
    assert_eq!(
        budget_of(gateway, budget).await,
        (Credits::ZERO, Credits::ZERO),
        "the hold was given back, not settled"
    );
    setup.finish().await;
}
