//! The client's money and security rules, against mockito and raw sockets, on a manual
//! clock: what is retried, what never is, and where the key may go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use imagegen_core::{Error, ManualClock, Refusal};
use kolbo_api::types::GenerateImageRequest;
use kolbo_api::{KolboClient, KolboError, RetryPolicy};
use mockito::Matcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const STARTED: &str = r#"{"success":true,"generation_id":"abc123","type":"image","model":"auto","credits_charged":2,"poll_url":"/v1/generate/abc123/status","poll_interval_hint":3}"#;
const RATE_LIMITED: &str =
    r#"{"status":false,"message":"Too many requests, please try again later"}"#;

fn request() -> GenerateImageRequest {
    GenerateImageRequest::new("A futuristic cityscape at night")
}

#[tokio::test]
async fn sends_the_key_header_and_json_body() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", "/api/v1/generate/image")
        .match_header("x-api-key", common::TEST_KEY)
        .match_header("content-type", "application/json")
        .match_header("accept", "application/json")
        .match_body(Matcher::Json(
            serde_json::json!({"prompt": "A futuristic cityscape at night"}),
        ))
        .with_body(STARTED)
        .expect(1)
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());
    let started = client.generate_image(&request()).await.unwrap();
    assert_eq!(started.generation_id, "abc123");
    assert_eq!(started.poll_interval(), Some(Duration::from_secs(3)));
    mock.assert_async().await;
}

#[tokio::test]
async fn a_429_on_the_post_is_a_rate_limit_refusal_with_its_wait_sent_once() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(429)
        .with_header("retry-after", "7")
        .with_body(RATE_LIMITED)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = client.generate_image(&request()).await.unwrap_err();
    assert!(error.is_rate_limited(), "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    // Never waited out here: the router above does, so retries happen in one layer.
    assert!(clock.sleeps().is_empty());
    let core = Error::from(error);
    assert_eq!(
        core.refusal(),
        Some(&Refusal::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    assert!(!core.may_have_been_charged() && core.is_retryable());
    limited.assert_async().await;
}

#[tokio::test]
async fn a_429_without_retry_after_on_the_post_is_returned_at_once() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(429)
        .with_body(RATE_LIMITED)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = client.generate_image(&request()).await.unwrap_err();
    assert!(error.is_rate_limited());
    assert!(clock.sleeps().is_empty());
    let core = Error::from(error);
    assert_eq!(
        core.refusal(),
        Some(&Refusal::RateLimited { retry_after: None })
    );
    assert!(!core.may_have_been_charged());
    limited.assert_async().await;
}

#[tokio::test]
async fn a_long_retry_after_is_returned_not_waited() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(429)
        .with_header("retry-after", "120")
        .with_body(RATE_LIMITED)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = Error::from(client.generate_image(&request()).await.unwrap_err());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert!(clock.sleeps().is_empty());
    limited.assert_async().await;
}

#[tokio::test]
async fn server_errors_on_the_post_are_never_retried() {
    let mut server = mockito::Server::new_async().await;
    let envelope = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(500)
        .with_body(
            r#"{"success":false,"error":"Generation failed to start","code":"GENERATION_ERROR"}"#,
        )
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = Error::from(client.generate_image(&request()).await.unwrap_err());
    assert_eq!(error.refusal(), Some(&Refusal::ServerError));
    envelope.assert_async().await;
    envelope.remove_async().await;

    // A gateway page instead of Kolbo's envelope: Kolbo may have started (and charged) it.
    let gateway = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(524)
        .with_header("content-type", "text/html")
        .with_body("<html><body>A timeout occurred</body></html>")
        .expect(1)
        .create_async()
        .await;
    let error = Error::from(client.generate_image(&request()).await.unwrap_err());
    assert!(matches!(error, Error::MaybeDelivered { .. }), "{error}");
    assert!(error.may_have_been_charged());
    assert!(clock.sleeps().is_empty());
    gateway.assert_async().await;
}

#[tokio::test]
async fn an_error_envelope_under_200_is_an_error() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("POST", "/api/v1/generate/image")
        .with_body(
            r#"{"success":false,"error":"Insufficient credits","code":"INSUFFICIENT_CREDITS"}"#,
        )
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());
    let error = client.generate_image(&request()).await.unwrap_err();
    assert_eq!(error.code(), Some("INSUFFICIENT_CREDITS"));
    assert_eq!(
        Error::from(error).refusal(),
        Some(&Refusal::InsufficientCredits)
    );
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_key_never_reaches_the_other_host() {
    let mut api = mockito::Server::new_async().await;
    let mut elsewhere = mockito::Server::new_async().await;
    let mut untouched = Vec::new();
    for method in ["GET", "POST"] {
        untouched.push(
            elsewhere
                .mock(method, Matcher::Any)
                .match_header("x-api-key", Matcher::Any)
                .expect(0)
                .create_async()
                .await,
        );
        untouched.push(
            elsewhere
                .mock(method, Matcher::Any)
                .expect(0)
                .create_async()
                .await,
        );
    }
    for (method, path) in [
        ("POST", "/api/v1/generate/image"),
        ("GET", "/api/v1/generate/abc123/status"),
    ] {
        api.mock(method, path)
            .with_status(if method == "POST" { 307 } else { 302 })
            .with_header("location", &format!("{}/steal{path}", elsewhere.url()))
            .create_async()
            .await;
    }
    let client = common::client(&api, &ManualClock::new());
    let error = client.generate_image(&request()).await.unwrap_err();
    assert!(
        matches!(error, KolboError::Redirect { status: 307, .. }),
        "{error}"
    );
    let error = client.generation_status("abc123").await.unwrap_err();
    assert!(
        matches!(error, KolboError::Redirect { status: 302, .. }),
        "{error}"
    );
    assert!(matches!(Error::from(error), Error::Config(_)));
    for mock in untouched {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn status_urls_percent_encode_the_id() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("GET", "/api/v1/generate/a%2Fb%20c/status")
        .with_body(r#"{"success":true,"state":"processing","progress":10}"#)
        .expect(1)
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());
    let status = client.generation_status("a/b c").await.unwrap();
    assert_eq!(status.percent(), Some(10));
    assert_eq!(
        client.status_url("a/b c").unwrap().path(),
        "/api/v1/generate/a%2Fb%20c/status"
    );
    mock.assert_async().await;
    assert!(matches!(
        client.generation_status("..").await,
        Err(KolboError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn local_validation_sends_nothing() {
    let mut server = mockito::Server::new_async().await;
    let nothing = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());
    let bad = [
        GenerateImageRequest::new(""),
        request().num_images(5),
        request().num_images(0),
        request()
            .visual_dna_id("a")
            .visual_dna_id("b")
            .visual_dna_id("c")
            .visual_dna_id("d"),
        request().reference_image("not a url"),
        request().aspect_ratio("wide"),
        request().extra("model", "sneaky"),
    ];
    for request in bad {
        let error = client.generate_image(&request).await.unwrap_err();
        assert!(matches!(error, KolboError::InvalidInput(_)), "{error}");
        assert!(Error::from(error).nothing_sent());
    }
    nothing.assert_async().await;
}

/// A server that accepts connections, reads what arrives, and answers with `reply`
/// (or never, when `None`). Returns its URL and a count of requests seen.
async fn raw_server(reply: Option<&'static [u8]>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                // Read until the end of the headers and the JSON body.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                        break;
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match reply {
                    Some(bytes) => {
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    None => {
                        // Hold the connection open without answering.
                        let _ = socket.read(&mut buf).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn raw_client(url: &str, clock: &ManualClock, timeout: Duration) -> KolboClient {
    KolboClient::builder(common::TEST_KEY)
        .base_url(format!("{url}/api"))
        .clock(clock.shared())
        .request_timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_timeout_after_sending_is_maybe_delivered_and_never_retried() {
    let (url, seen) = raw_server(None).await;
    let clock = ManualClock::new();
    let client = raw_client(&url, &clock, Duration::from_millis(300));
    let error = client.generate_image(&request()).await.unwrap_err();
    assert!(
        matches!(error, KolboError::OutcomeUnknown { .. }),
        "{error}"
    );
    let core = Error::from(error);
    assert!(matches!(core, Error::MaybeDelivered { .. }));
    assert!(core.may_have_been_charged() && !core.is_retryable());
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_not_delivered_and_the_post_is_not_retried() {
    // Bind then drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::new();
    let client = raw_client(
        &format!("http://127.0.0.1:{port}"),
        &clock,
        Duration::from_secs(5),
    );
    let error = client.generate_image(&request()).await.unwrap_err();
    assert!(matches!(error, KolboError::NotSent { .. }), "{error}");
    assert!(clock.sleeps().is_empty());
    // The transport failure is the source, and reqwest's error beneath it.
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.is::<imagegen_http::TransportError>(), "{source:?}");
    assert!(std::error::Error::source(source).is_some());
    let core = Error::from(error);
    assert!(core.nothing_sent() && core.is_retryable());
}

#[tokio::test]
async fn an_accepted_generation_cut_off_mid_body_keeps_its_id() {
    // Promises 500 bytes, sends fewer, closes: the id has arrived, the rest has not.
    static CUT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"success\":true,\"generation_id\":\"gen_cut_1\",\"type\":\"ima";
    let (url, seen) = raw_server(Some(CUT)).await;
    let client = raw_client(&url, &ManualClock::new(), Duration::from_secs(5));
    let started = client.generate_image(&request()).await.unwrap();
    assert_eq!(started.generation_id, "gen_cut_1");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // Cut before the id: the charge may have happened, and the error says so.
    static CUT_EARLY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"success\":tr";
    let (url, seen) = raw_server(Some(CUT_EARLY)).await;
    let client = raw_client(&url, &ManualClock::new(), Duration::from_secs(5));
    let error = Error::from(client.generate_image(&request()).await.unwrap_err());
    assert!(error.may_have_been_charged(), "{error}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn reads_retry_on_429_too() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("GET", "/api/v1/account/credits")
        .with_status(429)
        .with_header("retry-after", "2")
        .with_body(RATE_LIMITED)
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("GET", "/api/v1/account/credits")
        .with_body(r#"{"success":true,"credits":{"total":1500.5,"plan_credits":1000}}"#)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let credits = client.account_credits().await.unwrap();
    assert_eq!(credits.credits.total, Some("1500.5".parse().unwrap()));
    assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);
    limited.assert_async().await;
    ok.assert_async().await;
}

#[tokio::test]
async fn a_read_against_a_dead_host_fails_fast_with_two_quick_retries() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::new();
    let client = raw_client(
        &format!("http://127.0.0.1:{port}"),
        &clock,
        Duration::from_secs(5),
    );
    let error = client.account_credits().await.unwrap_err();
    assert!(matches!(error, KolboError::NotSent { .. }), "{error}");
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(250), Duration::from_millis(500)]
    );
}

#[tokio::test]
async fn a_read_asking_for_a_long_wait_is_returned_not_waited() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("GET", "/api/v1/account/credits")
        .with_status(429)
        .with_header("retry-after", "60")
        .with_body(RATE_LIMITED)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let error = common::client(&server, &clock)
        .account_credits()
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert!(clock.sleeps().is_empty());
    limited.assert_async().await;
}

#[test]
fn debug_of_client_and_builder_never_prints_the_key() {
    let builder = KolboClient::builder(common::TEST_KEY).retry_policy(RetryPolicy::never());
    assert!(!format!("{builder:?}").contains(common::TEST_KEY));
    let client = builder.build().unwrap();
    let shown = format!("{client:?}{client:#?}");
    assert!(!shown.contains(common::TEST_KEY), "{shown}");
    let provider = kolbo_api::KolboProvider::new(client);
    assert!(!format!("{provider:?}").contains(common::TEST_KEY));
}

#[tokio::test]
async fn a_status_serde_refuses_as_a_whole_loses_only_the_bad_field() {
    let mut server = mockito::Server::new_async().await;
    let out_of_range = server
        .mock("GET", "/api/v1/generate/g1/status")
        .with_body(r#"{"success":true,"generation_id":"g1","state":"processing","progress":1e999}"#)
        .create_async()
        .await;
    let duplicated = server
        .mock("GET", "/api/v1/generate/g2/status")
        .with_body(
            r#"{"success":true,"generation_id":"g2","state":"processing","progress":10,"progress":-1e400}"#,
        )
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());
    for id in ["g1", "g2"] {
        let status = client.generation_status(id).await.unwrap();
        assert_eq!(status.generation_id.as_deref(), Some(id));
        assert_eq!(status.state.as_str(), "processing");
        assert_eq!(status.progress, None, "{id}");
        assert_eq!(status.percent(), None);
    }
    out_of_range.assert_async().await;
    duplicated.assert_async().await;
}

/// A completed status with one field serde refuses as a whole, and what must survive it.
const COMPLETED_WITH_A_BAD_FIELD: [(&str, &str); 4] = [
    (
        "progress out of range",
        r#"{"success":true,"generation_id":"abc123","type":"image","state":"completed","progress":1e999,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png","https://cdn.kolbo.ai/images/abc123-1.png"],"model":"auto"}}"#,
    ),
    (
        "state sent twice",
        r#"{"success":true,"generation_id":"abc123","state":"processing","progress":100,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png","https://cdn.kolbo.ai/images/abc123-1.png"],"model":"auto"},"state":"completed"}"#,
    ),
    (
        "progress sent twice",
        r#"{"success":true,"generation_id":"abc123","state":"completed","progress":99,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png","https://cdn.kolbo.ai/images/abc123-1.png"],"model":"auto"},"progress":100}"#,
    ),
    (
        "out of range inside the result",
        r#"{"success":true,"generation_id":"abc123","state":"completed","progress":100,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png","https://cdn.kolbo.ai/images/abc123-1.png"],"model":"auto","created_at":-1e400}}"#,
    ),
];

#[tokio::test]
async fn a_completed_status_with_one_bad_field_reads_as_completed() {
    for (case, body) in COMPLETED_WITH_A_BAD_FIELD {
        assert!(
            serde_json::from_str::<kolbo_api::types::GenerationStatus>(body).is_err(),
            "{case}: plain serde must refuse it for this test to mean anything"
        );
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", "/api/v1/generate/abc123/status")
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
        let client = common::client(&server, &ManualClock::new());
        let status = client.generation_status("abc123").await.unwrap();
        assert_eq!(status.state.as_str(), "completed", "{case}");
        assert!(status.state.is_terminal(), "{case}");
        assert_eq!(status.generation_id.as_deref(), Some("abc123"), "{case}");
        let expected_progress = if case == "progress out of range" {
            None
        } else {
            Some(100.0)
        };
        assert_eq!(status.progress, expected_progress, "{case}");
        let result = status.result.unwrap();
        assert_eq!(
            result.urls,
            [
                "https://cdn.kolbo.ai/images/abc123-0.png",
                "https://cdn.kolbo.ai/images/abc123-1.png"
            ],
            "{case}"
        );
        assert_eq!(result.model.as_deref(), Some("auto"), "{case}");
        assert_eq!(result.created_at, None, "{case}");
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_required_field_out_of_range_is_an_unreadable_answer_that_shows_it() {
    let mut server = mockito::Server::new_async().await;
    let started = server
        .mock("POST", "/api/v1/generate/image")
        .with_body(r#"{"success":true,"generation_id":1e999,"credits_charged":2}"#)
        .expect(1)
        .create_async()
        .await;
    let status = server
        .mock("GET", "/api/v1/generate/abc123/status")
        .with_body(r#"{"success":true,"generation_id":"abc123","state":1e999,"progress":100}"#)
        .expect(1)
        .create_async()
        .await;
    let client = common::client(&server, &ManualClock::new());

    // No id is invented for an accepted generation whose id is not a string.
    let error = client.generate_image(&request()).await.unwrap_err();
    let KolboError::Unreadable {
        status: 200,
        detail,
        body_prefix,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(
        detail.contains("missing field `generation_id`")
            && detail.contains("generation_id = 1e999"),
        "{detail}"
    );
    assert!(
        body_prefix.contains(r#""generation_id":1e999"#),
        "{body_prefix}"
    );
    assert!(
        error.to_string().contains("generation_id = 1e999"),
        "{error}"
    );

    let error = client.generation_status("abc123").await.unwrap_err();
    assert!(
        matches!(&error, KolboError::Unreadable { status: 200, detail, .. }
            if detail.contains("missing field `state`") && detail.contains("state = 1e999")),
        "{error:?}"
    );
    // Unreadable, never a state: the poller keeps asking rather than guess one.
    assert!(matches!(
        Error::from(error),
        Error::UnreadableResponse { .. }
    ));
    started.assert_async().await;
    status.assert_async().await;
}
