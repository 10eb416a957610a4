//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use imagegen_core::fixture::Fixture;
use imagegen_core::{Error, ManualClock};
use kolbo_api::{KolboClient, RetryPolicy};

/// A key-shaped test key (never a real one).
pub const TEST_KEY: &str = "kolbo_live_0000000000000000000000000000000000000000";

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kolbo")
}

pub fn fixture(name: &str) -> Fixture {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A client on `server` (base `{server}/api`) with a manual clock.
pub fn client(server: &mockito::ServerGuard, clock: &ManualClock) -> KolboClient {
    client_with(server, clock, RetryPolicy::default())
}

pub fn client_with(
    server: &mockito::ServerGuard,
    clock: &ManualClock,
    retry: RetryPolicy,
) -> KolboClient {
    KolboClient::builder(TEST_KEY)
        .base_url(format!("{}/api", server.url()))
        .clock(clock.shared())
        .retry_policy(retry)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A mock (not yet created) serving `fixture`'s response for its method and path and the
/// test key (any body), expecting `hits` calls.
pub fn fixture_mock(
    server: &mut mockito::ServerGuard,
    fixture: &Fixture,
    hits: usize,
) -> mockito::Mock {
    let path = match &fixture.request.query {
        Some(q) => format!("{}?{q}", fixture.request.path),
        None => fixture.request.path.clone(),
    };
    let mut mock = server
        .mock(fixture.request.method.as_str(), path.as_str())
        .match_header("x-api-key", TEST_KEY)
        .with_status(usize::from(fixture.response.status));
    for (name, value) in &fixture.response.headers {
        mock = mock.with_header(name.as_str(), value.as_str());
    }
    mock.with_body(fixture.response.body_bytes()).expect(hits)
}

/// The money questions a core error answers, in one line.
pub fn classify(error: &Error) -> String {
    format!(
        "retryable={} may_have_been_charged={} nothing_sent={}",
        error.is_retryable(),
        error.may_have_been_charged(),
        error.nothing_sent()
    )
}
