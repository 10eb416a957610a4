//! The ledger's one test suite, run on both databases: every test below is written once
//! and declared for SQLite and PostgreSQL by `on_both_ledgers!` / `on_both_stores!`
//! (`NAME::sqlite`, `NAME::postgres`).
//!
//! PostgreSQL comes from `IMAGEGEN_TEST_POSTGRES_URL`, or a throwaway server the harness
//! starts (`imagegen_ledger::testing`); without one, the PostgreSQL tests fail saying how
//! to install it. The multi-process tests re-run this test binary in a child mode
//! (`child_process`, a no-op in a normal run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::TestDb;
use imagegen_core::{Credits, JobHandle, ManualClock, ModelId, ProviderId};
use imagegen_ledger::api_keys::ExposeSecret;
use imagegen_ledger::{
    AcceptedJob, AccountHash, ApiKey, ApiKeyId, ApiKeyRecord, Backend, GenerationState,
    HistoryQuery, HoldOutcome, IdempotencyBegin, ImageKey, ImageQuery, JobFinish, JobState,
    JournalEntry, JournalOutcome, KeyPeriod, Lease, Ledger, LedgerError, LedgerOptions, NewApiKey,
    NewGeneration, NewImage, NewRequest, RateSlot, ReservationState, SpendGroup, SpendQuery,
    api_key_hash, idempotency,
};

const DAY: u64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const JAN_1: u64 = 1_767_225_600_000;

fn kolbo() -> ProviderId {
    ProviderId::new("kolbo")
}

fn job(provider: &str, id: &str, at_ms: u64, prompt: &str, reserved: u32) -> AcceptedJob {
    AcceptedJob::new(
        JobHandle::new(provider, id, 1, at_ms),
        prompt,
        "out",
        Credits::whole(reserved),
    )
}

fn cr(text: &str) -> Credits {
    text.parse().unwrap()
}

on_both_ledgers!(
    jobs_round_trip,
    history_lists_newest_first_and_searches_prompts,
    spend_sums_charged_jobs,
    budgets_reserve_settle_and_release,
    finishing_a_job_settles_its_reservation,
    cooldowns_only_grow,
    journal_import_is_idempotent,
);

on_both_stores!(
    concurrent_reservations_never_overshoot,
    a_dropped_ledger_leaves_its_job_open,
    processes_share_one_budget,
    a_crashed_process_leaves_its_job_open,
);

async fn jobs_round_trip(ledger: Arc<dyn Ledger>) {
    let request = NewRequest::new(
        "a red fox",
        r#"{"prompt":"a red fox","count":2}"#,
        "out",
        "key-fox",
        JAN_1,
    )
    .in_batch("prompts.txt", 2);
    let request_id = ledger.record_request(&request).await.unwrap();

    let mut handle = JobHandle::new("Kolbo", "gen-1", 2, JAN_1 + 5).with_model("z-image/turbo");
    handle.state = serde_json::json!({"urls": ["https://x/1.png"]});
    let accepted = AcceptedJob::new(handle, "a red fox", "out", cr("1.5"))
        .with_plan_json(r#"{"model":"z-image/turbo"}"#)
        .with_request(request_id)
        .with_budget("daily");
    assert!(ledger.record_accepted(&accepted).await.unwrap());
    assert!(!ledger.record_accepted(&accepted).await.unwrap());

    let open = ledger.open_jobs().await.unwrap();
    assert_eq!(open.len(), 1);
    let stored = &open[0];
    assert_eq!(stored.provider, "kolbo");
    assert_eq!(stored.job_id, "gen-1");
    assert_eq!(stored.state, JobState::Accepted);
    assert_eq!(stored.handle, accepted.handle);
    assert_eq!(stored.model, Some(ModelId::new("z-image/turbo")));
    assert_eq!(
        stored.plan_json.as_deref(),
        Some(r#"{"model":"z-image/turbo"}"#)
    );
    assert_eq!(stored.request, Some(request_id));
    assert_eq!(stored.reserved, cr("1.5"));
    assert_eq!(stored.charged, None);
    assert_eq!(stored.accepted_at_ms, JAN_1 + 5);
    assert_eq!(stored.budget.as_deref(), Some("daily"));
    assert!(ledger.saved_jobs("key-fox").await.unwrap().is_empty());

    let images = vec![
        NewImage::new(1, "out/a-red-fox-2.png")
            .with_content("bb", 20, "image/png")
            .with_dimensions(1024, 768),
        NewImage::new(0, "out/a-red-fox-1.png")
            .with_content("aa", 10, "image/png")
            .with_dimensions(1024, 768)
            .with_alt_text("a fox")
            .with_source_url("https://cdn.example/1.png?X-Amz-Signature=secret#f"),
    ];
    let finish = JobFinish::done(JAN_1 + 9, images)
        .with_charged(cr("1.25"))
        .with_model("nano-banana-2");
    let finished = ledger.finish_job(&kolbo(), "gen-1", &finish).await.unwrap();
    assert!(finished.newly);
    assert_eq!(finished.state, JobState::Done);
    assert_eq!(finished.settlement, None);
    assert!(ledger.open_jobs().await.unwrap().is_empty());

    let done = ledger.job(&kolbo(), "gen-1").await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.charged, Some(cr("1.25")));
    assert_eq!(done.model, Some(ModelId::new("nano-banana-2")));
    assert_eq!(done.finished_at_ms, Some(JAN_1 + 9));

    let saved = ledger.saved_jobs("key-fox").await.unwrap();
    assert_eq!(saved.len(), 1);
    let images = &saved[0].images;
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].index, 0);
    assert_eq!(images[0].path, PathBuf::from("out/a-red-fox-1.png"));
    assert_eq!(images[0].sha256.as_deref(), Some("aa"));
    assert_eq!(images[0].bytes, Some(10));
    assert_eq!((images[0].width, images[0].height), (Some(1024), Some(768)));
    assert_eq!(images[0].alt_text.as_deref(), Some("a fox"));
    assert_eq!(
        images[0].source_url.as_deref(),
        Some("https://cdn.example/1.png")
    );
    assert_eq!(images[1].index, 1);
    assert_eq!(images[1].created_at_ms, JAN_1 + 9);
    assert!(ledger.saved_jobs("another-key").await.unwrap().is_empty());

    // Finishing again changes nothing; an unknown job is an error.
    let again = ledger
        .finish_job(&kolbo(), "gen-1", &JobFinish::failed(JAN_1 + 20, "late"))
        .await
        .unwrap();
    assert!(!again.newly);
    assert_eq!(again.state, JobState::Done);
    let done_again = ledger.job(&kolbo(), "gen-1").await.unwrap().unwrap();
    assert_eq!(done_again.error, None);
    let unknown = ledger
        .finish_job(&kolbo(), "nope", &JobFinish::done(1, vec![]))
        .await;
    assert!(
        matches!(unknown, Err(LedgerError::UnknownJob { .. })),
        "{unknown:?}"
    );
    assert!(ledger.job(&kolbo(), "nope").await.unwrap().is_none());
}

async fn history_lists_newest_first_and_searches_prompts(ledger: Arc<dyn Ledger>) {
    let prompts = [
        ("g1", "A Red Fox in the snow"),
        ("g2", "a koi pond"),
        ("g3", "50% off banner"),
        ("g4", "a fox, 500 pixels"),
    ];
    for (n, (id, prompt)) in (0u64..).zip(prompts) {
        let accepted = job("kolbo", id, JAN_1 + n * 1000, prompt, 2);
        ledger.record_accepted(&accepted).await.unwrap();
    }
    let images = vec![
        NewImage::new(0, "out/fox-1.png"),
        NewImage::new(1, "out/fox-2.png"),
    ];
    let finish = JobFinish::done(JAN_1 + 5000, images).with_charged(Credits::whole(2));
    ledger.finish_job(&kolbo(), "g1", &finish).await.unwrap();
    let failed = JobFinish::failed(JAN_1 + 6000, "content policy");
    ledger.finish_job(&kolbo(), "g2", &failed).await.unwrap();

    let all = ledger.history(&HistoryQuery::newest(10)).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.job_id.as_str()).collect();
    assert_eq!(ids, ["g4", "g3", "g2", "g1"]);
    let g1 = &all[3];
    assert_eq!(g1.state, JobState::Done);
    assert_eq!(g1.charged, Some(Credits::whole(2)));
    assert_eq!(
        g1.files,
        [
            PathBuf::from("out/fox-1.png"),
            PathBuf::from("out/fox-2.png")
        ]
    );
    assert_eq!(all[2].state, JobState::Failed);
    assert_eq!(all[2].error.as_deref(), Some("content policy"));
    assert!(all[2].files.is_empty());

    let newest_two = ledger.history(&HistoryQuery::newest(2)).await.unwrap();
    assert_eq!(newest_two.len(), 2);
    assert_eq!(newest_two[0].job_id, "g4");

    let foxes = ledger
        .history(&HistoryQuery::newest(10).matching("FOX"))
        .await
        .unwrap();
    let ids: Vec<&str> = foxes.iter().map(|e| e.job_id.as_str()).collect();
    assert_eq!(ids, ["g4", "g1"]);
    // Wildcards are literal.
    let percent = ledger
        .history(&HistoryQuery::newest(10).matching("50%"))
        .await
        .unwrap();
    let ids: Vec<&str> = percent.iter().map(|e| e.job_id.as_str()).collect();
    assert_eq!(ids, ["g3"]);
    let underscore = ledger
        .history(&HistoryQuery::newest(10).matching("_"))
        .await
        .unwrap();
    assert!(underscore.is_empty());
}

async fn spend_sums_charged_jobs(ledger: Arc<dyn Ledger>) {
    let cases = [
        ("kolbo", "k1", Some("nano-banana-2"), JAN_1, Some("8")),
        (
            "kolbo",
            "k2",
            Some("nano-banana-2"),
            JAN_1 + 1000,
            Some("8"),
        ),
        (
            "kolbo",
            "k3",
            Some("z-image/turbo"),
            JAN_1 + DAY,
            Some("0.5"),
        ),
        ("kolbo", "k4", None, JAN_1 + DAY, Some("30")),
        (
            "koala",
            "v1",
            Some("gpt-image-2"),
            JAN_1 + DAY + 5,
            Some("1"),
        ),
        // No known charge: not counted.
        ("koala", "v2", Some("gpt-image-2"), JAN_1, None),
    ];
    for (provider, id, model, at, charged) in cases {
        let mut handle = JobHandle::new(provider, id, 1, at);
        if let Some(model) = model {
            handle = handle.with_model(model);
        }
        if let Some(charged) = charged {
            handle = handle.with_credits_charged(cr(charged));
        }
        let accepted = AcceptedJob::new(handle, "p", "out", Credits::whole(30));
        ledger.record_accepted(&accepted).await.unwrap();
    }
    // A charge learned at the finish counts too.
    let finish = JobFinish::done(JAN_1 + DAY + 9, vec![]).with_charged(cr("2"));
    ledger
        .finish_job(&ProviderId::new("koala"), "v2", &finish)
        .await
        .unwrap();

    let by_provider = ledger
        .spend(&SpendQuery::by(SpendGroup::Provider))
        .await
        .unwrap();
    let rows: Vec<(String, Credits, u64)> = by_provider
        .iter()
        .map(|r| (r.provider.clone().unwrap().to_string(), r.credits, r.jobs))
        .collect();
    assert_eq!(
        rows,
        [
            ("koala".to_owned(), cr("3"), 2),
            ("kolbo".to_owned(), cr("46.5"), 4)
        ]
    );

    let by_model = ledger
        .spend(&SpendQuery::by(SpendGroup::Model))
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>, Credits)> = by_model
        .iter()
        .map(|r| {
            (
                r.provider.clone().unwrap().to_string(),
                r.model.as_ref().map(ToString::to_string),
                r.credits,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("koala".to_owned(), Some("gpt-image-2".to_owned()), cr("3")),
            ("kolbo".to_owned(), None, cr("30")),
            (
                "kolbo".to_owned(),
                Some("nano-banana-2".to_owned()),
                cr("16")
            ),
            (
                "kolbo".to_owned(),
                Some("z-image/turbo".to_owned()),
                cr("0.5")
            ),
        ]
    );

    let by_day = ledger
        .spend(&SpendQuery::by(SpendGroup::Day))
        .await
        .unwrap();
    let rows: Vec<(String, Credits, u64)> = by_day
        .iter()
        .map(|r| (r.day.clone().unwrap(), r.credits, r.jobs))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-01-01".to_owned(), cr("18"), 3),
            ("2026-01-02".to_owned(), cr("31.5"), 3)
        ]
    );

    let second_day = ledger
        .spend(&SpendQuery::by(SpendGroup::Provider).between(JAN_1 + DAY, JAN_1 + 2 * DAY))
        .await
        .unwrap();
    let total: u64 = second_day.iter().map(|r| r.credits.micros()).sum();
    assert_eq!(Credits::from_micros(total), cr("31.5"));
}

async fn budgets_reserve_settle_and_release(ledger: Arc<dyn Ledger>) {
    let unknown = ledger.reserve("nope", Credits::whole(1)).await;
    assert!(
        matches!(unknown, Err(LedgerError::UnknownBudget(_))),
        "{unknown:?}"
    );
    assert!(ledger.budget("nope").await.unwrap().is_none());

    ledger
        .set_budget("run", Some(Credits::whole(20)))
        .await
        .unwrap();
    let a = ledger.reserve("run", Credits::whole(12)).await.unwrap();
    let refused = ledger.reserve("run", Credits::whole(9)).await;
    match refused {
        Err(LedgerError::BudgetExceeded {
            budget,
            needed,
            remaining,
        }) => {
            assert_eq!(budget, "run");
            assert_eq!(needed, Credits::whole(9));
            assert_eq!(remaining, Credits::whole(8));
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    let status = ledger.budget("run").await.unwrap().unwrap();
    assert_eq!(status.reserved, Credits::whole(12));
    assert_eq!(status.remaining, Some(Credits::whole(8)));

    // Shrink: only down, only while held.
    let grow = ledger.shrink(a, Credits::whole(13)).await;
    assert!(
        matches!(grow, Err(LedgerError::CannotGrow { .. })),
        "{grow:?}"
    );
    ledger.shrink(a, Credits::whole(10)).await.unwrap();
    assert_eq!(
        ledger.budget("run").await.unwrap().unwrap().reserved,
        Credits::whole(10)
    );

    // Settle below the reservation: the rest comes back.
    let settled = ledger.settle(a, Credits::whole(7)).await.unwrap();
    assert_eq!(settled.reserved, Credits::whole(10));
    assert_eq!(settled.charged, Credits::whole(7));
    assert_eq!(settled.overshoot, None);
    // Never twice, never after.
    let twice = ledger.settle(a, Credits::whole(7)).await;
    assert!(
        matches!(
            twice,
            Err(LedgerError::ReservationClosed {
                state: ReservationState::Settled,
                ..
            })
        ),
        "{twice:?}"
    );
    assert!(ledger.release(a).await.is_err());
    assert!(ledger.shrink(a, Credits::ZERO).await.is_err());
    let status = ledger.budget("run").await.unwrap().unwrap();
    assert_eq!(
        (status.spent, status.reserved),
        (Credits::whole(7), Credits::ZERO)
    );

    // Release gives everything back, once.
    let b = ledger.reserve("run", Credits::whole(13)).await.unwrap();
    ledger.release(b).await.unwrap();
    let released_twice = ledger.release(b).await;
    assert!(
        matches!(
            released_twice,
            Err(LedgerError::ReservationClosed {
                state: ReservationState::Released,
                ..
            })
        ),
        "{released_twice:?}"
    );
    let missing = imagegen_ledger::ReservationId(987_654);
    assert!(matches!(
        ledger.settle(missing, Credits::ZERO).await,
        Err(LedgerError::UnknownReservation(_))
    ));

    // A charge above the reservation is counted in full and reported.
    let c = ledger.reserve("run", Credits::whole(5)).await.unwrap();
    let over = ledger.settle(c, Credits::whole(8)).await.unwrap();
    assert_eq!(over.overshoot, Some(Credits::whole(3)));
    let status = ledger.budget("run").await.unwrap().unwrap();
    assert_eq!(status.spent, Credits::whole(15));
    assert_eq!(status.overshoot, Credits::whole(3));
    assert_eq!(status.remaining, Some(Credits::whole(5)));

    // Changing the limit keeps what was spent.
    ledger
        .set_budget("run", Some(Credits::whole(10)))
        .await
        .unwrap();
    let status = ledger.budget("run").await.unwrap().unwrap();
    assert_eq!(
        (status.spent, status.remaining),
        (Credits::whole(15), Some(Credits::ZERO))
    );
    assert!(
        ledger
            .reserve("run", Credits::from_micros(1))
            .await
            .is_err()
    );
    assert!(ledger.reserve("run", Credits::ZERO).await.is_err());

    // Unlimited still counts.
    ledger.set_budget("open", None).await.unwrap();
    let d = ledger
        .reserve("open", Credits::whole(1_000_000))
        .await
        .unwrap();
    ledger.settle(d, cr("2.5")).await.unwrap();
    let open = ledger.budget("open").await.unwrap().unwrap();
    assert_eq!(
        (open.limit, open.remaining, open.spent),
        (None, None, cr("2.5"))
    );

    // Amounts past what the store holds are refused before anything is written.
    let huge = ledger.reserve("open", Credits::from_micros(u64::MAX)).await;
    assert!(
        matches!(huge, Err(LedgerError::TooLarge { .. })),
        "{huge:?}"
    );
}

async fn finishing_a_job_settles_its_reservation(ledger: Arc<dyn Ledger>) {
    ledger
        .set_budget("day", Some(Credits::whole(40)))
        .await
        .unwrap();

    // Done with a known charge: settled at it.
    let r1 = ledger.reserve("day", Credits::whole(16)).await.unwrap();
    let j1 = job("kolbo", "j1", JAN_1, "p", 16).with_reservation("day", r1);
    ledger.record_accepted(&j1).await.unwrap();
    let finish = JobFinish::done(JAN_1 + 1, vec![NewImage::new(0, "out/p-1.png")])
        .with_charged(Credits::whole(8));
    let finished = ledger.finish_job(&kolbo(), "j1", &finish).await.unwrap();
    let settlement = finished.settlement.unwrap();
    assert_eq!(settlement.charged, Credits::whole(8));
    assert_eq!(settlement.reserved, Credits::whole(16));
    let closed = ledger.settle(r1, Credits::whole(8)).await;
    assert!(
        matches!(closed, Err(LedgerError::ReservationClosed { .. })),
        "{closed:?}"
    );

    // Failed with no charge known: the whole reservation counts (it may have been paid).
    let r2 = ledger.reserve("day", Credits::whole(10)).await.unwrap();
    let j2 = job("kolbo", "j2", JAN_1, "p", 10).with_reservation("day", r2);
    ledger.record_accepted(&j2).await.unwrap();
    let failed = ledger
        .finish_job(&kolbo(), "j2", &JobFinish::failed(JAN_1 + 2, "timed out"))
        .await
        .unwrap();
    assert_eq!(
        failed.settlement.map(|s| s.charged),
        Some(Credits::whole(10))
    );

    // Failed and refunded: nothing counts.
    let r3 = ledger.reserve("day", Credits::whole(10)).await.unwrap();
    let j3 = job("kolbo", "j3", JAN_1, "p", 10).with_reservation("day", r3);
    ledger.record_accepted(&j3).await.unwrap();
    let refunded = JobFinish::failed(JAN_1 + 3, "refunded").with_charged(Credits::ZERO);
    ledger.finish_job(&kolbo(), "j3", &refunded).await.unwrap();

    // A reservation the caller already settled is left alone.
    let r4 = ledger.reserve("day", Credits::whole(4)).await.unwrap();
    let j4 = job("kolbo", "j4", JAN_1, "p", 4).with_reservation("day", r4);
    ledger.record_accepted(&j4).await.unwrap();
    ledger.settle(r4, Credits::whole(4)).await.unwrap();
    let finished = ledger
        .finish_job(&kolbo(), "j4", &JobFinish::done(JAN_1 + 4, vec![]))
        .await
        .unwrap();
    assert_eq!(finished.settlement, None);

    let day = ledger.budget("day").await.unwrap().unwrap();
    assert_eq!(day.spent, Credits::whole(8 + 10 + 4));
    assert_eq!(day.reserved, Credits::ZERO);
    let stored = ledger.job(&kolbo(), "j1").await.unwrap().unwrap();
    assert_eq!(stored.reservation, Some(r1));
}

async fn cooldowns_only_grow(ledger: Arc<dyn Ledger>) {
    let model = ModelId::new("nano-banana-2");
    ledger
        .set_cooldown(&kolbo(), Some(&model), 5_000)
        .await
        .unwrap();
    ledger
        .set_cooldown(&kolbo(), Some(&model), 3_000)
        .await
        .unwrap();
    assert_eq!(
        ledger
            .cooldown(&kolbo(), Some(&model), 1_000)
            .await
            .unwrap(),
        Some(5_000)
    );
    ledger
        .set_cooldown(&kolbo(), Some(&model), 9_000)
        .await
        .unwrap();
    assert_eq!(
        ledger
            .cooldown(&kolbo(), Some(&model), 1_000)
            .await
            .unwrap(),
        Some(9_000)
    );
    assert_eq!(
        ledger
            .cooldown(&kolbo(), Some(&model), 9_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(ledger.cooldown(&kolbo(), None, 1_000).await.unwrap(), None);
    ledger.set_cooldown(&kolbo(), None, 4_000).await.unwrap();
    assert_eq!(
        ledger.cooldown(&kolbo(), None, 1_000).await.unwrap(),
        Some(4_000)
    );

    let running = ledger.cooldowns(4_500).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].model, Some(model.clone()));
    let running = ledger.cooldowns(0).await.unwrap();
    assert_eq!(running.len(), 2);
    assert_eq!(running[0].model, None);
}

async fn journal_import_is_idempotent(ledger: Arc<dyn Ledger>) {
    let accepted = |id: &str, prompt: &str| JournalEntry::Accepted {
        at_ms: JAN_1,
        job: JobHandle::new("kolbo", id, 2, 0),
        prompt: prompt.into(),
        out_dir: "out".into(),
        reserved: cr("1.5"),
    };
    let finished = |id: &str, outcome: JournalOutcome| JournalEntry::Finished {
        at_ms: JAN_1 + 10,
        provider: kolbo(),
        job_id: id.into(),
        outcome,
    };
    let entries = vec![
        accepted("a", "a fox"),
        accepted("b", "a heron"),
        finished(
            "a",
            JournalOutcome::Saved {
                paths: vec!["out/a-fox-1.png".into(), "out/a-fox-2.png".into()],
            },
        ),
        JournalEntry::Skipped {
            at_ms: JAN_1,
            prompt: "a lighthouse".into(),
            reason: "budget".into(),
        },
        accepted("c", "a koi"),
        finished(
            "c",
            JournalOutcome::Failed {
                error: "refused".into(),
            },
        ),
        finished(
            "ghost",
            JournalOutcome::Failed {
                error: "never accepted here".into(),
            },
        ),
    ];
    let first = ledger.import_journal(&entries).await.unwrap();
    assert_eq!(
        (
            first.accepted,
            first.finished,
            first.already_known,
            first.unmatched,
            first.skipped
        ),
        (3, 2, 0, 1, 1)
    );
    let open = ledger.open_jobs().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].job_id, "b");
    assert_eq!(open[0].prompt, "a heron");
    assert_eq!(open[0].reserved, cr("1.5"));
    assert_eq!(
        open[0].accepted_at_ms, JAN_1,
        "a handle without a time takes the record's"
    );
    let a = ledger.job(&kolbo(), "a").await.unwrap().unwrap();
    assert_eq!(a.state, JobState::Done);
    let c = ledger.job(&kolbo(), "c").await.unwrap().unwrap();
    assert_eq!(
        (c.state, c.error.as_deref()),
        (JobState::Failed, Some("refused"))
    );

    let second = ledger.import_journal(&entries).await.unwrap();
    assert_eq!(
        (
            second.accepted,
            second.finished,
            second.already_known,
            second.unmatched
        ),
        (0, 0, 5, 1)
    );
    let history = ledger.history(&HistoryQuery::newest(100)).await.unwrap();
    assert_eq!(history.len(), 3);
    let a = history.iter().find(|e| e.job_id == "a").unwrap();
    assert_eq!(a.files.len(), 2);
}

/// The issue's done-means: 200 tasks each reserve one image's price against a budget
/// worth 37 images, over a pool of 8 connections: exactly 37 succeed, and after
/// settling, spent is the limit and no more.
async fn concurrent_reservations_never_overshoot(db: TestDb) -> TestDb {
    let ledger = db
        .open_with(&LedgerOptions::default().with_max_connections(8))
        .await;
    let price = cr("1.5");
    let limit = price.checked_mul(37).unwrap();
    ledger.set_budget("batch", Some(limit)).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move { ledger.reserve("batch", price).await })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => held.push(id),
            Err(LedgerError::BudgetExceeded { .. }) => {}
            Err(other) => panic!("a reservation failed: {other:?}"),
        }
    }
    assert_eq!(held.len(), 37);
    let status = ledger.budget("batch").await.unwrap().unwrap();
    assert_eq!(status.reserved, limit);
    let settles: Vec<_> = held
        .into_iter()
        .map(|id| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move { ledger.settle(id, price).await })
        })
        .collect();
    for settle in settles {
        settle.await.unwrap().unwrap();
    }
    let status = ledger.budget("batch").await.unwrap().unwrap();
    assert_eq!(status.spent, limit);
    assert!(status.spent <= limit);
    assert_eq!(status.reserved, Credits::ZERO);
    ledger.close().await;
    db
}

/// A job recorded, then the ledger dropped without finishing it or closing (a crash of
/// this process, as far as the store can tell): a new ledger on the same URL lists it.
async fn a_dropped_ledger_leaves_its_job_open(db: TestDb) -> TestDb {
    let ledger = db.open().await;
    let accepted = job("kolbo", "paid", JAN_1, "a paid fox", 8);
    ledger.record_accepted(&accepted).await.unwrap();
    drop(ledger);
    let reopened = db.open().await;
    let open = reopened.open_jobs().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].handle, accepted.handle);
    reopened.close().await;
    db
}

/// The environment variables of the child mode.
const CHILD_MODE: &str = "IMAGEGEN_LEDGER_TEST_CHILD";
const CHILD_URL: &str = "IMAGEGEN_LEDGER_TEST_CHILD_URL";
const CHILD_TASKS: usize = 50;
const CHILD_PREFIX: &str = "LEDGER_CHILD";

/// Starts this test binary again in child mode `mode` on `url`.
fn spawn_child(mode: &str, url: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_URL, url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads `child`'s stdout up to its next `LEDGER_CHILD` line.
fn child_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the child process ended early"
        );
        // The test harness may have written `test child_process ... ` before it.
        if let Some(at) = line.find(CHILD_PREFIX) {
            return line[at + CHILD_PREFIX.len()..].trim().to_owned();
        }
    }
}

/// Four processes, each with its own pool, reserve one image's price 50 times at once
/// against the same budget worth 37 images: exactly 37 succeed in all.
async fn processes_share_one_budget(db: TestDb) -> TestDb {
    let ledger = db.open().await;
    let price = cr("1.5");
    let limit = price.checked_mul(37).unwrap();
    ledger.set_budget("shared", Some(limit)).await.unwrap();
    let url = db.url.clone();
    let results = tokio::task::spawn_blocking(move || {
        let mut children: Vec<_> = (0..4).map(|_| spawn_child("reserve", &url)).collect();
        let mut readers: Vec<_> = children
            .iter_mut()
            .map(|c| BufReader::new(c.stdout.take().unwrap()))
            .collect();
        // Every child has its ledger open before any starts reserving.
        for reader in &mut readers {
            assert_eq!(child_line(reader), "ready");
        }
        for child in &mut children {
            writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
        }
        let results: Vec<String> = readers.iter_mut().map(child_line).collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        results
    })
    .await
    .unwrap();
    let mut reserved = 0;
    for result in &results {
        let (ok, errors) = parse_child_result(result);
        assert_eq!(errors, 0, "{result}");
        reserved += ok;
    }
    assert_eq!(reserved, 37, "{results:?}");
    let status = ledger.budget("shared").await.unwrap().unwrap();
    assert_eq!(status.spent, limit);
    assert_eq!(status.reserved, Credits::ZERO);
    ledger.close().await;
    db
}

fn parse_child_result(result: &str) -> (usize, usize) {
    let field = |name: &str| {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {name} in {result:?}"))
    };
    (field("ok"), field("errors"))
}

/// A process records an accepted job and is killed (SIGKILL): a new ledger lists the job
/// as open.
async fn a_crashed_process_leaves_its_job_open(db: TestDb) -> TestDb {
    // Migrate first, so the child only writes.
    db.open().await.close().await;
    let url = db.url.clone();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = spawn_child("crash", &url);
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        assert_eq!(child_line(&mut reader), "recorded");
        // SIGKILL: no destructor, no pool shutdown, no core file.
        child.kill().unwrap();
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(!status.success(), "the child was killed");
    let ledger = db.open().await;
    let open = ledger.open_jobs().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].job_id, "crashed-job");
    ledger.close().await;
    db
}

/// The child mode of the multi-process tests: does nothing in a normal run.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let url = std::env::var(CHILD_URL).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A child never outlives a stuck parent: it gives up after a minute.
    runtime.spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        eprintln!("child process: timed out");
        std::process::exit(3);
    });
    runtime.block_on(async move {
        let options = LedgerOptions::default().with_max_connections(4);
        let ledger = imagegen_ledger::open_with(&url, &options).await.unwrap();
        let mut out = std::io::stdout();
        match mode.as_str() {
            "reserve" => {
                writeln!(out, "{CHILD_PREFIX} ready").unwrap();
                out.flush().unwrap();
                let mut go = String::new();
                std::io::stdin().read_line(&mut go).unwrap();
                let price = cr("1.5");
                let tasks: Vec<_> = (0..CHILD_TASKS)
                    .map(|_| {
                        let ledger = Arc::clone(&ledger);
                        tokio::spawn(async move {
                            let id = ledger.reserve("shared", price).await?;
                            ledger.settle(id, price).await.map(|_| ())
                        })
                    })
                    .collect();
                let (mut ok, mut refused, mut errors) = (0, 0, Vec::new());
                for task in tasks {
                    match task.await.unwrap() {
                        Ok(()) => ok += 1,
                        Err(LedgerError::BudgetExceeded { .. }) => refused += 1,
                        Err(other) => errors.push(format!("{other:?}")),
                    }
                }
                for error in &errors {
                    eprintln!("child error: {error}");
                }
                writeln!(
                    out,
                    "{CHILD_PREFIX} ok={ok} refused={refused} errors={}",
                    errors.len()
                )
                .unwrap();
                out.flush().unwrap();
                ledger.close().await;
            }
            "crash" => {
                let accepted = job("kolbo", "crashed-job", JAN_1, "a fox", 8);
                assert!(ledger.record_accepted(&accepted).await.unwrap());
                writeln!(out, "{CHILD_PREFIX} recorded").unwrap();
                out.flush().unwrap();
                // Wait to be killed (the parent's SIGKILL is the crash).
                let mut never = String::new();
                std::io::stdin().read_line(&mut never).unwrap();
                std::process::abort();
            }
            other => panic!("unknown child mode {other}"),
        }
    });
}

/// A password in a PostgreSQL URL never shows: not in an error, not in `Debug`, not in the
/// ledger's URL.
#[tokio::test]
async fn postgres_passwords_never_show() {
    let refused = imagegen_ledger::open_with(
        "postgres://app:hunter2@127.0.0.1:1/ledger",
        &LedgerOptions::default().with_acquire_timeout(std::time::Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    let mut shown = format!("{refused} {refused:?}");
    let mut source = std::error::Error::source(&refused);
    while let Some(cause) = source {
        shown.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");

    // The test server trusts every connection, so any password opens it.
    let db = TestDb::new(Backend::Postgres).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("hunter2")).unwrap();
    let ledger = imagegen_ledger::open(url.as_str()).await.unwrap();
    let shown = format!("{ledger:?} {}", ledger.url());
    assert!(!shown.contains("hunter2"), "{shown}");
    ledger.close().await;
    db.finish().await;
}

/// Ledgers opening a new SQLite file at the same moment take turns migrating it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_new_file_opened_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("new.sqlite3").display());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { imagegen_ledger::open(&url).await })
        })
        .collect();
    for open in opens {
        let ledger = open.await.unwrap().unwrap();
        assert!(ledger.open_jobs().await.unwrap().is_empty());
        ledger.close().await;
    }
}

/// The SQLite file is in WAL mode, so readers never wait for a writer.
#[tokio::test]
async fn sqlite_file_is_in_wal_mode() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Sqlite).await;
    let ledger = db.open().await;
    ledger.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

// Gateway keys and idempotency records (`imagegen serve`).

on_both_ledgers!(
    api_keys_are_created_found_listed_and_revoked,
    api_key_names_hashes_and_prefixes_are_checked,
    idempotency_records_replay_and_conflict,
    concurrent_idempotent_begins_start_once,
    concurrent_key_budgets_are_created_once,
    concurrent_key_creations_keep_names_unique,
);

on_both_stores!(key_budgets_follow_the_period);

fn new_key(name: &str) -> (ApiKey, NewApiKey) {
    let key = ApiKey::generate().unwrap();
    let new = NewApiKey::new(name, &key);
    (key, new)
}

async fn api_keys_are_created_found_listed_and_revoked(ledger: Arc<dyn Ledger>) {
    let (bot, new) = new_key("ci-bot");
    let new = new
        .with_limit(Credits::whole(50))
        .with_period(KeyPeriod::Month);
    let created = ledger.create_api_key(&new).await.unwrap();
    assert_eq!(created.name, "ci-bot");
    assert_eq!(created.prefix, bot.prefix());
    assert_eq!(created.prefix, &bot.secret().expose_secret()[..10]);
    assert_eq!(created.limit, Some(Credits::whole(50)));
    assert_eq!(created.period, KeyPeriod::Month);
    assert!(created.created_at_ms > 0);
    assert_eq!(created.revoked_at_ms, None);
    assert_eq!(
        (created.spent, created.reserved),
        (Credits::ZERO, Credits::ZERO)
    );

    // Found by the hash of the presented key, never by the key itself.
    let presented = bot.secret().expose_secret();
    let found = ledger.find_api_key(&api_key_hash(presented)).await.unwrap();
    assert_eq!(found.as_ref(), Some(&created));
    assert!(ledger.find_api_key(presented).await.unwrap().is_none());
    assert!(
        ledger
            .find_api_key(&api_key_hash(
                "igk_0000000000000000000000000000000000000000"
            ))
            .await
            .unwrap()
            .is_none()
    );

    // An unlimited key counted in total: its spend shows in the list.
    let (open, new) = new_key("open");
    let open_record = ledger.create_api_key(&new).await.unwrap();
    assert_eq!(
        (open_record.limit, open_record.period),
        (None, KeyPeriod::Total)
    );
    assert!(open_record.id > created.id);
    let budget = ledger
        .ensure_key_budget(&open_record, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(budget, format!("key:{}:total", open_record.id.0));
    let held = ledger.reserve(&budget, cr("2.5")).await.unwrap();
    ledger.settle(held, cr("1.5")).await.unwrap();
    let pending = ledger.reserve(&budget, Credits::whole(4)).await.unwrap();

    let keys = ledger.list_api_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["ci-bot", "open"]
    );
    assert_eq!(
        (keys[1].spent, keys[1].reserved),
        (cr("1.5"), Credits::whole(4))
    );
    assert_eq!(keys[0].spent, Credits::ZERO);
    ledger.release(pending).await.unwrap();
    // What is listed never holds a key or its hash.
    let listed = serde_json::to_string(&keys).unwrap();
    for secret in [&bot, &open] {
        assert!(!listed.contains(secret.secret().expose_secret()));
        assert!(!listed.contains(secret.hash()));
    }
    assert!(listed.contains(r#""period":"month""#), "{listed}");

    // Revoking: by prefix, by name, by the whole key; never twice.
    assert!(!ledger.revoke_api_key("nobody").await.unwrap());
    assert!(ledger.revoke_api_key(bot.prefix()).await.unwrap());
    assert!(!ledger.revoke_api_key(bot.prefix()).await.unwrap());
    assert!(!ledger.revoke_api_key("ci-bot").await.unwrap());
    assert!(ledger.find_api_key(bot.hash()).await.unwrap().is_none());
    assert!(
        ledger
            .revoke_api_key(open.secret().expose_secret())
            .await
            .unwrap()
    );
    assert!(ledger.find_api_key(open.hash()).await.unwrap().is_none());
    let keys = ledger.list_api_keys().await.unwrap();
    assert!(
        keys.iter()
            .all(|k| k.revoked_at_ms.is_some() && !k.is_live())
    );
    // A revoked key has no budget to spend from.
    assert_eq!(keys[1].budget_name(0), None);
    assert_eq!(ledger.ensure_key_budget(&keys[1], 0).await.unwrap(), None);

    // A revoked key's name may be used again, by a new key with a new id.
    let (again, new) = new_key("ci-bot");
    let reused = ledger.create_api_key(&new).await.unwrap();
    assert!(reused.id > open_record.id);
    assert_eq!(
        ledger
            .find_api_key(again.hash())
            .await
            .unwrap()
            .map(|k| k.id),
        Some(reused.id)
    );
    assert_eq!(ledger.list_api_keys().await.unwrap().len(), 3);
}

async fn api_key_names_hashes_and_prefixes_are_checked(ledger: Arc<dyn Ledger>) {
    let (_, first) = new_key("team");
    ledger.create_api_key(&first).await.unwrap();
    let (_, same_name) = new_key("team");
    let duplicate = ledger.create_api_key(&same_name).await;
    assert!(
        matches!(&duplicate, Err(LedgerError::DuplicateApiKeyName { name }) if name == "team"),
        "{duplicate:?}"
    );
    for bad in ["", " team", "igk_team", "a\tb"] {
        let (_, new) = new_key(bad);
        let refused = ledger.create_api_key(&new).await;
        assert!(
            matches!(refused, Err(LedgerError::InvalidApiKeyName { .. })),
            "{bad:?}: {refused:?}"
        );
    }
    // The plaintext in place of the hash is refused, never stored.
    let (key, mut plaintext) = new_key("leaky");
    plaintext.key_hash = key.secret().expose_secret().to_owned();
    let refused = ledger.create_api_key(&plaintext).await;
    assert!(
        matches!(refused, Err(LedgerError::InvalidApiKey { .. })),
        "{refused:?}"
    );
    // One key under two names.
    let twice = NewApiKey::new("twice", &key);
    ledger.create_api_key(&twice).await.unwrap();
    let again = NewApiKey::new("twice-again", &key);
    let refused = ledger.create_api_key(&again).await;
    assert!(
        matches!(refused, Err(LedgerError::DuplicateApiKey)),
        "{refused:?}"
    );
    assert_eq!(ledger.list_api_keys().await.unwrap().len(), 2);

    // Two live keys sharing a prefix: revoking by it would be a guess, so it is refused.
    let a = ApiKey::parse("igk_abcdef0000000000000000000000000000000001").unwrap();
    let b = ApiKey::parse("igk_abcdef0000000000000000000000000000000002").unwrap();
    ledger
        .create_api_key(&NewApiKey::new("a", &a))
        .await
        .unwrap();
    ledger
        .create_api_key(&NewApiKey::new("b", &b))
        .await
        .unwrap();
    let ambiguous = ledger.revoke_api_key("igk_abcdef").await;
    assert!(
        matches!(
            ambiguous,
            Err(LedgerError::AmbiguousApiKey { matches: 2, .. })
        ),
        "{ambiguous:?}"
    );
    assert!(ledger.find_api_key(a.hash()).await.unwrap().is_some());
    assert!(ledger.revoke_api_key("a").await.unwrap());
    assert!(ledger.revoke_api_key("igk_abcdef").await.unwrap());
    assert!(ledger.find_api_key(b.hash()).await.unwrap().is_none());
}

async fn idempotency_records_replay_and_conflict(ledger: Arc<dyn Ledger>) {
    let hash = idempotency::request_hash(b"POST /v1/images/generations {\"prompt\":\"a fox\"}");
    let other = idempotency::request_hash(b"POST /v1/images/generations {\"prompt\":\"a koi\"}");
    let begin = |scope: &'static str, key: &'static str, hash: String| {
        let ledger = Arc::clone(&ledger);
        async move {
            ledger
                .begin_idempotent(scope, key, &hash, None, JAN_1)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        begin("key:1", "k", hash.clone()).await,
        IdempotencyBegin::Started
    );
    assert_eq!(
        begin("key:1", "k", hash.clone()).await,
        IdempotencyBegin::Running
    );
    // A claim names its generation in the same statement.
    assert_eq!(
        ledger
            .begin_idempotent("key:1", "linked", &hash, Some("req_77"), JAN_1)
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        ledger
            .idempotent_generation("key:1", "linked")
            .await
            .unwrap()
            .as_deref(),
        Some("req_77")
    );
    assert!(ledger.abandon_idempotent("key:1", "linked").await.unwrap());
    assert_eq!(
        begin("key:1", "k", other.clone()).await,
        IdempotencyBegin::Conflict
    );
    // Scopes are apart: another key's caller may use the same idempotency key.
    assert_eq!(
        begin("key:2", "k", other.clone()).await,
        IdempotencyBegin::Started
    );
    assert_eq!(
        begin("anonymous", "k", hash.clone()).await,
        IdempotencyBegin::Started
    );

    let response = r#"{"created":1,"data":[{"url":"https://x/1.png"}]}"#;
    assert!(
        ledger
            .finish_idempotent("key:1", "k", 200, response)
            .await
            .unwrap()
    );
    // The first response stands; a finished record is never abandoned.
    assert!(
        !ledger
            .finish_idempotent("key:1", "k", 500, "{}")
            .await
            .unwrap()
    );
    assert!(!ledger.abandon_idempotent("key:1", "k").await.unwrap());
    let done = IdempotencyBegin::Done {
        status: 200,
        response: response.to_owned(),
    };
    assert_eq!(begin("key:1", "k", hash.clone()).await, done);
    assert_eq!(
        begin("key:1", "k", other.clone()).await,
        IdempotencyBegin::Conflict
    );
    assert!(
        !ledger
            .finish_idempotent("key:1", "nope", 200, "{}")
            .await
            .unwrap()
    );

    // A request that failed with nothing charged gives its key back.
    assert!(ledger.abandon_idempotent("key:2", "k").await.unwrap());
    assert!(!ledger.abandon_idempotent("key:2", "k").await.unwrap());
    assert_eq!(
        begin("key:2", "k", hash.clone()).await,
        IdempotencyBegin::Started
    );
    assert!(
        ledger
            .finish_idempotent("key:2", "k", 402, "")
            .await
            .unwrap()
    );
    assert_eq!(
        begin("key:2", "k", hash.clone()).await,
        IdempotencyBegin::Done {
            status: 402,
            response: String::new()
        }
    );

    // Pruning forgets records made before the cutoff, done or running.
    ledger
        .begin_idempotent("anonymous", "later", &hash, None, JAN_1 + DAY)
        .await
        .unwrap();
    assert_eq!(ledger.prune_idempotent(JAN_1 + 1).await.unwrap(), 3);
    assert_eq!(
        begin("key:1", "k", other.clone()).await,
        IdempotencyBegin::Started
    );
    assert_eq!(
        ledger
            .begin_idempotent("anonymous", "later", &other, None, JAN_1 + DAY)
            .await
            .unwrap(),
        IdempotencyBegin::Conflict
    );
}

async fn concurrent_idempotent_begins_start_once(ledger: Arc<dyn Ledger>) {
    let hash = idempotency::request_hash(b"one request");
    let race = |key: &'static str| {
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                let barrier = Arc::clone(&barrier);
                let hash = hash.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    ledger
                        .begin_idempotent("key:7", key, &hash, None, JAN_1)
                        .await
                        .unwrap()
                })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        }
    };
    let outcomes = race("same").await;
    let started = outcomes
        .iter()
        .filter(|o| **o == IdempotencyBegin::Started)
        .count();
    let running = outcomes
        .iter()
        .filter(|o| **o == IdempotencyBegin::Running)
        .count();
    assert_eq!((started, running), (1, 19), "{outcomes:?}");

    // Once done, every concurrent retry gets the one response.
    assert!(
        ledger
            .finish_idempotent("key:7", "same", 200, "ok")
            .await
            .unwrap()
    );
    let outcomes = race("same").await;
    assert!(
        outcomes.iter().all(|o| *o
            == IdempotencyBegin::Done {
                status: 200,
                response: "ok".to_owned()
            }),
        "{outcomes:?}"
    );
}

async fn concurrent_key_budgets_are_created_once(ledger: Arc<dyn Ledger>) {
    let (_, new) = new_key("daily");
    let key = ledger
        .create_api_key(
            &new.with_limit(Credits::whole(10))
                .with_period(KeyPeriod::Day),
        )
        .await
        .unwrap();
    let expected = format!("key:{}:2026-01-01", key.id.0);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            let key = key.clone();
            tokio::spawn(async move { ledger.ensure_key_budget(&key, JAN_1 + 5).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().as_deref(),
            Some(expected.as_str())
        );
    }
    let status = ledger.budget(&expected).await.unwrap().unwrap();
    assert_eq!(status.limit, Some(Credits::whole(10)));
    // Ensuring again never resets what is held or spent.
    let held = ledger.reserve(&expected, Credits::whole(6)).await.unwrap();
    ledger.ensure_key_budget(&key, JAN_1 + 9).await.unwrap();
    let refused = ledger.reserve(&expected, Credits::whole(6)).await;
    assert!(
        matches!(refused, Err(LedgerError::BudgetExceeded { .. })),
        "{refused:?}"
    );
    ledger.settle(held, Credits::whole(6)).await.unwrap();
    ledger.ensure_key_budget(&key, JAN_1 + 9).await.unwrap();
    let status = ledger.budget(&expected).await.unwrap().unwrap();
    assert_eq!(
        (status.spent, status.remaining),
        (Credits::whole(6), Some(Credits::whole(4)))
    );
}

async fn concurrent_key_creations_keep_names_unique(ledger: Arc<dyn Ledger>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            let barrier = Arc::clone(&barrier);
            let (_, new) = new_key("shared");
            tokio::spawn(async move {
                barrier.wait().await;
                ledger.create_api_key(&new).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(LedgerError::DuplicateApiKeyName { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(ledger.list_api_keys().await.unwrap().len(), 1);
}

/// A key's budget is per UTC day or month (or total), by the ledger's clock for what
/// `list_api_keys` and `find_api_key` report.
async fn key_budgets_follow_the_period(db: TestDb) -> TestDb {
    let clock = ManualClock::new(); // 2026-01-01T00:00:00Z
    let ledger = db
        .open_with(&LedgerOptions::default().with_clock(clock.shared()))
        .await;
    let (day_key, new) = new_key("daily");
    let daily = ledger
        .create_api_key(
            &new.with_limit(Credits::whole(10))
                .with_period(KeyPeriod::Day),
        )
        .await
        .unwrap();
    assert_eq!(daily.created_at_ms, JAN_1);
    let (_, new) = new_key("monthly");
    let monthly = ledger
        .create_api_key(
            &new.with_limit(Credits::whole(100))
                .with_period(KeyPeriod::Month),
        )
        .await
        .unwrap();

    let today = ledger
        .ensure_key_budget(&daily, JAN_1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(today, format!("key:{}:2026-01-01", daily.id.0));
    let this_month = ledger
        .ensure_key_budget(&monthly, JAN_1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(this_month, format!("key:{}:2026-01", monthly.id.0));
    for budget in [&today, &this_month] {
        let held = ledger.reserve(budget, Credits::whole(4)).await.unwrap();
        ledger.settle(held, Credits::whole(4)).await.unwrap();
    }
    let refused = ledger.reserve(&today, Credits::whole(7)).await;
    assert!(
        matches!(refused, Err(LedgerError::BudgetExceeded { .. })),
        "{refused:?}"
    );
    let spent = |keys: Vec<ApiKeyRecord>| keys.iter().map(|k| k.spent).collect::<Vec<_>>();
    assert_eq!(
        spent(ledger.list_api_keys().await.unwrap()),
        [Credits::whole(4), Credits::whole(4)]
    );
    let found = ledger.find_api_key(day_key.hash()).await.unwrap().unwrap();
    assert_eq!(found.spent, Credits::whole(4));

    // The next UTC day: the daily key starts again, the monthly one keeps counting.
    clock.advance(std::time::Duration::from_millis(DAY));
    assert_eq!(
        spent(ledger.list_api_keys().await.unwrap()),
        [Credits::ZERO, Credits::whole(4)]
    );
    let tomorrow = ledger
        .ensure_key_budget(&daily, JAN_1 + DAY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tomorrow, format!("key:{}:2026-01-02", daily.id.0));
    ledger.reserve(&tomorrow, Credits::whole(10)).await.unwrap();
    assert_eq!(
        ledger.budget(&today).await.unwrap().unwrap().spent,
        Credits::whole(4),
        "yesterday's budget is kept"
    );
    // February: a new monthly budget.
    assert_eq!(
        daily.budget_name(JAN_1 + 31 * DAY - 1),
        Some(format!("key:{}:2026-01-31", daily.id.0))
    );
    assert_eq!(
        monthly.budget_name(JAN_1 + 31 * DAY),
        Some(format!("key:{}:2026-02", monthly.id.0))
    );
    ledger.close().await;
    db
}

on_both_ledgers!(
    leases_are_claimed_once_they_run_out,
    generations_are_recorded_finished_and_claimed,
    rate_slots_slide_and_count_atomically,
    spend_sums_one_keys_jobs,
);

/// Far in the future: a lease that does not run out during the test.
const FAR: u64 = u64::MAX / 4;

async fn leases_are_claimed_once_they_run_out(ledger: Arc<dyn Ledger>) {
    let expired = |id: &str| job("kolbo", id, JAN_1, "a fox", 1).with_lease(Lease::new("a", 1));
    ledger.record_accepted(&expired("gen_dead")).await.unwrap();
    let held = job("kolbo", "gen_live", JAN_1, "a hen", 1).with_lease(Lease::new("a", FAR));
    ledger.record_accepted(&held).await.unwrap();
    // Recorded by the CLI: no lease, never claimed (`imagegen resume` finishes it).
    ledger
        .record_accepted(&job("kolbo", "gen_cli", JAN_1, "a cat", 1))
        .await
        .unwrap();

    let claimed = ledger
        .claim_expired_jobs(&Lease::new("b", FAR), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job_id, "gen_dead");
    assert_eq!(claimed[0].lease, Some(Lease::new("b", FAR)));
    assert!(
        ledger
            .claim_expired_jobs(&Lease::new("c", FAR), 10)
            .await
            .unwrap()
            .is_empty(),
        "a claimed job is held by its new owner"
    );

    // Renewing touches only the owner's open jobs; releasing lets another claim at once.
    assert_eq!(ledger.renew_leases("b", FAR + 1).await.unwrap(), 1);
    assert_eq!(ledger.release_leases("b").await.unwrap(), 1);
    assert!(
        ledger
            .claim_expired_jobs(&Lease::new("b", FAR), 10)
            .await
            .unwrap()
            .is_empty(),
        "a gateway never claims its own jobs, even with their lease run out"
    );
    let again = ledger
        .claim_expired_jobs(&Lease::new("c", FAR), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job_id, "gen_dead");
    // A finished job is never claimed.
    ledger
        .finish_job(&kolbo(), "gen_dead", &JobFinish::failed(JAN_1 + 1, "gone"))
        .await
        .unwrap();
    assert_eq!(ledger.release_leases("c").await.unwrap(), 0);

    // Concurrent claimers: each expired job goes to exactly one of them.
    for n in 0..30 {
        ledger
            .record_accepted(&expired(&format!("gen_{n}")))
            .await
            .unwrap();
    }
    let claimers: Vec<_> = (0..6)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = ledger
                        .claim_expired_jobs(&Lease::new(format!("i{i}"), FAR), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|j| j.job_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 30, "every expired job claimed");
    assert_eq!(all.len(), 30, "no job claimed twice");
}

async fn generations_are_recorded_finished_and_claimed(ledger: Arc<dyn Ledger>) {
    let started = NewGeneration::new("req_1", "key:7", Lease::new("a", FAR)).with_request_key("k1");
    ledger.create_generation(&started).await.unwrap();
    ledger
        .set_generation_progress("req_1", r#"{"percent":40}"#)
        .await
        .unwrap();
    let running = ledger.generation("req_1").await.unwrap().unwrap();
    assert_eq!(running.state, GenerationState::Running);
    assert_eq!(running.caller, "key:7");
    assert_eq!(running.request_key.as_deref(), Some("k1"));
    assert_eq!(running.progress.as_deref(), Some(r#"{"percent":40}"#));
    assert_eq!(running.status, None);
    assert!(ledger.generation("req_none").await.unwrap().is_none());

    assert!(ledger.finish_generation("req_1", 402, "{}").await.unwrap());
    assert!(
        !ledger.finish_generation("req_1", 200, "{}").await.unwrap(),
        "the first answer stands"
    );
    let done = ledger.generation("req_1").await.unwrap().unwrap();
    assert_eq!(done.state, GenerationState::Failed);
    assert_eq!(done.status, Some(402));
    assert!(done.finished_at_ms.is_some());

    // One whose instance died is claimed once; a finished one never.
    let dead = NewGeneration::new("req_2", "local", Lease::new("a", 1));
    ledger.create_generation(&dead).await.unwrap();
    let claimed = ledger
        .claim_expired_generations(&Lease::new("b", FAR), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, "req_2");
    assert_eq!(claimed[0].lease, Lease::new("b", FAR));
    assert!(
        ledger
            .claim_expired_generations(&Lease::new("c", FAR), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ledger.renew_leases("b", FAR).await.unwrap(), 1);

    // Recorded before its request is known (as it claims an Idempotency-Key), named
    // later: only by its owner, and only while it runs.
    let early = NewGeneration::new("req_3", "key:7", Lease::new("a", FAR));
    ledger.create_generation(&early).await.unwrap();
    assert!(
        !ledger
            .set_generation_request_key("req_3", "b", "k3")
            .await
            .unwrap()
    );
    assert!(
        ledger
            .set_generation_request_key("req_3", "a", "k3")
            .await
            .unwrap()
    );
    let named = ledger.generation("req_3").await.unwrap().unwrap();
    assert_eq!(named.request_key.as_deref(), Some("k3"));
    assert!(ledger.finish_generation("req_3", 200, "{}").await.unwrap());
    assert!(
        !ledger
            .set_generation_request_key("req_3", "a", "k4")
            .await
            .unwrap()
    );
}

async fn rate_slots_slide_and_count_atomically(ledger: Arc<dyn Ledger>) {
    let account = AccountHash::of_key("kolbo_live_slots");
    let minute = 60_000;
    let acquire = |limit: u32| {
        let ledger = Arc::clone(&ledger);
        let account = account.clone();
        async move {
            ledger
                .acquire_rate_slot(&kolbo(), &account, limit, minute)
                .await
                .unwrap()
        }
    };
    let RateSlot::Taken(first) = acquire(2).await else {
        panic!("an empty window");
    };
    assert!(matches!(acquire(2).await, RateSlot::Taken(_)));
    // Both in flight: look again after a fraction of the spacing.
    match acquire(2).await {
        RateSlot::Wait(wait) => assert_eq!(wait.as_millis(), 7_500),
        other => panic!("{other:?}"),
    }
    // One answered: it leaves the window a minute after its answer.
    ledger.finish_rate_slot(first).await.unwrap();
    match acquire(2).await {
        RateSlot::Wait(wait) => {
            assert!(
                wait.as_millis() > 55_000 && wait.as_millis() <= 60_000,
                "{wait:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let other = AccountHash::of_key("kolbo_live_other");
    assert!(
        matches!(
            ledger
                .acquire_rate_slot(&kolbo(), &other, 2, minute)
                .await
                .unwrap(),
            RateSlot::Taken(_)
        ),
        "accounts count apart"
    );

    // Concurrent callers: exactly the limit get a slot.
    let fresh = AccountHash::of_key("kolbo_live_many");
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            let fresh = fresh.clone();
            tokio::spawn(async move {
                ledger
                    .acquire_rate_slot(&kolbo(), &fresh, 10, minute)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(matches!(task.await.unwrap(), RateSlot::Taken(_)));
    }
    assert_eq!(taken, 10);
}

async fn spend_sums_one_keys_jobs(ledger: Arc<dyn Ledger>) {
    let paid = |id: &str, key: Option<u64>| {
        let mut job = job("kolbo", id, JAN_1, "a fox", 5);
        job.handle.credits_charged = Some(Credits::whole(3));
        if let Some(key) = key {
            job = job.with_api_key(ApiKeyId(key));
        }
        job
    };
    for (id, key) in [
        ("g1", Some(7)),
        ("g2", Some(7)),
        ("g3", Some(8)),
        ("g4", None),
    ] {
        ledger.record_accepted(&paid(id, key)).await.unwrap();
    }
    let mine = ledger
        .spend(&SpendQuery::by(SpendGroup::Provider).paid_by(ApiKeyId(7)))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].credits, Credits::whole(6));
    assert_eq!(mine[0].jobs, 2);
    let all = ledger
        .spend(&SpendQuery::by(SpendGroup::Provider))
        .await
        .unwrap();
    assert_eq!(all[0].credits, Credits::whole(12));
}

on_both_ledgers!(images_list_newest_first_filter_page_and_delete);

async fn images_list_newest_first_filter_page_and_delete(ledger: Arc<dyn Ledger>) {
    // Three jobs: two of koala (one image each, the same file), one of kolbo with two.
    let finish = |provider: &str, id: &str, at: u64, files: &[&str]| {
        let ledger = Arc::clone(&ledger);
        let (provider, id) = (provider.to_owned(), id.to_owned());
        let images: Vec<NewImage> = files
            .iter()
            .enumerate()
            .map(|(i, f)| NewImage::new(u32::try_from(i).unwrap(), *f))
            .collect();
        async move {
            ledger
                .finish_job(
                    &ProviderId::new(&provider),
                    &id,
                    &JobFinish::done(at, images),
                )
                .await
                .unwrap();
        }
    };
    let mut fox = job("koala", "k1", JAN_1, "a red fox", 1);
    fox = fox.with_api_key(ApiKeyId(3));
    ledger.record_accepted(&fox).await.unwrap();
    finish("koala", "k1", JAN_1 + 10, &["store/same.png"]).await;
    ledger
        .record_accepted(&job("koala", "k2", JAN_1 + DAY, "a grey hen", 1))
        .await
        .unwrap();
    finish("koala", "k2", JAN_1 + DAY + 10, &["store/same.png"]).await;
    ledger
        .record_accepted(&job("kolbo", "g1", JAN_1 + 2 * DAY, "a red kite", 1))
        .await
        .unwrap();
    finish(
        "kolbo",
        "g1",
        JAN_1 + 2 * DAY + 10,
        &["store/a.png", "store/b.png"],
    )
    .await;

    let all = ledger.images(&ImageQuery::newest(10)).await.unwrap();
    assert_eq!(all.len(), 4);
    let jobs: Vec<&str> = all.iter().map(|e| e.job.job_id.as_str()).collect();
    // Newest first (the clock stamps rows; ties broken by provider, job, index).
    assert!(jobs.contains(&"g1") && jobs.contains(&"k1") && jobs.contains(&"k2"));

    // Pages of one follow each other without repeats.
    let mut seen = Vec::new();
    let mut query = ImageQuery::newest(1);
    loop {
        let page = ledger.images(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        seen.push(last.key());
        query = ImageQuery::newest(1).after(last.cursor());
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort_by(|a, b| (&a.job_id, a.index).cmp(&(&b.job_id, b.index)));
    unique.dedup();
    assert_eq!(unique.len(), 4);

    // Filters.
    let red = ledger
        .images(&ImageQuery::newest(10).matching("RED"))
        .await
        .unwrap();
    assert_eq!(red.len(), 3);
    let koala = ledger
        .images(&ImageQuery::newest(10).from_provider("koala"))
        .await
        .unwrap();
    assert_eq!(koala.len(), 2);
    let keyed = ledger
        .images(&ImageQuery::newest(10).paid_by(ApiKeyId(3)))
        .await
        .unwrap();
    assert_eq!(keyed.len(), 1);
    assert_eq!(keyed[0].job.job_id, "k1");
    let percent = ledger
        .images(&ImageQuery::newest(10).matching("100%"))
        .await
        .unwrap();
    assert!(percent.is_empty(), "LIKE wildcards are escaped");

    // One image with its job.
    let key = ImageKey::new("kolbo", "g1", 1);
    let found = ledger.image(&key).await.unwrap().unwrap();
    assert_eq!(found.image.path, PathBuf::from("store/b.png"));
    assert_eq!(found.job.prompt, "a red kite");
    assert!(
        ledger
            .image(&ImageKey::new("kolbo", "g1", 9))
            .await
            .unwrap()
            .is_none()
    );

    // Deleting: a file another row names stays.
    let first = ledger
        .delete_image(&ImageKey::new("koala", "k1", 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.path, PathBuf::from("store/same.png"));
    assert!(first.file_still_used);
    let second = ledger
        .delete_image(&ImageKey::new("koala", "k2", 0))
        .await
        .unwrap()
        .unwrap();
    assert!(!second.file_still_used);
    assert!(
        ledger
            .delete_image(&ImageKey::new("koala", "k2", 0))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        ledger.images(&ImageQuery::newest(10)).await.unwrap().len(),
        2
    );

    // Spend per provider per day.
    let mut charged = job("koala", "k3", JAN_1 + 3 * DAY, "paid", 5);
    charged.handle.credits_charged = Some(Credits::whole(4));
    ledger.record_accepted(&charged).await.unwrap();
    let rows = ledger
        .spend(&SpendQuery::by(SpendGroup::ProviderDay))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].provider, Some(ProviderId::new("koala")));
    assert_eq!(rows[0].day.as_deref(), Some("2026-01-04"));
    assert_eq!(rows[0].credits, Credits::whole(4));
}

on_both_ledgers!(holds_of_a_dead_gateway_are_resolved_from_what_was_sent);

/// A gateway held credits for its generations and died (its lease on the holds ran
/// out): another resolves each hold from what the ledger knows was sent, never blindly.
async fn holds_of_a_dead_gateway_are_resolved_from_what_was_sent(ledger: Arc<dyn Ledger>) {
    const BUDGET: &str = "key:1:total";
    ledger
        .set_budget(BUDGET, Some(Credits::whole(100)))
        .await
        .unwrap();
    let dead = Lease::new("a", 1);
    let figures = |ledger: Arc<dyn Ledger>| async move {
        let status = ledger.budget(BUDGET).await.unwrap().unwrap();
        (status.reserved, status.spent)
    };
    let generation = |id: &str, key: Option<&str>| {
        let generation = NewGeneration::new(id, "key:1", dead.clone());
        match key {
            Some(key) => generation.with_request_key(key),
            None => generation,
        }
    };
    let request = |key: &str| NewRequest::new("a fox", "{}", std::path::Path::new("out"), key, 1);

    // Nothing sent: no generation recorded yet, or one whose request is not yet known.
    let unknown = ledger
        .reserve_leased(BUDGET, Credits::whole(10), "g_unknown", &dead)
        .await
        .unwrap();
    ledger
        .create_generation(&generation("g_early", None))
        .await
        .unwrap();
    let early = ledger
        .reserve_leased(BUDGET, Credits::whole(10), "g_early", &dead)
        .await
        .unwrap();
    // Its request recorded (the write-ahead) and no job: it may have been charged.
    ledger
        .create_generation(&generation("g_sent", Some("k_sent")))
        .await
        .unwrap();
    ledger.record_request(&request("k_sent")).await.unwrap();
    let sent = ledger
        .reserve_leased(BUDGET, Credits::whole(10), "g_sent", &dead)
        .await
        .unwrap();
    // Two jobs, one still open.
    ledger
        .create_generation(&generation("g_jobs", Some("k_jobs")))
        .await
        .unwrap();
    let request_id = ledger.record_request(&request("k_jobs")).await.unwrap();
    let with_jobs = ledger
        .reserve_leased(BUDGET, Credits::whole(10), "g_jobs", &dead)
        .await
        .unwrap();
    for (id, reserved) in [("gen_done", 4), ("gen_open", 5)] {
        let accepted = job("kolbo", id, JAN_1, "a fox", reserved).with_request(request_id);
        ledger.record_accepted(&accepted).await.unwrap();
    }
    ledger
        .finish_job(
            &kolbo(),
            "gen_done",
            &JobFinish::done(JAN_1 + 1, vec![NewImage::new(0, "out/a.png")])
                .with_charged(Credits::whole(3)),
        )
        .await
        .unwrap();
    // Never resolved by another: a live lease, a hold without one (the CLI's), and the
    // resolver's own even with its lease run out.
    let live = ledger
        .reserve_leased(BUDGET, Credits::whole(1), "g_live", &Lease::new("a", FAR))
        .await
        .unwrap();
    let cli = ledger.reserve(BUDGET, Credits::whole(1)).await.unwrap();
    let own = ledger
        .reserve_leased(BUDGET, Credits::whole(1), "g_own", &Lease::new("b", 1))
        .await
        .unwrap();
    assert_eq!(figures(Arc::clone(&ledger)).await, (cr("43"), cr("0")));

    // Looked at again at once (a resolver's lease that has run out too).
    let again = Lease::new("b", 2);
    let resolved = ledger.resolve_expired_holds(&again, 16).await.unwrap();
    let outcome = |id| {
        resolved
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.outcome.clone())
    };
    assert_eq!(resolved.len(), 4, "{resolved:?}");
    assert_eq!(outcome(unknown), Some(HoldOutcome::Released));
    assert_eq!(outcome(early), Some(HoldOutcome::Released));
    match outcome(sent) {
        Some(HoldOutcome::SettledInFull(settlement)) => {
            assert_eq!(settlement.charged, Credits::whole(10));
        }
        other => panic!("sent with no job: {other:?}"),
    }
    assert_eq!(outcome(with_jobs), Some(HoldOutcome::Waiting));
    let waiting = resolved.iter().find(|r| r.id == with_jobs).unwrap();
    assert_eq!(waiting.owner, "a");
    assert_eq!(waiting.generation_id.as_deref(), Some("g_jobs"));
    assert_eq!(waiting.budget, BUDGET);
    assert_eq!(waiting.amount, Credits::whole(10));
    for id in [live, cli, own] {
        assert_eq!(outcome(id), None);
    }
    // 10 in full counts as spent; the waiting hold and the three others are still held.
    assert_eq!(figures(Arc::clone(&ledger)).await, (cr("13"), cr("10")));
    assert!(
        matches!(
            ledger.settle(sent, Credits::ZERO).await,
            Err(LedgerError::ReservationClosed { .. })
        ),
        "a resolved hold ends once"
    );

    // The open job finishes (taken over) with its charge unknown: its reservation counts.
    let resolved = ledger.resolve_expired_holds(&again, 16).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].outcome, HoldOutcome::Waiting);
    ledger
        .finish_job(
            &kolbo(),
            "gen_open",
            &JobFinish::done(JAN_1 + 2, vec![NewImage::new(0, "out/b.png")]),
        )
        .await
        .unwrap();
    let resolved = ledger
        .resolve_expired_holds(&Lease::new("b", FAR), 16)
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1);
    match &resolved[0].outcome {
        HoldOutcome::Settled(settlement) => {
            assert_eq!(settlement.charged, Credits::whole(8));
            assert_eq!(settlement.reserved, Credits::whole(10));
        }
        other => panic!("jobs finished: {other:?}"),
    }
    assert_eq!(figures(Arc::clone(&ledger)).await, (cr("3"), cr("18")));

    // Renewed with the owner's other leases; released on a graceful stop, then resolved.
    assert_eq!(
        ledger.renew_leases("b", FAR).await.unwrap(),
        1,
        "its own hold"
    );
    assert!(
        ledger
            .resolve_expired_holds(&Lease::new("c", FAR), 16)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ledger.release_leases("a").await.unwrap(),
        1,
        "the live hold"
    );
    let resolved = ledger
        .resolve_expired_holds(&Lease::new("c", FAR), 16)
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].id, live);
    assert_eq!(resolved[0].outcome, HoldOutcome::Released);
    ledger.release(own).await.unwrap();
    ledger.release(cli).await.unwrap();
    assert_eq!(figures(Arc::clone(&ledger)).await, (cr("0"), cr("18")));

    // Concurrent resolvers: each hold is resolved by exactly one of them.
    for n in 0..24 {
        ledger
            .reserve_leased(BUDGET, Credits::whole(1), &format!("g_{n}"), &dead)
            .await
            .unwrap();
    }
    let resolvers: Vec<_> = (0..6)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = ledger
                        .resolve_expired_holds(&Lease::new(format!("r{i}"), FAR), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.iter().all(|r| r.outcome == HoldOutcome::Released));
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for resolver in resolvers {
        all.extend(resolver.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 24, "every expired hold resolved");
    assert_eq!(all.len(), 24, "no hold resolved twice");
    assert_eq!(figures(Arc::clone(&ledger)).await, (cr("0"), cr("18")));
}

/// Cuts every other connection to `db`'s PostgreSQL database, as a restarted server or a
/// dropped socket would, and waits until they are gone.
async fn cut_connections(db: &TestDb) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!cut.is_empty() && cut.iter().all(|&c| c), "{cut:?}");
    admin.close().await.unwrap();
}

/// PostgreSQL: a connection the server cut while it sat idle is found by a ping before
/// its next use, once it has been idle for `recheck_idle_after`, and replaced: the
/// operation succeeds. One used again sooner is not pinged: the operation on it fails
/// with the cause, and that failure has the connection checked before its next use, so
/// the next operation gets a new one.
#[tokio::test]
async fn postgres_replaces_connections_the_server_cut() {
    let db = TestDb::new(Backend::Postgres).await;
    let rechecked = LedgerOptions::default()
        .with_max_connections(2)
        .with_recheck_idle_after(std::time::Duration::ZERO);
    let ledger = db.open_with(&rechecked).await;
    ledger.list_api_keys().await.unwrap();
    cut_connections(&db).await;
    ledger.list_api_keys().await.unwrap();
    ledger.set_budget("b", Some(cr("5"))).await.unwrap();
    ledger.close().await;

    let trusted = LedgerOptions::default()
        .with_max_connections(1)
        .with_recheck_idle_after(std::time::Duration::from_secs(3600));
    let ledger = db.open_with(&trusted).await;
    ledger.list_api_keys().await.unwrap();
    cut_connections(&db).await;
    let error = ledger.list_api_keys().await.unwrap_err();
    assert!(matches!(error, LedgerError::Database { .. }), "{error:?}");
    assert_eq!(
        ledger.budget("b").await.unwrap().unwrap().limit,
        Some(cr("5"))
    );
    ledger.close().await;
    db.finish().await;
}
