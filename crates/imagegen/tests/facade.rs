//! The facade against the in-process simulator: generate, save, estimate, batch with a
//! budget, stop, journal and resume.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use imagegen::batch::{BatchOptions, SkipKind, parse_batch};
use imagegen::journal::{Journal, JournalRecord};
use imagegen::sim::{ImageSize, Route, SimConfig};
use imagegen::{Client, Credits, GenerateOptions, GenerationRequest, NoProgress};

fn sim_config(speed: f64) -> SimConfig {
    SimConfig::default()
        .with_speed(speed)
        .with_image_size(ImageSize::MaxSide(64))
}

async fn client(speed: f64) -> Client {
    Client::with_simulator(sim_config(speed)).await.unwrap()
}

fn keys(client: &Client) -> [String; 2] {
    let sim = client.simulator().unwrap();
    [
        sim.kolbo_api_key().to_owned(),
        sim.koala_api_key().to_owned(),
    ]
}

fn assert_no_key(client: &Client, text: &str) {
    for key in keys(client) {
        assert!(!text.contains(&key), "a key leaked into: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generates_the_cheapest_and_saves_with_sidecars() {
    let client = client(0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let request = GenerationRequest::builder("A lighthouse at dusk, watercolor")
        .count(2)
        .build()
        .unwrap();
    let generation = client.generate(&request).await.unwrap();
    assert_eq!(generation.images.len(), 2);
    assert!(!generation.route.is_empty());
    assert!(generation.credits_charged > Credits::ZERO);
    let saved = generation.save(dir.path()).await.unwrap();
    assert_eq!(saved.len(), 2);
    let names: Vec<String> = saved
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names[0].starts_with("a-lighthouse-at-dusk-watercolor-1."),
        "{names:?}"
    );
    assert!(
        names[1].starts_with("a-lighthouse-at-dusk-watercolor-2."),
        "{names:?}"
    );
    for image in &saved {
        let bytes = std::fs::read(&image.path).unwrap();
        assert_eq!(bytes.len() as u64, image.bytes);
        assert!(image.mime == "image/png" || image.mime == "image/jpeg");
        assert!(image.width.is_some() && image.height.is_some());
        let sidecar = std::fs::read_to_string(image.sidecar.as_ref().unwrap()).unwrap();
        assert_no_key(&client, &sidecar);
        let json: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
        for field in [
            "prompt",
            "provider",
            "model",
            "generation_id",
            "credits",
            "timings",
            "route",
            "source_url",
            "mime",
            "width",
            "height",
            "bytes",
        ] {
            assert!(json.get(field).is_some(), "sidecar lacks {field}: {json}");
        }
        assert_eq!(json["prompt"], "A lighthouse at dusk, watercolor");
    }
    // Saving again never overwrites: the next free numbers are used.
    let again = generation.save(dir.path()).await.unwrap();
    assert!(
        again[0].path.to_string_lossy().contains("watercolor-3."),
        "{:?}",
        again[0].path
    );
    // Image hosts never saw a key.
    let log = client.simulator().unwrap().request_log().entries();
    for entry in log
        .iter()
        .filter(|e| matches!(e.route, Route::CdnImage | Route::KoalaImage))
    {
        assert!(entry.auth.is_none(), "{entry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_explains_every_candidate_and_spends_nothing() {
    let client = client(0.0).await;
    let request = GenerationRequest::builder("a fox").build().unwrap();
    let estimate = client.estimate(&request).await.unwrap();
    assert!(estimate.best().is_some());
    assert!(estimate.candidates.iter().any(|c| c.provider == "kolbo"));
    assert!(estimate.candidates.iter().any(|c| c.provider == "koala"));
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 0);
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_cap_and_a_pinned_provider_are_obeyed() {
    let client = client(0.0).await;
    let koala = client
        .with_policy(|p| {
            p.allow_provider("koala")
                .max_credits_per_image(Credits::whole(5))
        })
        .unwrap();
    let request = GenerationRequest::builder("a heron").build().unwrap();
    let generation = koala.generate(&request).await.unwrap();
    assert!(generation.images.iter().all(|i| i.provider == "koala"));
    assert!(generation.credits_charged <= Credits::whole(5));

    let capped = client
        .with_policy(|p| p.max_credits_per_image(Credits::from_micros(1)))
        .unwrap();
    let err = capped.generate(&request).await.unwrap_err();
    assert_eq!(err.kind(), imagegen::ErrorKind::OverBudget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_credits_falls_back_to_the_other_provider() {
    let client = client(0.0).await;
    let sim = client.simulator().unwrap();
    let [kolbo_key, _] = keys(&client);
    sim.set_kolbo_credits(&kolbo_key, 0.0);
    let request = GenerationRequest::builder("a heron").build().unwrap();
    let generation = client.generate(&request).await.unwrap();
    assert!(generation.images.iter().all(|i| i.provider == "koala"));
    assert!(
        generation.route_summary().contains("refused"),
        "{}",
        generation.route_summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_short_at_its_budget_and_names_what_it_skipped() {
    let client = client(0.0)
        .await
        .with_policy(|p| {
            p.allow_provider_model("koala", "gpt-image-2")
                .run_budget(Credits::whole(3))
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path().join("journal.jsonl")).unwrap());
    let items = parse_batch("one fox\ntwo foxes\nthree foxes\nfour foxes\nfive foxes\n").unwrap();
    let options = BatchOptions::new(dir.path())
        .concurrency(2)
        .journal(journal.clone());
    let report = client.batch(items, &options).await;
    assert_eq!(report.images_saved(), 3);
    assert_eq!(report.credits_charged(), Credits::whole(3));
    let skipped: Vec<_> = report.skipped().collect();
    assert_eq!(skipped.len(), 2);
    assert!(skipped.iter().all(|s| s.kind == SkipKind::Budget));
    assert_eq!(report.failure_kind(), Some(imagegen::ErrorKind::OverBudget));
    assert!(client.budget().spent <= Credits::whole(3));
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 3);
    assert!(journal.unfinished().unwrap().is_empty());
    let records = journal.records().unwrap();
    let skipped_lines = records
        .iter()
        .filter(|r| matches!(r, JournalRecord::Skipped { .. }))
        .count();
    assert_eq!(skipped_lines, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_skips_the_prompts_not_started() {
    let client = client(0.0).await;
    client.stop_submitting();
    let dir = tempfile::tempdir().unwrap();
    let report = client
        .batch(
            parse_batch("a\nb\n").unwrap(),
            &BatchOptions::new(dir.path()),
        )
        .await;
    assert_eq!(report.skipped().count(), 2);
    assert!(report.skipped().all(|s| s.kind == SkipKind::Interrupted));
    client.submissions_settled().await;
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_run_is_resumed_from_its_journal_without_a_second_post() {
    // Slow enough that the job is still running when the run is abandoned.
    let client = client(0.2).await;
    let kolbo = client.with_policy(|p| p.allow_provider("kolbo")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.jsonl");
    let journal = Arc::new(Journal::open(&journal_path).unwrap());
    let request = GenerationRequest::builder("a slow lighthouse")
        .build()
        .unwrap();
    let options = GenerateOptions::default()
        .journal(journal.clone())
        .out_dir(dir.path());
    let run = {
        let kolbo = kolbo.clone();
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move { kolbo.generate_to_dir(&request, &dir, &options).await })
    };
    // Abandon the run as soon as the job is journaled (a crash, for the journal).
    let mut waited = Duration::ZERO;
    while journal.unfinished().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
        assert!(waited < Duration::from_secs(10), "no job was journaled");
    }
    run.abort();
    let _ = run.await;
    let open = journal.unfinished().unwrap();
    assert_eq!(open.len(), 1);

    let reopened = Journal::open(&journal_path).unwrap();
    let report = kolbo.resume(&reopened, &NoProgress).await.unwrap();
    assert_eq!(report.finished(), 1, "{report:?}");
    assert_eq!(report.images_saved(), 1);
    assert!(reopened.unfinished().unwrap().is_empty());
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    let saved = &report.jobs[0].saved[0];
    assert!(saved.path.starts_with(dir.path()));
    assert!(saved.path.exists());
    // The journal kept the plan the job was sent as: the sidecar says what was sent.
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved.sidecar.as_ref().unwrap()).unwrap())
            .unwrap();
    assert_eq!(sidecar["sent"]["images"], 1, "{sidecar}");
    assert!(sidecar["asked"].is_null());

    // Nothing left to do: a second resume does nothing at all.
    let again = kolbo.resume(&reopened, &NoProgress).await.unwrap();
    assert!(again.jobs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_records_what_was_asked_and_the_plan_that_was_sent() {
    let client = client(0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = imagegen::RequestOptions::new("a lighthouse at dusk");
    options.count = Some(2);
    options.aspect = Some("16:9".parse().unwrap());
    options.style = Some("watercolor".into());
    options.moodboard_id = Some("6601a1b2c3d4e5f6a7b8c9d0".into());
    options.max_credits = Some(Credits::whole(10));
    let (request, call) = options.into_parts().unwrap();
    let estimate = client.estimate_with(&request, &call).await.unwrap();
    let best = estimate.best().unwrap().clone();
    assert_eq!(best.provider, "kolbo", "a moodboard is Kolbo's");
    let report = client
        .generate_to_dir(
            &request,
            dir.path(),
            &GenerateOptions::default().call(call.clone()),
        )
        .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.saved.len(), 2);
    let generation = report.generation.as_ref().unwrap();
    assert!(generation.simulated);
    let asked = generation.asked.as_ref().unwrap();
    assert_eq!(asked.request, request);
    assert_eq!(asked.call, call);
    for saved in &report.saved {
        // The plan the estimate showed for this candidate is the one sent for the image.
        let sent = saved.image.sent.as_ref().unwrap();
        assert!(
            best.calls.contains(sent),
            "{sent:?} not in {:?}",
            best.calls
        );
        let text = std::fs::read_to_string(saved.sidecar.as_ref().unwrap()).unwrap();
        assert_no_key(&client, &text);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["simulated"], true, "{json}");
        assert_eq!(json["sent"], serde_json::to_value(sent).unwrap(), "{json}");
        assert_eq!(json["sent"]["shape"], "16:9", "{json}");
        assert_eq!(json["sent"]["style"]["kind"], "in_prompt", "{json}");
        assert_eq!(
            json["sent"]["options"]["moodboard_id"], "6601a1b2c3d4e5f6a7b8c9d0",
            "{json}"
        );
        // `asked` is the request as given (it reads back) and its routing choices.
        let back: GenerationRequest =
            serde_json::from_value(json["asked"]["request"].clone()).unwrap();
        assert_eq!(back, request);
        assert_eq!(json["asked"]["request"]["style"], "watercolor", "{json}");
        assert_eq!(json["asked"]["call"]["max_credits_per_image"], 10, "{json}");
        assert_eq!(json["asked"]["call"]["allow_reshape"], false, "{json}");
    }
}
