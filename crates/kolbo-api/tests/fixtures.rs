//! Replays every fixture in `fixtures/kolbo/` against the client through mockito and
//! snapshots what the client makes of it: the parsed response, or the error with its
//! money classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Debug;

use imagegen_core::fixture::{Fixture, FixtureSource};
use imagegen_core::{Error, ManualClock};
use kolbo_api::types::{GenerateImageRequest, ModelsQuery, MoodboardQuery, VisualDnaQuery};
use kolbo_api::validate::check_request;
use kolbo_api::{KolboError, RetryPolicy};
use mockito::Matcher;

fn describe<T: Debug>(result: Result<T, KolboError>) -> String {
    match result {
        Ok(value) => format!("Ok({value:#?})"),
        Err(error) => {
            let display = error.to_string();
            let core = Error::from(error);
            format!(
                "Err(kolbo: {display}\n    core: {core}\n    {})",
                common::classify(&core)
            )
        }
    }
}

/// The generation id in a `/api/v1/generate/{id}/...` path.
fn id_in(path: &str) -> String {
    path.split('/').nth(4).unwrap().to_owned()
}

async fn replay(fixture: &Fixture) -> String {
    let mut server = mockito::Server::new_async().await;
    let clock = ManualClock::new();
    let client = common::client_with(&server, &clock, RetryPolicy::never());
    let path = fixture.request.path.as_str();
    let method = fixture.request.method.as_str();
    match (method, path) {
        ("POST", "/api/v1/generate/image") => {
            let body = fixture.request.body.clone().unwrap();
            let request: GenerateImageRequest = serde_json::from_value(body.clone()).unwrap();
            if check_request(&request, None).is_ok() {
                // What we send must be exactly the documented body.
                assert_eq!(serde_json::to_value(&request).unwrap(), body);
                let mock = common::fixture_mock(&mut server, fixture, 1)
                    .match_body(Matcher::Json(body))
                    .create_async()
                    .await;
                let result = describe(client.generate_image(&request).await);
                mock.assert_async().await;
                return result;
            }
            // A request we refuse locally: nothing is sent, then replay the answer to an
            // equivalent valid request to check how the answer is read.
            let silent = server
                .mock("POST", Matcher::Any)
                .expect(0)
                .create_async()
                .await;
            let local = describe(client.generate_image(&request).await);
            silent.assert_async().await;
            silent.remove_async().await;
            let mock = common::fixture_mock(&mut server, fixture, 1)
                .create_async()
                .await;
            let answer = describe(
                client
                    .generate_image(&GenerateImageRequest::new(
                        "A futuristic cityscape at night",
                    ))
                    .await,
            );
            mock.assert_async().await;
            format!("local check: {local}\nanswer to a valid request: {answer}")
        }
        ("GET", p) if p.ends_with("/status") => {
            let mock = common::fixture_mock(&mut server, fixture, 1)
                .create_async()
                .await;
            let result = describe(client.generation_status(&id_in(p)).await);
            mock.assert_async().await;
            result
        }
        ("POST", p) if p.ends_with("/cancel") => {
            let mock = common::fixture_mock(&mut server, fixture, 1)
                .match_body(Matcher::Json(serde_json::json!({})))
                .create_async()
                .await;
            let result = describe(client.cancel_generation(&id_in(p)).await);
            mock.assert_async().await;
            result
        }
        _ => {
            let mock = common::fixture_mock(&mut server, fixture, 1)
                .create_async()
                .await;
            let result = match path {
                "/api/v1/models" => describe(client.list_models(&ModelsQuery::images()).await),
                "/api/v1/account/credits" => describe(client.account_credits().await),
                "/api/v1/moodboards" => {
                    describe(client.list_moodboards(&MoodboardQuery::default()).await)
                }
                "/api/v1/visual-dna" => {
                    describe(client.list_visual_dna(&VisualDnaQuery::default()).await)
                }
                p if p.starts_with("/api/v1/moodboards/") => {
                    describe(client.moodboard(p.rsplit('/').next().unwrap()).await)
                }
                p if p.starts_with("/api/v1/visual-dna/") => {
                    describe(client.visual_dna(p.rsplit('/').next().unwrap()).await)
                }
                other => panic!("no replay for {method} {other}"),
            };
            mock.assert_async().await;
            result
        }
    }
}

#[test]
fn every_fixture_replays() {
    insta::glob!("../../../fixtures/kolbo", "*.json", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let fixture: Fixture = serde_json::from_str(&text).unwrap();
        assert_eq!(fixture.source, FixtureSource::Docs, "{path:?}");
        assert!(
            !text.contains("kolbo_live_"),
            "{path:?} holds a key-shaped string"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(replay(&fixture));
        insta::with_settings!({ description => fixture.description.clone(), omit_expression => true }, {
            insta::assert_snapshot!(outcome);
        });
    });
}

#[test]
fn the_fixture_set_covers_every_route_and_documented_error() {
    let names: Vec<String> = std::fs::read_dir(common::fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for required in [
        "generate_image.smart_select.json",
        "status.completed.json",
        "status.processing.json",
        "status.pending.json",
        "status.failed.json",
        "status.cancelled.json",
        "status.completed_zero_urls.json",
        "status.unknown_state.json",
        "cancel.cancelled.json",
        "models.image.json",
        "account_credits.json",
        "moodboards.list.json",
        "visual_dna.list.json",
        "error.invalid_api_key.json",
        "error.insufficient_credits.json",
        "error.insufficient_credits_402.json",
        "error.missing_fields.json",
        "error.generation_error.json",
        "error.model_not_found.json",
        "error.rate_limited.json",
        "error.rate_limited_no_retry_after.json",
        "error.html_bad_gateway.json",
        "error.truncated_json.json",
        "error.redirect.json",
    ] {
        assert!(names.iter().any(|n| n == required), "missing {required}");
    }
}
