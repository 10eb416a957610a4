//! Replays every recorded Koala exchange in `fixtures/koala/`: the client must send exactly
//! the recorded request body with the Bearer key, and read the recorded answer into the
//! result pinned by a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use imagegen_core::fixture::Fixture;
use koala_api::ImageGenerationRequest;
use mockito::Matcher;

fn fixtures() -> Vec<(String, Fixture)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/koala");
    let mut out: Vec<(String, Fixture)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let fixture: Fixture =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, fixture)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn fixture_requests_round_trip_through_the_wire_types() {
    let all = fixtures();
    assert!(
        all.len() >= 9,
        "expected the docs fixtures, found {}",
        all.len()
    );
    for (name, fixture) in all {
        let body = fixture.request.body.clone().unwrap();
        let request: ImageGenerationRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap(), body, "{name}");
        assert_eq!(
            fixture.request.headers["authorization"], "[redacted]",
            "{name}"
        );
        assert_eq!(fixture.request.path, "/api/image-generation/", "{name}");
    }
}

#[tokio::test]
async fn every_fixture_replays() {
    for (name, fixture) in fixtures() {
        let mut server = mockito::Server::new_async().await;
        let body = fixture.request.body.clone().unwrap();
        let mut mock = server
            .mock(
                fixture.request.method.as_str(),
                fixture.request.path.as_str(),
            )
            .match_header(
                "authorization",
                format!("Bearer {}", common::TEST_KEY).as_str(),
            )
            .match_header("content-type", "application/json")
            .match_body(Matcher::Json(body.clone()))
            .with_status(usize::from(fixture.response.status))
            .with_body(fixture.response.body_bytes());
        for (header, value) in &fixture.response.headers {
            mock = mock.with_header(header.as_str(), value);
        }
        let mock = mock.expect(1).create_async().await;

        let client = common::client_without_retries(&server.url());
        let request: ImageGenerationRequest = serde_json::from_value(body).unwrap();
        let result = client.generate(&request).await;
        mock.assert_async().await;

        let outcome = match result {
            Ok(generation) => serde_json::json!({
                "images": generation.images,
                "credits": generation.preflight.credits,
                "warnings": generation.preflight.warnings,
            }),
            Err(err) => {
                let core: imagegen_core::Error = err.clone().into();
                serde_json::json!({
                    "error": err.to_string(),
                    "core": core.to_string(),
                    "charged": core.may_have_been_charged(),
                    "retryable": core.is_retryable(),
                })
            }
        };
        insta::assert_json_snapshot!(format!("replay_{name}"), outcome);
    }
}
