//! `imagegen history` and `imagegen spend` on a ledger seeded through the library's
//! `imagegen::ledger` API: two providers, several models, three UTC days, done, failed and
//! open jobs. These commands need no provider key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegen::Credits;
use imagegen::core::{Clock, JobHandle, ManualClock};
use imagegen::ledger::{AcceptedJob, JobFinish, LedgerOptions, NewImage, NewRequest};
use serde_json::{Value, json};

mod common;

use common::{Run, bare_cmd, run};

/// 2026-01-01 00:00 UTC.
const DAY_1: u64 = 1_767_225_600_000;
const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;

/// A prompt longer than the table shows.
const LONG_PROMPT: &str = "a red fox at night under the northern lights, snow falling on a frozen lake, \
     pine trees along the shore, long exposure photograph";

fn credits(text: &str) -> Credits {
    text.parse().unwrap()
}

/// A ledger file in `dir` holding, oldest first:
///
/// | job | provider/model | accepted (UTC) | state | charged | files |
/// |---|---|---|---|---|---|
/// | g1 | kolbo/z-image/turbo | 2026-01-01 10:00 | done | 0.5 | 1 |
/// | g2 | kolbo/nano-banana-2 | 2026-01-01 12:00 | done | 16 (at submission) | 2 |
/// | v2-a | koala/gpt-image-2 | 2026-01-02 09:30 | done | 1 | 1 |
/// | v2-b | koala/gpt-image-2 | 2026-01-03 08:00 | failed, refunded | 0 | 0 |
/// | g3 | kolbo (model unknown) | 2026-01-03 18:00 | accepted (open) | unknown | 0 |
fn seeded_ledger(dir: &Path) -> PathBuf {
    let path = dir.join("seeded.sqlite3");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Acceptance times come from the handles; the ledger's clock (what it stamps
        // itself, such as the images' times) is moved along with them. A manual clock
        // starts at 2026-01-01 00:00 UTC.
        let clock = ManualClock::new();
        let at = |ms: u64| {
            let to = Duration::from_millis(ms - DAY_1);
            clock.advance(to.saturating_sub(clock.now()));
        };
        let options = LedgerOptions::default().with_clock(clock.shared());
        let ledger = imagegen::ledger::open_with(&path.display().to_string(), &options)
            .await
            .unwrap();
        let out = "imagegen-out";
        at(DAY_1 + 10 * HOUR_MS);

        let request = ledger
            .record_request(&NewRequest::new(
                "a lighthouse at dusk, watercolor",
                r#"{"prompt":"a lighthouse at dusk, watercolor"}"#,
                out,
                "key-lighthouse",
                DAY_1 + 10 * HOUR_MS,
            ))
            .await
            .unwrap();
        let g1 = JobHandle::new("kolbo", "g1", 1, DAY_1 + 10 * HOUR_MS).with_model("z-image/turbo");
        ledger
            .record_accepted(
                &AcceptedJob::new(g1, "a lighthouse at dusk, watercolor", out, credits("0.5"))
                    .with_request(request),
            )
            .await
            .unwrap();
        at(DAY_1 + 10 * HOUR_MS + 5_000);
        let finish = JobFinish::done(
            DAY_1 + 10 * HOUR_MS + 5_000,
            vec![NewImage::new(
                0,
                "imagegen-out/a-lighthouse-at-dusk-watercolor-1.png",
            )],
        )
        .with_charged(credits("0.5"));
        ledger
            .finish_job(&"kolbo".into(), "g1", &finish)
            .await
            .unwrap();

        let g2 = JobHandle::new("kolbo", "g2", 2, DAY_1 + 12 * HOUR_MS)
            .with_model("nano-banana-2")
            .with_credits_charged(Credits::whole(16));
        ledger
            .record_accepted(&AcceptedJob::new(
                g2,
                "a red fox in the snow",
                out,
                Credits::whole(16),
            ))
            .await
            .unwrap();
        at(DAY_1 + 12 * HOUR_MS + 9_000);
        let finish = JobFinish::done(
            DAY_1 + 12 * HOUR_MS + 9_000,
            vec![
                NewImage::new(0, "imagegen-out/a-red-fox-in-the-snow-1.png"),
                NewImage::new(1, "imagegen-out/a-red-fox-in-the-snow-2.png"),
            ],
        );
        ledger
            .finish_job(&"kolbo".into(), "g2", &finish)
            .await
            .unwrap();

        let day_2 = DAY_1 + DAY_MS;
        let v2a = JobHandle::new("koala", "v2-a", 1, day_2 + 9 * HOUR_MS + 30 * 60_000)
            .with_model("gpt-image-2");
        ledger
            .record_accepted(&AcceptedJob::new(
                v2a,
                "a koi pond from above, ink drawing",
                out,
                Credits::whole(1),
            ))
            .await
            .unwrap();
        at(day_2 + 10 * HOUR_MS);
        let finish = JobFinish::done(
            day_2 + 10 * HOUR_MS,
            vec![NewImage::new(
                0,
                "imagegen-out/a-koi-pond-from-above-ink-drawing-1.jpg",
            )],
        )
        .with_charged(Credits::whole(1));
        ledger
            .finish_job(&"koala".into(), "v2-a", &finish)
            .await
            .unwrap();

        let day_3 = DAY_1 + 2 * DAY_MS;
        let v2b = JobHandle::new("koala", "v2-b", 1, day_3 + 8 * HOUR_MS).with_model("gpt-image-2");
        ledger
            .record_accepted(&AcceptedJob::new(v2b, LONG_PROMPT, out, Credits::whole(1)))
            .await
            .unwrap();
        at(day_3 + 8 * HOUR_MS + 4_000);
        let finish = JobFinish::failed(day_3 + 8 * HOUR_MS + 4_000, "content policy (refunded)")
            .with_charged(Credits::ZERO);
        ledger
            .finish_job(&"koala".into(), "v2-b", &finish)
            .await
            .unwrap();

        at(day_3 + 18 * HOUR_MS);
        // Kolbo's Smart Select, still running: no model and no charge known yet.
        let g3 = JobHandle::new("kolbo", "g3", 1, day_3 + 18 * HOUR_MS);
        ledger
            .record_accepted(&AcceptedJob::new(
                g3,
                "a sneaker, product photo",
                out,
                Credits::whole(30),
            ))
            .await
            .unwrap();
        ledger.close().await;
    });
    path
}

/// The CLI in `dir` on the ledger at `db`, with no key and no other setting.
fn imagegen(dir: &Path, db: &Path, args: &[&str]) -> Run {
    let r = run(bare_cmd(dir).args(args).arg("--db").arg(db));
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    assert!(
        !r.stderr.contains("simulator"),
        "{args:?} needs no provider: {}",
        r.stderr
    );
    r
}

/// The lines of stdout, without trailing spaces.
fn lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(|l| l.trim_end().to_owned()).collect()
}

/// The whitespace-separated words of a table line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn job_ids(history: &Value) -> Vec<&str> {
    history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["job_id"].as_str().unwrap())
        .collect()
}

#[test]
fn history_lists_generations_newest_first_with_credits_state_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let r = imagegen(dir.path(), &db, &["history"]);
    let lines = lines(&r);
    assert_eq!(
        words(&lines[0]),
        [
            "WHEN",
            "(UTC)",
            "PROVIDER/MODEL",
            "CREDITS",
            "STATE",
            "PROMPT"
        ],
        "{}",
        r.stdout
    );
    let rows: Vec<&String> = lines[1..]
        .iter()
        .filter(|l| l.starts_with("2026-"))
        .collect();
    assert_eq!(rows.len(), 5, "{}", r.stdout);
    // Newest first; when, provider/model, credits charged ("-" while unknown), state, prompt.
    assert_eq!(
        words(rows[0]),
        [
            "2026-01-03",
            "18:00",
            "kolbo",
            "-",
            "accepted",
            "a",
            "sneaker,",
            "product",
            "photo"
        ]
    );
    assert_eq!(
        words(rows[1])[..5],
        ["2026-01-03", "08:00", "koala/gpt-image-2", "0", "failed"]
    );
    assert_eq!(
        words(rows[2])[..5],
        ["2026-01-02", "09:30", "koala/gpt-image-2", "1", "done"]
    );
    assert_eq!(
        words(rows[3])[..5],
        ["2026-01-01", "12:00", "kolbo/nano-banana-2", "16", "done"]
    );
    assert_eq!(
        words(rows[4]),
        [
            "2026-01-01",
            "10:00",
            "kolbo/z-image/turbo",
            "0.5",
            "done",
            "a",
            "lighthouse",
            "at",
            "dusk,",
            "watercolor"
        ]
    );
    // A long prompt is shortened in the table.
    let preview = imagegen::core::prompt_preview(LONG_PROMPT);
    assert!(preview.ends_with('…'));
    assert!(rows[1].ends_with(preview.as_ref()), "{}", rows[1]);
    assert!(!r.stdout.contains(LONG_PROMPT));
    // Each generation's files (and a failure's reason) follow its row, in order.
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.trim() == text)
            .unwrap_or_else(|| panic!("no line {text:?} in\n{}", r.stdout))
    };
    let fox = lines.iter().position(|l| l == rows[3]).unwrap();
    assert_eq!(at("imagegen-out/a-red-fox-in-the-snow-1.png"), fox + 1);
    assert_eq!(at("imagegen-out/a-red-fox-in-the-snow-2.png"), fox + 2);
    let failed = lines.iter().position(|l| l == rows[1]).unwrap();
    assert_eq!(at("error: content policy (refunded)"), failed + 1);
    let lighthouse = lines.iter().position(|l| l == rows[4]).unwrap();
    assert_eq!(
        at("imagegen-out/a-lighthouse-at-dusk-watercolor-1.png"),
        lighthouse + 1
    );
    assert_eq!(lines.len(), lighthouse + 2, "{}", r.stdout);
}

#[test]
fn history_json_is_the_library_entries_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let history = imagegen(dir.path(), &db, &["history", "--json"]).json();
    assert_eq!(job_ids(&history), ["g3", "v2-b", "v2-a", "g2", "g1"]);
    let entries = history["history"].as_array().unwrap();
    // The prompt is whole in JSON.
    assert_eq!(entries[1]["prompt"], LONG_PROMPT);
    assert_eq!(
        entries[3],
        json!({
            "provider": "kolbo",
            "job_id": "g2",
            "model": "nano-banana-2",
            "prompt": "a red fox in the snow",
            "state": "done",
            "reserved": 16,
            "charged": 16,
            "accepted_at_ms": DAY_1 + 12 * HOUR_MS,
            "finished_at_ms": DAY_1 + 12 * HOUR_MS + 9_000,
            "error": null,
            "files": [
                "imagegen-out/a-red-fox-in-the-snow-1.png",
                "imagegen-out/a-red-fox-in-the-snow-2.png"
            ],
        })
    );
    assert_eq!(entries[4]["charged"], 0.5);
    assert_eq!(entries[0]["state"], "accepted");
    assert_eq!(entries[0]["model"], Value::Null);
    assert_eq!(entries[0]["charged"], Value::Null);
    assert_eq!(entries[1]["error"], "content policy (refunded)");
}

#[test]
fn history_limit_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let two = imagegen(dir.path(), &db, &["history", "--json", "--limit", "2"]).json();
    assert_eq!(job_ids(&two), ["g3", "v2-b"]);
    // Case is ignored; the newest match first.
    let foxes = imagegen(dir.path(), &db, &["history", "--json", "--search", "FOX"]).json();
    assert_eq!(job_ids(&foxes), ["v2-b", "g2"]);
    let one_fox = imagegen(
        dir.path(),
        &db,
        &["history", "--json", "--search", "fox", "--limit", "1"],
    )
    .json();
    assert_eq!(job_ids(&one_fox), ["v2-b"]);

    let table = imagegen(dir.path(), &db, &["history", "--search", "koi"]);
    let lines = lines(&table);
    assert_eq!(lines.len(), 3, "{}", table.stdout); // header, row, file
    assert!(lines[1].contains("a koi pond from above, ink drawing"));
    assert_eq!(
        lines[2].trim(),
        "imagegen-out/a-koi-pond-from-above-ink-drawing-1.jpg"
    );
    let table = imagegen(dir.path(), &db, &["history", "--limit", "1"]);
    assert_eq!(lines_starting(&table, "2026-"), 1, "{}", table.stdout);

    let none = imagegen(dir.path(), &db, &["history", "--search", "zebra"]);
    assert!(
        none.stdout.starts_with("no generations match \"zebra\""),
        "{}",
        none.stdout
    );
    let none = imagegen(dir.path(), &db, &["history", "--json", "--search", "zebra"]);
    assert_eq!(none.json(), json!({ "history": [] }));

    // --limit must allow at least one generation: a usage error, exit 2.
    let zero = run(bare_cmd(dir.path())
        .args(["history", "--limit", "0", "--db"])
        .arg(&db));
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(zero.stderr.contains("--limit"), "{}", zero.stderr);
}

fn lines_starting(r: &Run, prefix: &str) -> usize {
    r.stdout.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn spend_sums_by_provider_by_default_with_a_total() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let r = imagegen(dir.path(), &db, &["spend"]);
    let table: Vec<Vec<String>> = lines(&r)
        .iter()
        .map(|l| words(l).into_iter().map(str::to_owned).collect())
        .collect();
    // The open job has no charge yet: it is not counted. The refunded failure charged 0.
    assert_eq!(
        table,
        [
            ["PROVIDER", "JOBS", "CREDITS"],
            ["koala", "2", "1"],
            ["kolbo", "2", "16.5"],
            ["TOTAL", "4", "17.5"],
        ],
        "{}",
        r.stdout
    );
    let same = imagegen(dir.path(), &db, &["spend", "--by", "provider"]);
    assert_eq!(same.stdout, r.stdout);

    let json = imagegen(dir.path(), &db, &["spend", "--json"]).json();
    assert_eq!(
        json,
        json!({
            "by": "provider",
            "spend": [
                { "provider": "koala", "model": null, "day": null, "credits": 1, "jobs": 2 },
                { "provider": "kolbo", "model": null, "day": null, "credits": 16.5, "jobs": 2 },
            ],
            "total": { "credits": 17.5, "jobs": 4 },
        })
    );
}

#[test]
fn spend_by_model_and_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let r = imagegen(dir.path(), &db, &["spend", "--by", "model"]);
    let table: Vec<Vec<String>> = lines(&r)
        .iter()
        .map(|l| words(l).into_iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        table,
        [
            ["PROVIDER/MODEL", "JOBS", "CREDITS"],
            ["koala/gpt-image-2", "2", "1"],
            ["kolbo/nano-banana-2", "1", "16"],
            ["kolbo/z-image/turbo", "1", "0.5"],
            ["TOTAL", "4", "17.5"],
        ],
        "{}",
        r.stdout
    );
    let json = imagegen(dir.path(), &db, &["spend", "--by", "model", "--json"]).json();
    assert_eq!(json["by"], "model");
    assert_eq!(
        json["spend"][2],
        json!({ "provider": "kolbo", "model": "z-image/turbo", "day": null, "credits": 0.5, "jobs": 1 })
    );
    assert_eq!(json["total"], json!({ "credits": 17.5, "jobs": 4 }));

    let r = imagegen(dir.path(), &db, &["spend", "--by", "day"]);
    let table: Vec<Vec<String>> = lines(&r)
        .iter()
        .map(|l| words(l).into_iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        table,
        [
            vec!["DAY", "(UTC)", "JOBS", "CREDITS"],
            vec!["2026-01-01", "2", "16.5"],
            vec!["2026-01-02", "1", "1"],
            vec!["2026-01-03", "1", "0"],
            vec!["TOTAL", "4", "17.5"],
        ],
        "{}",
        r.stdout
    );
    let json = imagegen(dir.path(), &db, &["spend", "--by", "day", "--json"]).json();
    assert_eq!(
        json,
        json!({
            "by": "day",
            "spend": [
                { "provider": null, "model": null, "day": "2026-01-01", "credits": 16.5, "jobs": 2 },
                { "provider": null, "model": null, "day": "2026-01-02", "credits": 1, "jobs": 1 },
                { "provider": null, "model": null, "day": "2026-01-03", "credits": 0, "jobs": 1 },
            ],
            "total": { "credits": 17.5, "jobs": 4 },
        })
    );

    let bad = run(bare_cmd(dir.path())
        .args(["spend", "--by", "week", "--db"])
        .arg(&db));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--by"), "{}", bad.stderr);
}

#[test]
fn the_ledger_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_ledger(dir.path());
    let r = run(bare_cmd(dir.path())
        .env(
            "IMAGEGEN_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .args(["spend", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["total"], json!({ "credits": 17.5, "jobs": 4 }));
}

#[test]
fn an_empty_ledger_has_no_generations_yet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new").join("ledger.sqlite3");

    let r = imagegen(dir.path(), &db, &["history"]);
    assert!(r.stdout.starts_with("no generations yet"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(db.exists(), "opening the ledger creates it");

    let r = imagegen(dir.path(), &db, &["history", "--json"]);
    assert_eq!(r.json(), json!({ "history": [] }));

    let r = imagegen(dir.path(), &db, &["spend"]);
    assert!(r.stdout.starts_with("no generations yet"), "{}", r.stdout);
    for by in ["provider", "model", "day"] {
        let r = imagegen(dir.path(), &db, &["spend", "--json", "--by", by]);
        assert_eq!(
            r.json(),
            json!({ "by": by, "spend": [], "total": { "credits": 0, "jobs": 0 } })
        );
    }

    // Without --db: the default ledger in the user's data directory.
    let r = run(bare_cmd(dir.path()).args(["history"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("no generations yet"), "{}", r.stdout);
    assert!(common::ledger_path(dir.path()).exists());
}

#[test]
fn an_unreachable_ledger_is_a_clear_error_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://user:secret@127.0.0.1:1/x";
    for command in ["history", "spend"] {
        let r = run(bare_cmd(dir.path()).args([command, "--db", url]));
        assert_eq!(r.code, 1, "{command}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{command}: {}", r.stdout);
        assert!(
            r.stderr
                .contains("could not open the ledger at postgres://user:redacted@127.0.0.1:1/x"),
            "{command}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("secret"), "{command}: {}", r.stderr);

        let r = run(bare_cmd(dir.path()).args([command, "--json", "--db", url]));
        assert_eq!(r.code, 1, "{command}: {}", r.stderr);
        let error = &r.json()["error"];
        assert_eq!(error["kind"], "other");
        assert_eq!(error["exit_code"], 1);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("could not open the ledger"), "{message}");
        assert!(!r.stdout.contains("secret") && !r.stderr.contains("secret"));
    }
    // A URL naming no store is an input error.
    let r = run(bare_cmd(dir.path()).args(["spend", "--db", "mysql://user:secret@db/x"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a ledger URL"), "{}", r.stderr);
    assert!(!r.stderr.contains("secret"), "{}", r.stderr);
}
