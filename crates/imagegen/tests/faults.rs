//! Paid work under faults, against the in-process simulator: a journal that cannot be
//! written, images that never come, a prompt that hangs, and a small soak of every fault
//! at once followed by `resume`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagegen::batch::{BatchEvent, BatchOptions, ItemOutcome, parse_batch};
use imagegen::journal::{Journal, read_journal};
use imagegen::sim::{Fault, FaultRule, ImageSize, Route, SimConfig};
use imagegen::{Client, Error, ErrorKind, GenerateOptions, GenerationRequest, NoProgress};
use imagegen_http::ImageDownloader;

fn sim_config() -> SimConfig {
    SimConfig::default()
        .with_speed(0.0)
        .with_image_size(ImageSize::MaxSide(48))
}

/// A client whose downloads give up fast: three GETs, 10 ms apart.
async fn impatient_client(config: SimConfig) -> Client {
    client_with_attempts(config, 3).await
}

/// A client whose downloads make at most `attempts` GETs, 10 ms apart.
async fn client_with_attempts(config: SimConfig, attempts: u32) -> Client {
    Client::simulated_builder(config)
        .await
        .unwrap()
        .kolbo_pacing(false)
        .downloader(
            ImageDownloader::builder()
                .backoff(Duration::from_millis(10), Duration::from_millis(20))
                .max_attempts(attempts)
                .deadline(Duration::from_secs(20))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn only(client: &Client, provider: &str) -> Client {
    let provider = provider.to_owned();
    client.with_policy(|p| p.allow_provider(provider)).unwrap()
}

/// Runs one prompt to `dir` and returns the journal left behind.
async fn run_one(client: &Client, dir: &Path, prompt: &str) -> (Arc<Journal>, imagegen::RunReport) {
    let journal = Arc::new(Journal::open(dir.join("journal.jsonl")).unwrap());
    let request = GenerationRequest::builder(prompt).build().unwrap();
    let options = GenerateOptions::default()
        .journal(journal.clone())
        .out_dir(dir);
    let report = client.generate_to_dir(&request, dir, &options).await;
    (journal, report)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_fails_the_batch_loudly_and_sends_nothing_more() {
    let client = Client::with_simulator(sim_config()).await.unwrap();
    let client = only(&client, "koala");
    let dir = tempfile::tempdir().unwrap();
    // Every write to /dev/full fails with "no space left on device".
    let journal = Arc::new(Journal::open("/dev/full").unwrap());
    let items = parse_batch("one\ntwo\nthree\nfour\nfive\nsix\n").unwrap();
    let options = BatchOptions::new(dir.path())
        .concurrency(1)
        .journal(journal);
    let report = client.batch(items, &options).await;

    assert_eq!(report.failure_kind(), Some(ErrorKind::Other));
    let first = report.ran().next().expect("the first prompt ran");
    let Some(Error::JournalWrite { jobs, .. }) = &first.error else {
        panic!("{:?}", first.error);
    };
    assert_eq!(jobs.len(), 1);
    let message = first.error.as_ref().unwrap().to_string();
    assert!(message.contains(&jobs[0].job_id), "{message}");
    assert!(message.contains("cannot find them"), "{message}");
    // Its images were still saved.
    assert_eq!(first.saved.len(), 1);
    // Nothing more was sent: every later prompt is skipped, saying why.
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 1);
    let skipped: Vec<_> = report.skipped().collect();
    assert_eq!(skipped.len(), 5);
    assert!(
        skipped.iter().all(|s| s.reason.contains("journal")),
        "{skipped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_closes_a_koala_job_whose_image_is_gone() {
    let client = impatient_client(sim_config()).await;
    let koala = only(&client, "koala");
    let sim = client.simulator().unwrap();
    sim.faults()
        .inject(FaultRule::always(Route::KoalaImage, Fault::status(404)));
    let dir = tempfile::tempdir().unwrap();
    let (journal, report) = run_one(&koala, dir.path(), "a vanished fox").await;
    assert!(report.saved.is_empty());
    assert_eq!(report.unfinished.len(), 1, "{report:?}");

    let resumed = koala.resume(&journal, &NoProgress).await.unwrap();
    assert_eq!(resumed.jobs.len(), 1);
    let job = &resumed.jobs[0];
    assert!(job.closed, "{job:?}");
    assert!(job.error.as_ref().unwrap().to_string().contains("404"));
    assert!(journal.unfinished().unwrap().is_empty());
    // The next resume has nothing to wait for.
    let again = koala.resume(&journal, &NoProgress).await.unwrap();
    assert!(again.jobs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_closes_a_koala_job_whose_image_keeps_failing_after_a_bounded_wait() {
    let client = impatient_client(sim_config()).await;
    let koala = only(&client, "koala");
    let sim = client.simulator().unwrap();
    sim.faults()
        .inject(FaultRule::always(Route::KoalaImage, Fault::status(500)));
    let dir = tempfile::tempdir().unwrap();
    let (journal, report) = run_one(&koala, dir.path(), "a broken heron").await;
    assert_eq!(report.unfinished.len(), 1, "{report:?}");

    let resumed = koala.resume(&journal, &NoProgress).await.unwrap();
    let job = &resumed.jobs[0];
    assert!(job.closed, "{job:?}");
    let reason = job.error.as_ref().unwrap().to_string();
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(resumed.still_open(), 0);
    assert!(journal.unfinished().unwrap().is_empty());
    // 3 GETs in the run, 3 in the resume.
    assert_eq!(sim.request_log().count(Route::KoalaImage), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_a_job_open_when_its_image_host_cannot_be_reached() {
    let client = impatient_client(sim_config()).await;
    let koala = only(&client, "koala");
    let sim = client.simulator().unwrap();
    let fault = sim
        .faults()
        .inject(FaultRule::always(Route::KoalaImage, Fault::ConnectionReset));
    let dir = tempfile::tempdir().unwrap();
    let (journal, report) = run_one(&koala, dir.path(), "an unreachable owl").await;
    assert_eq!(report.unfinished.len(), 1, "{report:?}");
    let resumed = koala.resume(&journal, &NoProgress).await.unwrap();
    assert!(!resumed.jobs[0].closed, "{resumed:?}");
    assert_eq!(journal.unfinished().unwrap().len(), 1);
    // Once the host answers, the next resume saves it.
    sim.faults().remove(fault);
    let resumed = koala.resume(&journal, &NoProgress).await.unwrap();
    assert_eq!(resumed.finished(), 1, "{resumed:?}");
    assert_eq!(resumed.images_saved(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_reads_past_bad_lines_and_reports_them() {
    let client = Client::with_simulator(sim_config()).await.unwrap();
    let kolbo = only(&client, "kolbo");
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.jsonl");
    let (journal, report) = run_one(&kolbo, dir.path(), "a red fox").await;
    assert!(report.is_success(), "{report:?}");
    // Re-open the finished job by dropping its `finished` line, and damage the file around it.
    let text = std::fs::read_to_string(&journal_path).unwrap();
    let accepted = text.lines().next().unwrap().to_owned();
    drop(journal);
    let mut damaged = Vec::new();
    damaged.extend_from_slice(b"{\"event\":\"from_the_future\",\"v\":7}\n");
    damaged.extend_from_slice(&[0xE2, 0x82, b'\n']);
    damaged.extend_from_slice(accepted.as_bytes());
    damaged.extend_from_slice(b"\n{\"event\":\"finished\",\"v\":1,\"at_");
    std::fs::write(&journal_path, &damaged).unwrap();

    let journal = Journal::open(&journal_path).unwrap();
    let resumed = kolbo.resume(&journal, &NoProgress).await.unwrap();
    assert_eq!(resumed.finished(), 1, "{resumed:?}");
    let bad: Vec<usize> = resumed.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(bad, [1, 2, 4]);
    assert!(resumed.bad_lines[2].torn);
    // The journal is readable and closed: the torn line did not swallow the new record.
    let after = read_journal(&journal_path).unwrap();
    assert!(after.unfinished().is_empty(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_prompt_holds_only_its_own_place() {
    let client = Client::with_simulator(sim_config()).await.unwrap();
    let koala = only(&client, "koala");
    let sim = client.simulator().unwrap();
    // The first image fetched hangs for a long while; every other answer is at once.
    sim.faults().inject(FaultRule::nth(
        Route::KoalaImage,
        1,
        Fault::SlowFirstByte(Duration::from_secs(2)),
    ));
    let dir = tempfile::tempdir().unwrap();
    let items = parse_batch("a\nb\nc\nd\ne\nf\n").unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let options = BatchOptions::new(dir.path()).concurrency(2);
    let finished = Arc::clone(&order);
    let report = koala
        .batch_each(items, &options, move |item| {
            finished.lock().unwrap().push(item.line);
        })
        .await;
    assert_eq!(report.images_saved(), 6, "{report:?}");
    let order = order.lock().unwrap().clone();
    // The first image fetched is line 1's or line 2's (they start together); every other
    // prompt went through the one free place while it hung.
    assert!(matches!(order.last(), Some(1 | 2)), "{order:?}");
    assert_eq!(order.len(), 6);
}

/// Whether `bytes` is a whole PNG or JPEG (ends with its end marker).
fn is_whole_image(bytes: &[u8]) -> bool {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    if bytes.starts_with(b"\x89PNG") {
        return bytes.ends_with(&IEND);
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return bytes.ends_with(&[0xFF, 0xD9]);
    }
    false
}

/// A small soak: about 5 % of every route's calls misbehave, in every way the simulator
/// knows, while a batch runs; then `resume` runs with the faults still on. Nothing
/// truncated is saved, no job is paid twice, every job ends, no temporary file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_fault_at_five_percent_then_resume_ends_every_job() {
    const PROMPTS: usize = 200;
    // Kolbo's rate limit (10 generations a minute) would only slow the soak down: it has
    // tests of its own.
    let client = client_with_attempts(sim_config().with_seed(7).without_rate_limits(), 6).await;
    let sim = client.simulator().unwrap();
    let faults = [
        Fault::status(500),
        Fault::status(503),
        Fault::HtmlErrorPage { status: 502 },
        Fault::ConnectionReset,
        Fault::ResetAfterProcessing,
        Fault::TruncatedJson,
        Fault::NotJson,
        Fault::TruncatedImage,
        Fault::ZeroUrls,
        Fault::provider_failure(),
        Fault::SlowFirstByte(Duration::from_millis(200)),
    ];
    let routes = [
        Route::KolboGenerate,
        Route::KolboStatus,
        Route::KoalaGenerate,
        Route::KoalaImage,
        Route::CdnImage,
    ];
    // Deterministic "random" calls: a small LCG picks about one call in twenty per route.
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut injected = Vec::new();
    for route in routes {
        for call in 1..=400u64 {
            if next() % 20 == 0 {
                let fault = faults[(next() as usize) % faults.len()].clone();
                let truncates = fault == Fault::TruncatedImage;
                injected.push((
                    sim.faults().inject(FaultRule::nth(route, call, fault)),
                    truncates,
                ));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path().join("journal.jsonl")).unwrap());
    // Half the prompts go to each provider.
    let text: String = (0..PROMPTS)
        .map(|n| {
            let provider = if n % 2 == 0 { "kolbo" } else { "koala" };
            format!("{{\"prompt\": \"soak prompt {n}\", \"provider\": \"{provider}\"}}\n")
        })
        .collect();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&accepted);
    let options = BatchOptions::new(dir.path())
        .concurrency(4)
        .journal(journal.clone())
        .events(Arc::new(move |event: BatchEvent| {
            if let BatchEvent::Accepted { job, .. } = event {
                seen.lock().unwrap().push(job.job_id);
            }
        }));
    let report = client.batch(parse_batch(&text).unwrap(), &options).await;
    assert_eq!(report.items.len(), PROMPTS);
    for item in &report.items {
        if let ItemOutcome::Ran(run) = &item.outcome {
            if let Some(e) = &run.error {
                eprintln!("line {}: {e}", item.line);
            }
        } else if let ItemOutcome::Skipped(s) = &item.outcome {
            eprintln!("line {} skipped: {}", item.line, s.reason);
        }
    }

    // With the faults still on, a job whose image host could not be reached at all stays
    // open (it may come back); one more resume ends it.
    let resumed = client.resume(&journal, &NoProgress).await.unwrap();
    let mut rounds = 1;
    let mut resumed_images = resumed.images_saved();
    while !journal.unfinished().unwrap().is_empty() {
        assert!(
            rounds < 3,
            "resume left jobs open: {:?}",
            journal.unfinished()
        );
        let again = client.resume(&journal, &NoProgress).await.unwrap();
        resumed_images += again.images_saved();
        rounds += 1;
    }

    // No job paid twice by our own retry: one journaled acceptance per accepted job.
    let accepted = accepted.lock().unwrap().clone();
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), accepted.len());

    // Every image file on disk is whole; no temporary file is left.
    let mut images = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.ends_with(".part"), "left behind: {name}");
        if name.ends_with(".png") || name.ends_with(".jpg") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(is_whole_image(&bytes), "truncated image saved: {name}");
            images += 1;
        }
    }
    let saved = report.images_saved() + resumed_images;
    assert_eq!(images, saved);
    let fired: Vec<bool> = injected
        .iter()
        .filter(|(id, _)| sim.faults().fired(*id) > 0)
        .map(|(_, truncates)| *truncates)
        .collect();
    let truncated = fired.iter().filter(|t| **t).count();
    eprintln!(
        "soak: {PROMPTS} prompts, {} faults fired ({truncated} truncated images), {} jobs accepted, {} images saved by the batch and {} by resume, {} jobs closed as failed by resume",
        fired.len(),
        accepted.len(),
        report.images_saved(),
        resumed.images_saved(),
        resumed
            .jobs
            .iter()
            .filter(|j| j.closed && j.error.is_some())
            .count(),
    );
    assert!(fired.len() >= 10, "only {} faults fired", fired.len());
    assert!(truncated >= 1, "no truncated image was served");
    assert!(saved >= PROMPTS * 3 / 4, "only {saved} images saved");
    let ran = report
        .items
        .iter()
        .filter(|i| matches!(i.outcome, ItemOutcome::Ran(_)))
        .count();
    assert!(ran > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runs_temporary_files_are_swept_by_the_next_save() {
    let client = Client::with_simulator(sim_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // What a run killed mid-download leaves: an unlocked part, minutes old.
    let stale = dir.path().join(".imagegen-Ab3xYz.part");
    std::fs::write(&stale, b"\x89PNG half an image").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (_journal, report) = run_one(&client, dir.path(), "a tidy fox").await;
    assert!(report.is_success(), "{report:?}");
    assert!(!stale.exists(), "the stale part was left");
    let parts = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")
        })
        .count();
    assert_eq!(parts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_written_stops_the_run_before_sending() {
    let client = Client::with_simulator(sim_config()).await.unwrap();
    let koala = only(&client, "koala");
    let dir = tempfile::tempdir().unwrap();
    let ledger = imagegen::ledger::open(&dir.path().join("ledger.sqlite3").display().to_string())
        .await
        .unwrap();
    // A database that went away under the run.
    ledger.close().await;
    let log = Arc::new(imagegen::ledger_log::LedgerLog::new(ledger));
    let items = parse_batch("one\ntwo\nthree\n").unwrap();
    let options = BatchOptions::new(dir.path()).concurrency(1).journal(log);
    let report = koala.batch(items, &options).await;
    // The request is recorded before it is sent (the write-ahead): with a ledger that
    // cannot be written, nothing is sent, so nothing is paid and left unrecorded.
    let skipped: Vec<_> = report.skipped().collect();
    assert_eq!(skipped.len(), 3, "{report:?}");
    assert!(
        skipped[0].reason.contains("cannot be written"),
        "{}",
        skipped[0].reason
    );
    let sim = client.simulator().unwrap();
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 0);
}
