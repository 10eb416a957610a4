//! Waiting for a generation on a manual clock: the schedule, progress, transient failures,
//! the deadline, and every terminal state. The waiter must never POST.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagegen_core::{Error, JobState, ManualClock, NoProgress, ProgressEvent, Refund, Refusal};
use kolbo_api::KolboError;
use kolbo_api::poll::{PollSchedule, WaitOptions};
use mockito::{Matcher, Mock, ServerGuard};

const STATUS: &str = "/api/v1/generate/abc123/status";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One status answer: HTTP status, body, extra headers.
type Answer<'a> = (usize, &'a str, &'a [(&'a str, &'a str)]);

/// Status answers in order; the last one repeats.
async fn statuses(server: &mut ServerGuard, answers: &[Answer<'_>]) -> Vec<Mock> {
    let mut mocks = Vec::new();
    for (i, (status, body, headers)) in answers.iter().enumerate() {
        let mut mock = server
            .mock("GET", STATUS)
            .match_header("x-api-key", common::TEST_KEY)
            .with_status(*status)
            .with_body(*body);
        for (name, value) in *headers {
            mock = mock.with_header(*name, value);
        }
        if i + 1 < answers.len() {
            mock = mock.expect(1);
        }
        mocks.push(mock.create_async().await);
    }
    mocks
}

/// A mock that fails the test if the waiter ever POSTs.
async fn no_posts(server: &mut ServerGuard) -> Mock {
    server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await
}

fn body(name: &str) -> String {
    common::fixture(name)
        .response
        .body_bytes()
        .into_iter()
        .map(char::from)
        .collect()
}

fn recorder() -> (
    Arc<Mutex<Vec<ProgressEvent>>>,
    impl Fn(ProgressEvent) + Send + Sync,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = Arc::clone(&events);
        move |e: ProgressEvent| events.lock().unwrap().push(e)
    };
    (events, sink)
}

#[tokio::test]
async fn polls_on_the_docs_schedule_reports_progress_and_never_posts() {
    let mut server = mockito::Server::new_async().await;
    let pending = body("status.pending");
    let processing = body("status.processing");
    let unknown = body("status.unknown_state");
    let completed = body("status.completed");
    let _mocks = statuses(
        &mut server,
        &[
            (200, &pending, &[]),
            (200, &processing, &[]),
            (200, &processing, &[]),
            (200, &unknown, &[]),
            (200, &completed, &[]),
        ],
    )
    .await;
    let posts = no_posts(&mut server).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let (events, sink) = recorder();
    let options = WaitOptions::default().poll_interval_hint(Some(secs(3)));
    let done = client
        .wait_for_generation("abc123", &options, &sink)
        .await
        .unwrap();
    assert_eq!(
        done.result.urls,
        ["https://cdn.kolbo.ai/images/abc123-0.png"]
    );
    assert_eq!(done.polls, 5);
    assert_eq!(done.waited, secs(15));
    assert_eq!(clock.sleeps(), [secs(3); 5]);
    let seen: Vec<(JobState, Option<u8>)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.state.clone(), e.percent))
        .collect();
    // The repeated `processing` is reported once.
    assert_eq!(
        seen,
        [
            (JobState::Queued, Some(0)),
            (JobState::Running, Some(52)),
            (JobState::Unknown("upscaling".into()), Some(80)),
            (JobState::Completed, Some(100)),
        ]
    );
    posts.assert_async().await;
}

/// The estimate (20 s) puts the first poll at 12 s. Its answer, 52 % done after 12 s,
/// says the job ends between 22.64 s and 23.08 s, not near 20 s: the next poll skips the
/// plan's dense polls and narrows that window near its start (at 95 % of 22.64 s). The
/// same 52 % then contradicts it, so progress is set aside and the dense polls resume.
#[tokio::test]
async fn an_estimate_moves_the_first_poll_and_progress_the_next() {
    let mut server = mockito::Server::new_async().await;
    let processing = body("status.processing");
    let completed = body("status.completed");
    let _mocks = statuses(
        &mut server,
        &[
            (200, &processing, &[]),
            (200, &processing, &[]),
            (200, &completed, &[]),
        ],
    )
    .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let options = WaitOptions::default()
        .poll_interval_hint(Some(secs(3)))
        .estimated_duration(Some(secs(20)));
    client
        .wait_for_generation("abc123", &options, &NoProgress)
        .await
        .unwrap();
    let sleeps = clock.sleeps();
    assert_eq!(sleeps[0], secs(12));
    let predicted = 0.95 * 12.0 * 100.0 / 53.0;
    assert!(
        (sleeps[1].as_secs_f64() - (predicted - 12.0)).abs() < 1e-6,
        "{sleeps:?}"
    );
    assert!(sleeps[2] < secs(3) && sleeps[2] >= secs(1), "{sleeps:?}");
}

#[tokio::test]
async fn transient_failures_back_off_and_honour_retry_after() {
    let mut server = mockito::Server::new_async().await;
    let html = body("error.html_bad_gateway");
    let limited = body("error.rate_limited");
    let truncated = body("error.truncated_json");
    let completed = body("status.completed");
    let _mocks = statuses(
        &mut server,
        &[
            (502, &html, &[("content-type", "text/html")]),
            (429, &limited, &[("retry-after", "7")]),
            (200, &truncated, &[]),
            (200, &completed, &[]),
        ],
    )
    .await;
    let posts = no_posts(&mut server).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let done = client
        .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(done.polls, 4);
    // First poll at 3 s; then 2 s backoff; then Retry-After 7 s; then 2 × 1.5² = 4.5 s.
    assert_eq!(
        clock.sleeps(),
        [secs(3), secs(2), secs(7), Duration::from_millis(4500)]
    );
    posts.assert_async().await;
}

#[tokio::test]
async fn the_deadline_gives_still_running_with_the_id() {
    let mut server = mockito::Server::new_async().await;
    let processing = body("status.processing");
    let _mocks = statuses(&mut server, &[(200, &processing, &[])]).await;
    let posts = no_posts(&mut server).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let options = WaitOptions::default().schedule(PollSchedule::default().deadline(secs(10)));
    let error = client
        .wait_for_generation("abc123", &options, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(clock.sleeps(), [secs(3), secs(3), secs(3), secs(1)]);
    match &error {
        KolboError::StillRunning {
            generation_id,
            waited,
            ..
        } => {
            assert_eq!(generation_id, "abc123");
            assert_eq!(*waited, secs(10));
        }
        other => panic!("{other}"),
    }
    let core = Error::from(error);
    assert!(matches!(core, Error::StillRunning { ref job_id, .. } if job_id == "abc123"));
    assert!(core.may_have_been_charged() && !core.is_retryable());
    posts.assert_async().await;
}

#[tokio::test]
async fn a_status_route_that_keeps_failing_gives_still_running() {
    let mut server = mockito::Server::new_async().await;
    let _mocks = statuses(&mut server, &[(503, "", &[])]).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = client
        .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    match error {
        KolboError::StillRunning {
            generation_id,
            last_error,
            ..
        } => {
            assert_eq!(generation_id, "abc123");
            assert!(last_error.unwrap().contains("503"));
        }
        other => panic!("{other}"),
    }
    // 1 first poll + 10 tolerated failures + the one that gives up.
    assert_eq!(clock.sleeps().len(), 11);
}

#[tokio::test]
async fn a_failed_generation_is_refunded_with_its_code() {
    let mut server = mockito::Server::new_async().await;
    let failed = body("status.failed");
    let _mocks = statuses(&mut server, &[(200, &failed, &[])]).await;
    let client = common::client(&server, &ManualClock::new());
    let error = client
        .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    match Error::from(error) {
        Error::GenerationFailed {
            job_id,
            code,
            refund,
            retryable,
            message,
            ..
        } => {
            assert_eq!(job_id, "abc123");
            assert_eq!(code.as_deref(), Some("CONTENT_FLAGGED_SENSITIVE"));
            assert_eq!(refund, Refund::Refunded);
            assert_eq!(retryable, Some(false));
            assert!(message.contains("flagged as sensitive"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn cancelled_and_empty_results_keep_the_id() {
    let mut server = mockito::Server::new_async().await;
    let cancelled = body("status.cancelled");
    let mocks = statuses(&mut server, &[(200, &cancelled, &[])]).await;
    let client = common::client(&server, &ManualClock::new());
    let error = Error::from(
        client
            .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
            .await
            .unwrap_err(),
    );
    assert!(matches!(error, Error::Cancelled { ref job_id, .. } if job_id == "abc123"));
    for mock in mocks {
        mock.remove_async().await;
    }

    let empty = body("status.completed_zero_urls");
    let _mocks = statuses(&mut server, &[(200, &empty, &[])]).await;
    let error = client
        .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, KolboError::EmptyResult { .. }));
    let core = Error::from(error);
    match &core {
        Error::GenerationFailed { job_id, refund, .. } => {
            assert_eq!(job_id, "abc123");
            assert_eq!(*refund, Refund::Unknown);
        }
        other => panic!("{other}"),
    }
    assert!(core.may_have_been_charged() && !core.is_retryable());
}

#[tokio::test]
async fn a_completed_status_with_a_bad_field_ends_the_wait() {
    // Each would once have been unreadable, so the finished job stayed open until the
    // deadline.
    let urls = ["https://cdn.kolbo.ai/images/abc123-0.png"];
    for completed in [
        r#"{"success":true,"generation_id":"abc123","state":"completed","progress":1e999,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png"]}}"#,
        r#"{"success":true,"generation_id":"abc123","state":"processing","state":"completed","result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png"]}}"#,
        r#"{"success":true,"generation_id":"abc123","state":"completed","progress":50,"progress":100,"result":{"urls":["https://cdn.kolbo.ai/images/abc123-0.png"]}}"#,
    ] {
        let mut server = mockito::Server::new_async().await;
        let processing =
            r#"{"success":true,"generation_id":"abc123","state":"processing","progress":-1e999}"#;
        let _mocks = statuses(
            &mut server,
            &[(200, processing, &[]), (200, completed, &[])],
        )
        .await;
        let posts = no_posts(&mut server).await;
        let clock = ManualClock::new();
        let client = common::client(&server, &clock);
        let (events, sink) = recorder();
        let options = WaitOptions::default().poll_interval_hint(Some(secs(3)));
        let done = client
            .wait_for_generation("abc123", &options, &sink)
            .await
            .unwrap();
        assert_eq!(done.result.urls, urls, "{completed}");
        assert_eq!(done.polls, 2, "{completed}");
        assert_eq!(done.status.state.as_str(), "completed");
        let seen: Vec<JobState> = events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.state.clone())
            .collect();
        assert_eq!(
            seen,
            [JobState::Running, JobState::Completed],
            "{completed}"
        );
        posts.assert_async().await;
    }
}

#[tokio::test]
async fn a_permanent_poll_error_stops_at_once() {
    let mut server = mockito::Server::new_async().await;
    let unauthorized = r#"{"success":false,"error":"Invalid API key","code":"INVALID_API_KEY"}"#;
    let _mocks = statuses(&mut server, &[(401, unauthorized, &[])]).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    let error = Error::from(
        client
            .wait_for_generation("abc123", &WaitOptions::default(), &NoProgress)
            .await
            .unwrap_err(),
    );
    assert_eq!(error.refusal(), Some(&Refusal::Auth));
    assert_eq!(clock.sleeps().len(), 1);
}

#[tokio::test]
async fn a_malformed_id_fails_before_any_request_or_sleep() {
    let mut server = mockito::Server::new_async().await;
    let nothing = server
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let posts = no_posts(&mut server).await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    // (Anything else is sent percent-encoded as one path segment: `../models` cannot
    // climb out of `/v1/generate/`.)
    for bad in ["", "  ", ".", "..", "abc\n123"] {
        let error = client
            .wait_for_generation(bad, &WaitOptions::default(), &NoProgress)
            .await
            .unwrap_err();
        assert!(
            matches!(error, KolboError::InvalidInput(_)),
            "{bad:?} gave {error:?}"
        );
    }
    assert!(clock.sleeps().is_empty());
    nothing.assert_async().await;
    posts.assert_async().await;
}
