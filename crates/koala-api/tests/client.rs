//! The generate call against a mock Koala: what is sent, every error status, Retry-After,
//! the retries that are allowed and the ones that are not, redirects, unreadable bodies,
//! and requests refused before sending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TEST_KEY;
use imagegen_core::ManualClock;
use koala_api::{
    ApiErrorKind, ImageGenerationRequest, InvalidRequest, KoalaClient, KoalaError, KoalaPlan,
    Model, Quality, Style,
};
use mockito::Matcher;

const PATH: &str = "/api/image-generation/";
const OK_BODY: &str = r#"[{"url":"https://koala.sh/api/image/v2-aaaaa-bbbbb.jpg","alt":""}]"#;

/// Records method, path, the headers worth pinning and the body of every request.
fn recorder(mock: mockito::Mock, seen: &Arc<Mutex<Vec<serde_json::Value>>>) -> mockito::Mock {
    let seen = Arc::clone(seen);
    mock.with_body_from_request(move |req| {
        let header = |name: &str| {
            req.header(name)
                .first()
                .map(|v| v.to_str().unwrap_or("").to_owned())
        };
        let auth = header("authorization");
        assert_eq!(auth.as_deref(), Some(format!("Bearer {TEST_KEY}").as_str()));
        let body: serde_json::Value = serde_json::from_slice(req.body().unwrap()).unwrap();
        seen.lock().unwrap().push(serde_json::json!({
            "method": req.method(),
            "path": req.path(),
            "authorization": "Bearer [redacted]",
            "content-type": header("content-type"),
            "accept": header("accept"),
            "body": body,
        }));
        OK_BODY.as_bytes().to_vec()
    })
}

#[tokio::test]
async fn every_request_variant_on_the_wire() {
    let mut server = mockito::Server::new_async().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _mock = recorder(server.mock("POST", PATH).with_status(200), &seen)
        .create_async()
        .await;
    let client = common::client(&server.url(), &ManualClock::new(), KoalaPlan::Professional);
    let reference = url::Url::parse("https://example.com/ref.png").unwrap();
    let variants = vec![
        ImageGenerationRequest::new("cat"),
        ImageGenerationRequest::new("cat")
            .with_style(Style::Watercolor)
            .with_size("1024x1024")
            .with_num_images(1)
            .with_model(Model::GptImage2)
            .with_quality(Quality::Medium)
            .with_enhance_prompt(true)
            .with_generate_alt_text(true),
        ImageGenerationRequest::new("a poster")
            .with_model(Model::GptImage2)
            .with_quality(Quality::High)
            .with_size("9:16")
            .with_num_images(4)
            .with_reference_image(reference.clone())
            .with_preserve_original(true),
        ImageGenerationRequest::new("a logo")
            .with_model(Model::Ideogram3)
            .with_quality(Quality::Turbo)
            .with_style(Style::None)
            .with_enhance_prompt(false)
            .with_size("landscape"),
        ImageGenerationRequest::new("a sticker")
            .with_model(Model::NanoBanana2)
            .with_reference_image(reference)
            .with_size("21:9"),
        ImageGenerationRequest::new("a photo")
            .with_model(Model::Premium)
            .with_style(Style::ThreeD),
        ImageGenerationRequest::new("a transparent icon")
            .with_model("gpt-image-3")
            .with_style("vaporwave")
            .with_extra("background", serde_json::json!("transparent")),
    ];
    for request in &variants {
        client.generate(request).await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), variants.len());
    insta::assert_json_snapshot!(seen);
}

#[tokio::test]
async fn each_error_status_with_json_and_plain_text_bodies() {
    let mut rows = Vec::new();
    for status in [400u16, 401, 402, 403, 429, 500, 502, 504, 418] {
        for (kind, content_type, body) in [
            (
                "json-error",
                "application/json",
                r#"{"error":"the reason"}"#,
            ),
            (
                "json-message",
                "application/json",
                r#"{"message":"the reason"}"#,
            ),
            ("text", "text/plain", "the reason\n"),
            ("html", "text/html", "<html><body>oops</body></html>"),
        ] {
            let mut server = mockito::Server::new_async().await;
            let mock = server
                .mock("POST", PATH)
                .with_status(usize::from(status))
                .with_header("content-type", content_type)
                .with_body(body)
                .expect(1)
                .create_async()
                .await;
            let err = common::client_without_retries(&server.url())
                .generate(&ImageGenerationRequest::new("cat"))
                .await
                .unwrap_err();
            mock.assert_async().await;
            let KoalaError::Api {
                status: got,
                kind: api_kind,
                message,
                ..
            } = &err
            else {
                panic!("{err:?}");
            };
            assert_eq!(*got, status);
            assert_eq!(*api_kind, ApiErrorKind::from_status(status));
            if kind != "html" {
                assert_eq!(message, "the reason", "{status} {kind}");
            }
            if kind == "json-error" || kind == "html" {
                let core: imagegen_core::Error = err.into();
                rows.push(format!(
                    "{status} {kind}: refusal={:?} charged={} | {core}",
                    core.refusal(),
                    core.may_have_been_charged()
                ));
            }
        }
    }
    insta::assert_snapshot!(rows.join("\n"));
}

#[tokio::test]
async fn a_429_is_a_rate_limit_refusal_with_its_wait_and_is_sent_once() {
    let mut server = mockito::Server::new_async().await;
    let limited = server
        .mock("POST", PATH)
        .with_status(429)
        .with_header("retry-after", "7")
        .with_body(r#"{"error":"Rate limit exceeded"}"#)
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server.url(), &clock, KoalaPlan::Unknown);
    let err = client
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    limited.assert_async().await;
    // Never waited out here: the router above does, so retries happen in one layer.
    assert!(clock.sleeps().is_empty());
    assert!(
        matches!(
            err,
            KoalaError::Api {
                status: 429,
                kind: ApiErrorKind::RateLimited,
                retry_after: Some(wait),
                ..
            } if wait == Duration::from_secs(7)
        ),
        "{err:?}"
    );
    let core: imagegen_core::Error = err.into();
    assert_eq!(
        core.refusal(),
        Some(&imagegen_core::Refusal::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    assert!(core.is_retryable() && !core.may_have_been_charged());
}

#[tokio::test]
async fn rate_limit_with_an_http_date_and_without_retry_after() {
    let mut server = mockito::Server::new_async().await;
    let clock = ManualClock::new();
    // Retry-After dates are read against the client's clock, not the system's.
    let date = httpdate_in(&clock, Duration::from_secs(30));
    let dated = server
        .mock("POST", PATH)
        .with_status(429)
        .with_header("retry-after", &date)
        .expect(1)
        .create_async()
        .await;
    let client = common::client(&server.url(), &clock, KoalaPlan::Unknown);
    let err = client
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    // Sent once; the dated wait is the router's to honour: exactly 30 s on the client's clock.
    dated.assert_async().await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    let mut server = mockito::Server::new_async().await;
    let bare = server
        .mock("POST", PATH)
        .with_status(429)
        .with_body("slow down")
        .expect(1)
        .create_async()
        .await;
    let err = common::client(&server.url(), &clock, KoalaPlan::Unknown)
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    bare.assert_async().await;
    assert!(clock.sleeps().is_empty());
    assert!(matches!(
        err,
        KoalaError::Api {
            kind: ApiErrorKind::RateLimited,
            retry_after: None,
            ..
        }
    ));
    let core: imagegen_core::Error = err.into();
    assert!(core.is_retryable());
}

fn httpdate_in(clock: &ManualClock, from_now: Duration) -> String {
    use imagegen_core::Clock as _;
    let when = clock.wall_time() + from_now;
    // IMF-fixdate, as a server would send it.
    let secs = when
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT")
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_returned_not_waited() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", PATH)
        .with_status(429)
        .with_header("retry-after", "3600")
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let err = common::client(&server.url(), &clock, KoalaPlan::Unknown)
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn server_errors_are_never_retried_because_images_are_billed() {
    for status in [500usize, 502, 503, 504] {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", PATH)
            .with_status(status)
            .expect(1)
            .create_async()
            .await;
        let clock = ManualClock::new();
        let err = common::client(&server.url(), &clock, KoalaPlan::Unknown)
            .generate(&ImageGenerationRequest::new("cat"))
            .await
            .unwrap_err();
        mock.assert_async().await;
        assert!(clock.sleeps().is_empty());
        assert!(matches!(err, KoalaError::Api { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn no_answer_after_sending_may_have_been_charged_and_is_not_retried() {
    let (url, seen) = common::silent_server().await;
    let clock = ManualClock::new();
    let client = KoalaClient::builder(TEST_KEY)
        .base_url(format!("{url}/api"))
        .clock(clock.shared())
        .request_timeout(Duration::from_millis(150))
        .http_client(common::http())
        .build()
        .unwrap();
    let err = client
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    assert!(matches!(err, KoalaError::MaybeDelivered { .. }), "{err:?}");
    assert_eq!(*seen.lock().unwrap(), 1);
    assert!(clock.sleeps().is_empty());
    let core: imagegen_core::Error = err.into();
    assert!(core.may_have_been_charged());
    assert!(!core.is_retryable());
}

#[tokio::test]
async fn a_connection_refused_before_sending_is_not_delivered_and_not_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let clock = ManualClock::new();
    let client = KoalaClient::builder(TEST_KEY)
        .base_url(format!("{closed}/api"))
        .clock(clock.shared())
        .http_client(common::http())
        .build()
        .unwrap();
    let err = client
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    assert!(matches!(err, KoalaError::NotDelivered { .. }), "{err:?}");
    assert!(clock.sleeps().is_empty());
    // The transport failure stays reachable as the source.
    let source = std::error::Error::source(&err).expect("a source");
    assert!(
        source
            .downcast_ref::<imagegen_http::TransportError>()
            .is_some(),
        "{source:?}"
    );
    let core: imagegen_core::Error = err.into();
    assert!(core.nothing_sent());
}

#[tokio::test]
async fn redirects_are_never_followed_and_the_key_stays_home() {
    let mut elsewhere = mockito::Server::new_async().await;
    let stolen = elsewhere
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let mut server = mockito::Server::new_async().await;
    let _redirect = server
        .mock("POST", PATH)
        .with_status(307)
        .with_header("location", &format!("{}/steal", elsewhere.url()))
        .create_async()
        .await;
    // The client's own HTTP client, not the test one: it must refuse redirects itself.
    let client = KoalaClient::builder(TEST_KEY)
        .base_url(format!("{}/api", server.url()))
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    let err = client
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    stolen.assert_async().await;
    let KoalaError::Redirect { status, location } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 307);
    assert!(location.as_deref().unwrap().ends_with("/steal"));
    let core: imagegen_core::Error = err.into();
    assert!(core.nothing_sent());
}

#[tokio::test]
async fn success_bodies_that_are_not_an_image_array_are_unreadable() {
    let cases = [
        (
            "object",
            r#"{"url":"https://koala.sh/api/image/v2-a-b.jpg"}"#,
        ),
        (
            "html",
            "<!DOCTYPE html><html><body>Just a moment...</body></html>",
        ),
        ("empty array", "[]"),
        ("truncated", r#"[{"url":"https://koala.sh/api/ima"#),
        ("no url", r#"[{"alt":"a cat"}]"#),
    ];
    let mut rows = Vec::new();
    for (name, body) in cases {
        let mut server = mockito::Server::new_async().await;
        let _mock = server
            .mock("POST", PATH)
            .with_status(200)
            .with_body(body)
            .create_async()
            .await;
        let err = common::client_without_retries(&server.url())
            .generate(&ImageGenerationRequest::new("cat"))
            .await
            .unwrap_err();
        let KoalaError::UnreadableResponse {
            status,
            body_prefix,
            ..
        } = &err
        else {
            panic!("{name}: {err:?}");
        };
        assert_eq!(*status, 200);
        assert_eq!(body_prefix, body);
        let core: imagegen_core::Error = err.clone().into();
        assert!(core.may_have_been_charged(), "{name}");
        rows.push(format!("{name}: {err}"));
    }
    insta::assert_snapshot!(rows.join("\n"));
}

#[tokio::test]
async fn one_bad_number_or_a_key_sent_twice_loses_only_that_field() {
    let cases = [
        (
            "number out of range",
            r#"[{"url":"https://koala.sh/api/image/v2-a.jpg","alt":"a cat","seed":1e999},{"url":"https://koala.sh/api/image/v2-b.jpg","alt":-1e400}]"#,
            ["a cat", ""],
        ),
        (
            "key sent twice",
            r#"[{"url":"https://koala.sh/api/image/v2-a.jpg","alt":"draft","alt":"a cat"},{"url":"https://koala.sh/api/image/v2-b.jpg","url":"https://koala.sh/api/image/v2-b.jpg"}]"#,
            ["a cat", ""],
        ),
    ];
    for (name, body, alts) in cases {
        assert!(
            serde_json::from_str::<Vec<koala_api::GeneratedImage>>(body).is_err(),
            "{name}: plain serde must refuse it for this test to mean anything"
        );
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", PATH)
            .with_status(200)
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
        let generation = common::client_without_retries(&server.url())
            .generate(&ImageGenerationRequest::new("cat").with_num_images(2))
            .await
            .unwrap();
        let urls: Vec<&str> = generation.images.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://koala.sh/api/image/v2-a.jpg",
                "https://koala.sh/api/image/v2-b.jpg"
            ],
            "{name}"
        );
        let got: Vec<&str> = generation
            .images
            .iter()
            .map(|i| i.alt.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(got, alts, "{name}");
        assert_eq!(generation.attempts, 1);
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_url_out_of_range_is_unreadable_and_shows_what_came_back() {
    let mut server = mockito::Server::new_async().await;
    let body = r#"[{"url":1e999,"alt":"a cat"}]"#;
    let _mock = server
        .mock("POST", PATH)
        .with_status(200)
        .with_body(body)
        .expect(1)
        .create_async()
        .await;
    let err = common::client_without_retries(&server.url())
        .generate(&ImageGenerationRequest::new("cat"))
        .await
        .unwrap_err();
    let KoalaError::UnreadableResponse {
        status: 200,
        detail,
        body_prefix,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(detail.contains("[0].url = 1e999"), "{detail}");
    assert_eq!(body_prefix, body);
    let core: imagegen_core::Error = err.clone().into();
    assert!(core.may_have_been_charged());
}

#[tokio::test]
async fn requests_refused_locally_send_nothing() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let client = common::client(&server.url(), &ManualClock::new(), KoalaPlan::Basic);
    let six: Vec<url::Url> = (0..6)
        .map(|i| url::Url::parse(&format!("https://example.com/{i}.png")).unwrap())
        .collect();
    let mut too_many = ImageGenerationRequest::new("cat");
    too_many.reference_images = six;
    let cases = [
        ImageGenerationRequest::new(" "),
        ImageGenerationRequest::new("cat").with_num_images(5),
        too_many,
        ImageGenerationRequest::new("cat").with_quality(Quality::Turbo),
        ImageGenerationRequest::new("cat")
            .with_model(Model::Standard)
            .with_size("4:3"),
        ImageGenerationRequest::new("cat").with_quality(Quality::High),
        ImageGenerationRequest::new("cat").with_model(Model::NanoBanana2),
    ];
    for request in &cases {
        let err = client.generate(request).await.unwrap_err();
        assert!(matches!(err, KoalaError::Invalid(_)), "{err:?}");
        let core: imagegen_core::Error = err.into();
        assert!(!core.may_have_been_charged());
    }
    let plan = client
        .generate(&ImageGenerationRequest::new("cat").with_quality(Quality::Medium))
        .await
        .unwrap_err();
    assert!(matches!(
        plan,
        KoalaError::Invalid(InvalidRequest::PlanRequired { .. })
    ));
    mock.assert_async().await;
}

#[tokio::test]
async fn debug_output_never_shows_the_key() {
    let client = common::client("http://127.0.0.1:9", &ManualClock::new(), KoalaPlan::Basic);
    let provider = koala_api::KoalaProvider::new(client.clone());
    for text in [
        format!("{client:?}"),
        format!("{provider:?}"),
        format!("{client:#?}"),
    ] {
        assert!(!text.contains(TEST_KEY), "{text}");
        assert!(!text.contains("test-4000"), "{text}");
    }
}
