//! End-to-end tests of the `imagegen` binary against the simulator, started in this test
//! process and reached through the same environment variables users set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use imagegen::sim::{Fault, FaultRule, ImageSize, KoalaPlan, Route, SimConfig};
use serde_json::Value;

mod common;

use common::{Sim, bare_cmd, data_home, ledger_history, ledger_open_jobs, run};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn images_in(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect()
}

#[test]
fn generate_auto_routes_to_the_cheapest_and_prints_the_promised_json() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let r =
        run(sim
            .cmd(dir.path())
            .args(["generate", "a lighthouse at dusk, watercolor", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = r.json();
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    for field in [
        "path",
        "provider",
        "model",
        "mime",
        "width",
        "height",
        "bytes",
        "source_url",
    ] {
        assert!(!image[field].is_null(), "{field} missing in {image}");
    }
    assert_eq!(image["provider"], "kolbo");
    assert_eq!(json["credits_charged"], 0.5);
    let path = dir.path().join(image["path"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        image["bytes"].as_u64().unwrap()
    );
    assert!(path.with_extension("json").exists());
    assert!(
        path.to_string_lossy()
            .contains("imagegen-out/a-lighthouse-at-dusk-watercolor-1.")
    );
    // The ledger recorded the job and closed it, with its file.
    let history = ledger_history(dir.path());
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, imagegen::ledger::JobState::Done);
    assert_eq!(history[0].files.len(), 1);
    assert!(ledger_open_jobs(dir.path()).is_empty());
}

#[test]
fn generate_on_each_provider() {
    let sim = Sim::instant();
    for (provider, model) in [("kolbo", "flux-2/flash"), ("koala", "gpt-image-2")] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(sim.cmd(dir.path()).args([
            "generate",
            "a red fox",
            "-n",
            "2",
            "--provider",
            provider,
            "--model",
            model,
            "--aspect",
            "16:9",
            "--out",
            "foxes",
        ]));
        assert_eq!(r.code, 0, "{provider}: {}", r.stderr);
        let images = images_in(&dir.path().join("foxes"));
        assert_eq!(images.len(), 2, "{provider}: {images:?}");
        assert_eq!(
            r.stdout.lines().count(),
            2,
            "one path per line: {}",
            r.stdout
        );
        for image in &images {
            let sidecar: Value = serde_json::from_str(
                &std::fs::read_to_string(image.with_extension("json")).unwrap(),
            )
            .unwrap();
            assert_eq!(sidecar["provider"], provider);
            assert_eq!(sidecar["model"], model);
        }
        assert!(r.stderr.contains("Saved"), "{}", r.stderr);
    }
}

#[test]
fn estimate_ranks_and_explains_without_spending() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let r = run(sim.cmd(dir.path()).args([
        "estimate",
        "a fox",
        "-n",
        "2",
        "--max-credits",
        "6",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = r.json();
    let candidates = json["candidates"].as_array().unwrap();
    assert!(candidates.len() > 5);
    for c in candidates {
        for field in [
            "provider",
            "model",
            "credits_per_image",
            "total_credits",
            "eligible",
            "reason",
        ] {
            assert!(c.get(field).is_some(), "{field} missing in {c}");
        }
    }
    assert_eq!(candidates[0]["eligible"], true);
    assert_eq!(candidates[0]["total_credits"], 1);
    assert!(
        candidates
            .iter()
            .any(|c| c["eligible"] == false && c["reason"].as_str().unwrap().contains("cap"))
    );
    assert_eq!(sim.posts(), 0);

    let human = run(sim.cmd(dir.path()).args(["estimate", "a fox"]));
    assert_eq!(human.code, 0);
    assert!(
        human.stdout.contains("kolbo/z-image/turbo"),
        "{}",
        human.stdout
    );
    let dry = run(sim.cmd(dir.path()).args(["generate", "a fox", "--dry-run"]));
    assert_eq!(dry.code, 0);
    assert!(dry.stderr.contains("nothing was sent"));
    assert_eq!(sim.posts(), 0);
    assert!(images_in(&dir.path().join("imagegen-out")).is_empty());
}

#[test]
fn a_batch_stops_short_at_its_budget_saving_what_it_paid_for() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.txt"),
        "one fox\ntwo foxes\n# a comment\n{\"prompt\": \"three foxes\", \"style\": \"photo\"}\nfour foxes\nfive foxes\n",
    )
    .unwrap();
    let r = run(sim.cmd(dir.path()).args([
        "batch",
        "prompts.txt",
        "--provider",
        "koala",
        "--model",
        "gpt-image-2",
        "--budget",
        "3",
        "--concurrency",
        "1",
    ]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(images_in(&dir.path().join("imagegen-out")).len(), 3);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 3);
    assert!(
        r.stderr.contains("skipped line 5 \"four foxes\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("skipped line 6 \"five foxes\""),
        "{}",
        r.stderr
    );
    // The ledger holds the three paid jobs, none of the skipped lines.
    let prompts: Vec<String> = ledger_history(dir.path())
        .into_iter()
        .map(|h| h.prompt)
        .collect();
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    assert!(
        !prompts
            .iter()
            .any(|p| p == "four foxes" || p == "five foxes")
    );
}

#[test]
fn a_run_killed_mid_batch_is_finished_by_resume_without_a_second_post() {
    // Slow generations, so jobs are accepted and still running when the run is killed.
    let sim = Sim::start(
        SimConfig::default()
            .with_speed(0.4)
            .with_image_size(ImageSize::MaxSide(64))
            .without_rate_limits(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.txt"),
        "a fox\na heron\na koi\na lynx\na wren\na newt\n",
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("imagegen");
    let mut command = std::process::Command::new(bin);
    command
        .current_dir(dir.path())
        .env("XDG_DATA_HOME", data_home(dir.path()))
        .env_remove("IMAGEGEN_DATABASE_URL")
        .args([
            "batch",
            "prompts.txt",
            "--concurrency",
            "3",
            "--provider",
            "kolbo",
        ])
        .env("KOLBO_API_KEY", sim.sim().kolbo_api_key())
        .env("KOLBO_BASE_URL", sim.sim().kolbo_base_url())
        .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
        .env_remove("KOALA_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    loop {
        if !ledger_open_jobs(dir.path()).is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no job was journaled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let open = ledger_open_jobs(dir.path());
    assert!(!open.is_empty(), "the kill came too late to test anything");
    let posts_before = sim.posts();
    let accepted_ids: Vec<String> = ledger_history(dir.path())
        .into_iter()
        .map(|h| h.job_id)
        .collect();

    let mut resume = bare_cmd(dir.path());
    resume
        .env("KOLBO_API_KEY", sim.sim().kolbo_api_key())
        .env("KOLBO_BASE_URL", sim.sim().kolbo_base_url())
        .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
        .args(["resume", "--json"]);
    let r = run(&mut resume);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let json = r.json();
    assert_eq!(json["jobs"].as_array().unwrap().len(), open.len());
    // No second POST: resuming only polled and downloaded.
    assert_eq!(sim.posts(), posts_before);
    assert!(ledger_open_jobs(dir.path()).is_empty());
    // Every accepted job's image is on disk, each job submitted once.
    let saved: Vec<Value> = images_in(&dir.path().join("imagegen-out"))
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                .unwrap()
        })
        .collect();
    for id in &accepted_ids {
        assert!(
            saved.iter().any(|s| s["generation_id"] == id.as_str()),
            "job {id} has no image"
        );
    }
    // The killed run's temporary files are gone too.
    let parts: Vec<PathBuf> = files_in(&dir.path().join("imagegen-out"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".part") || name.ends_with(".tmp")
        })
        .collect();
    assert!(parts.is_empty(), "left behind: {parts:?}");
    // A second resume has nothing to do.
    let again = run(bare_cmd(dir.path())
        .env("KOLBO_API_KEY", sim.sim().kolbo_api_key())
        .env("KOLBO_BASE_URL", sim.sim().kolbo_base_url())
        .args(["resume"]));
    assert_eq!(again.code, 0);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
}

#[test]
fn bad_inputs_exit_2_before_any_request() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 12] = [
        &["generate", "a fox", "--count", "0"],
        &["generate", "a fox", "--count", "65"],
        &["generate", "a fox", "--aspect", "banana"],
        &["generate", "a fox", "--size", "16:9"],
        &["generate", "a fox", "--ref", "ftp://example.com/a.png"],
        &["generate", "a fox", "--max-credits", "cheap"],
        &["generate", "a fox", "--budget", "0"],
        &["generate", "   "],
        &["generate", "a fox", "--style", " "],
        &["estimate", "a fox", "--quality", ""],
        &["batch", "missing.txt"],
        &["resume", "--journal", "missing.jsonl"],
    ];
    for args in cases {
        let r = run(sim.cmd(dir.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("error:"), "{args:?}: {}", r.stderr);
        assert_eq!(
            sim.sim().request_log().total(),
            0,
            "{args:?} sent a request"
        );
    }
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--aspect", "banana"]));
    assert!(r.stderr.contains("banana"), "{}", r.stderr);
    // Wrong values for the settings are input errors too, naming the variable.
    let r = run(sim
        .cmd(dir.path())
        .env("KOALA_PLAN", "gold")
        .args(["generate", "a fox"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("KOALA_PLAN"), "{}", r.stderr);
    assert_eq!(sim.sim().request_log().total(), 0);
    // A model nobody offers: catalogs are read, nothing is submitted.
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--model", "no-such-model"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(sim.posts(), 0);
    // A bad batch line is named, and nothing runs.
    std::fs::write(
        dir.path().join("p.txt"),
        "a fox\n{\"prompt\": \"x\", \"count\": 0}\n",
    )
    .unwrap();
    let r = run(sim.cmd(dir.path()).args(["batch", "p.txt"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert_eq!(sim.posts(), 0);
    // So is a line naming another provider than the command line's.
    std::fs::write(
        dir.path().join("q.txt"),
        "a fox\n{\"prompt\": \"a heron\", \"provider\": \"koala\"}\n",
    )
    .unwrap();
    let r = run(sim
        .cmd(dir.path())
        .args(["batch", "q.txt", "--provider", "kolbo"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert_eq!(sim.posts(), 0);
    // A bad flag value is a usage error naming the flag.
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--provider", "openai"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--provider"), "{}", r.stderr);
    // The gateway runs at least one generation per caller: 0 is refused before it starts.
    let sent = sim.sim().request_log().total();
    let r = run(sim.cmd(dir.path()).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--max-in-flight-per-key",
        "0",
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--max-in-flight-per-key"), "{}", r.stderr);
    assert_eq!(
        sim.sim().request_log().total(),
        sent,
        "serve sent a request"
    );
}

#[test]
fn each_refusal_has_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    // A key the provider does not know: refused (3).
    let sim = Sim::instant();
    let r = run(sim
        .cmd(dir.path())
        .env(
            "KOLBO_API_KEY",
            "kolbo_live_0000000000000000000000000000000000000000",
        )
        .env_remove("KOALA_API_KEY")
        .args(["generate", "a fox"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(sim.posts(), 0);

    // Out of credits: refused (3).
    let sim = Sim::instant();
    sim.sim().set_kolbo_credits(sim.sim().kolbo_api_key(), 0.0);
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--provider", "kolbo"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("credits"), "{}", r.stderr);

    // A model above the account's plan, plan not configured: Koala's 403 (3).
    let sim = Sim::instant();
    sim.sim()
        .set_koala_plan(sim.sim().koala_api_key(), KoalaPlan::Basic);
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a fox",
        "--provider",
        "koala",
        "--model",
        "nano-banana-2",
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("plan"), "{}", r.stderr);
    // Told the plan, imagegen refuses before sending (2).
    let r = run(sim.cmd(dir.path()).env("KOALA_PLAN", "basic").args([
        "generate",
        "a fox",
        "--provider",
        "koala",
        "--model",
        "nano-banana-2",
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);

    // A rate limit longer than is worth waiting: refused (3).
    let sim = Sim::instant();
    sim.sim().faults().inject(FaultRule::always(
        Route::KoalaGenerate,
        Fault::Status {
            status: 429,
            retry_after: Some(3600),
        },
    ));
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--provider", "koala"]));
    assert_eq!(r.code, 3, "{}", r.stderr);

    // Accepted, then failed: generation failed (4).
    let sim = Sim::instant();
    sim.sim().faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::provider_failure(),
    ));
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a fox",
        "--provider",
        "kolbo",
        "--model",
        "z-image/turbo",
    ]));
    assert_eq!(r.code, 4, "{}", r.stderr);

    // Over the price cap: 5, nothing sent.
    let sim = Sim::instant();
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--max-credits", "0.1"]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(sim.posts(), 0);
}

#[test]
fn no_key_appears_in_any_output_log_sidecar_or_journal() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.txt"), "a fox\na heron\n").unwrap();
    let mut texts = Vec::new();
    let runs: [(&[&str], Option<&str>); 6] = [
        (&["generate", "a fox", "-vvv", "--provider", "koala"], None),
        (&["generate", "a fox", "--json"], Some("trace")),
        (&["batch", "p.txt", "-vv"], Some("trace")),
        (&["estimate", "a fox", "--json", "-vvv"], None),
        (&["models", "--json"], Some("trace")),
        (&["credits", "-vvv"], Some("trace")),
    ];
    for (args, rust_log) in runs {
        let mut cmd = sim.cmd(dir.path());
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        let r = run(cmd.args(args));
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        texts.push(r.stdout);
        texts.push(r.stderr);
    }
    // A refusal's error message too.
    let r = run(sim
        .cmd(dir.path())
        .env(
            "KOLBO_API_KEY",
            "kolbo_live_1111111111111111111111111111111111111111",
        )
        .env_remove("KOALA_API_KEY")
        .env("RUST_LOG", "trace")
        .args(["generate", "a fox"]));
    assert_eq!(r.code, 3);
    assert!(!r.stderr.contains("kolbo_live_1111"), "{}", r.stderr);
    let help = run(sim.cmd(dir.path()).args(["generate", "--help"]));
    texts.push(help.stdout);
    for file in files_in(&dir.path().join("imagegen-out")) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            texts.push(text);
        }
    }
    // The ledger, its write-ahead log included.
    let ledger = common::ledger_path(dir.path());
    let mut ledger_files = 0;
    for suffix in ["", "-wal"] {
        let file = PathBuf::from(format!("{}{suffix}", ledger.display()));
        if let Ok(bytes) = std::fs::read(&file) {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
            ledger_files += 1;
        }
    }
    assert!(ledger_files > 0, "no ledger at {}", ledger.display());
    assert!(texts.iter().any(|t| t.contains("generation_id")));
    for key in sim.keys() {
        for text in &texts {
            assert!(!text.contains(&key), "a key leaked into:\n{text}");
        }
    }
    // And the image hosts never saw one.
    for entry in sim.sim().request_log().entries() {
        if matches!(entry.route, Route::CdnImage | Route::KoalaImage) {
            assert!(entry.auth.is_none(), "{entry:?}");
        }
    }
}

#[test]
fn without_a_key_it_runs_on_the_built_in_simulator_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(bare_cmd(dir.path()).args(["generate", "a lighthouse", "--aspect", "16:9"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mentions = r.stderr.lines().filter(|l| l.contains("simulator")).count();
    assert_eq!(mentions, 1, "{}", r.stderr);
    assert_eq!(images_in(&dir.path().join("imagegen-out")).len(), 1);
    let r = run(bare_cmd(dir.path()).args(["models", "--json"]));
    assert_eq!(r.code, 0);
    assert!(r.json()["models"].as_array().unwrap().len() > 5);
}

#[test]
fn sim_prints_its_urls_and_keys_as_one_json_line() {
    let bin = assert_cmd::cargo::cargo_bin("imagegen");
    let mut child = std::process::Command::new(bin)
        .args(["sim", "--json", "--speed", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: Value = serde_json::from_str(&line).unwrap();
    for field in [
        "kolbo_base_url",
        "koala_base_url",
        "kolbo_api_key",
        "koala_api_key",
    ] {
        assert!(json[field].is_string(), "{field}: {json}");
    }
    // The printed values are what the environment variables take.
    let dir = tempfile::tempdir().unwrap();
    let r = run(bare_cmd(dir.path())
        .env("KOLBO_API_KEY", json["kolbo_api_key"].as_str().unwrap())
        .env("KOLBO_BASE_URL", json["kolbo_base_url"].as_str().unwrap())
        .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
        .args(["generate", "a fox", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("built-in simulator"));
    assert_eq!(r.json()["images"][0]["provider"], "kolbo");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_model_whose_nearest_shape_is_far_is_an_input_error_unless_reshaping_is_allowed() {
    // The simulator's Kolbo has no square-only model; its gpt-image-2 makes 1:1, 3:2 and
    // 2:3, so 16:9 would become 3:2 (19 % off).
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let far = [
        "generate",
        "a fox",
        "--aspect",
        "16:9",
        "--provider",
        "kolbo",
        "--model",
        "gpt-image-2",
    ];
    let r = run(sim.cmd(dir.path()).args(far));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("16:9"), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-reshape"), "{}", r.stderr);
    // Only the catalog was read (it is where the model's shapes come from): nothing was
    // submitted.
    let routes: Vec<Route> = sim
        .sim()
        .request_log()
        .entries()
        .iter()
        .map(|e| e.route)
        .collect();
    assert!(
        routes.iter().all(|r| *r == Route::KolboModels),
        "{routes:?}"
    );
    assert_eq!(sim.posts(), 0);
    assert!(images_in(&dir.path().join("imagegen-out")).is_empty());

    // The estimate says why (and other Kolbo models take 16:9).
    let r = run(sim.cmd(dir.path()).args([
        "estimate",
        "a fox",
        "--aspect",
        "16:9",
        "--provider",
        "kolbo",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("kolbo/gpt-image-2"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(line.trim_start().starts_with('-'), "{line}");
    assert!(line.contains("3:2"), "{line}");

    // Allowed, it is sent as the catalog's nearest shape.
    let mut allowed = far.to_vec();
    allowed.push("--allow-reshape");
    let r = run(sim.cmd(dir.path()).args(&allowed));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sim.posts(), 1);
    let body = sim.sim().request_log().for_route(Route::KolboGenerate)[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["aspect_ratio"], "3:2", "{body}");
}

#[test]
fn a_refused_key_is_an_authentication_refusal_naming_it() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "kolbo_live_2222222222222222222222222222222222222222";
    // Pinned to Kolbo with a wrong key: refused (3), in words, also in JSON.
    let r = run(sim.cmd(dir.path()).env("KOLBO_API_KEY", wrong).args([
        "generate",
        "a fox",
        "--provider",
        "kolbo",
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("authentication"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    let r = run(sim.cmd(dir.path()).env("KOLBO_API_KEY", wrong).args([
        "generate",
        "a fox",
        "--provider",
        "kolbo",
        "--json",
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let error = &r.json()["error"];
    assert_eq!(error["kind"], "refused", "{error}");
    assert_eq!(error["exit_code"], 3, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("authentication"),
        "{error}"
    );
    assert_eq!(sim.posts(), 0);

    // `models` and `estimate` print what they have and exit with the failure's code.
    let r = run(sim
        .cmd(dir.path())
        .env("KOLBO_API_KEY", wrong)
        .env_remove("KOALA_API_KEY")
        .args(["models"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("authentication"), "{}", r.stderr);
    let r = run(sim
        .cmd(dir.path())
        .env("KOLBO_API_KEY", wrong)
        .args(["models", "--json"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let json = r.json();
    let models = json["models"].as_array().unwrap();
    assert!(!models.is_empty());
    assert!(models.iter().all(|m| m["provider"] == "koala"), "{json}");
    assert_eq!(json["failures"][0]["provider"], "kolbo", "{json}");
    let r = run(sim.cmd(dir.path()).env("KOLBO_API_KEY", wrong).args([
        "models",
        "--provider",
        "koala",
    ]));
    assert_eq!(r.code, 0, "only KoalaImages was asked for: {}", r.stderr);
    let r = run(sim
        .cmd(dir.path())
        .env("KOLBO_API_KEY", wrong)
        .args(["estimate", "a fox"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stdout.contains("koala/"), "{}", r.stdout);
    assert!(r.stderr.contains("authentication"), "{}", r.stderr);
    // Unpinned, KoalaImages takes the request, and the run says why Kolbo is left out.
    let r = run(sim
        .cmd(dir.path())
        .env("KOLBO_API_KEY", wrong)
        .args(["generate", "a fox"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("kolbo is left out"), "{}", r.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 1);
}

/// A local port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_host_fails_fast_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}/api", dead_port());
    let sim = Sim::instant();
    let [kolbo_key, koala_key] = sim.keys();
    drop(sim);
    let cases: [&[&str]; 3] = [
        &["generate", "a fox"],
        &["generate", "a fox", "--provider", "kolbo"],
        &["generate", "a fox", "--provider", "koala", "--json"],
    ];
    for args in cases {
        let started = Instant::now();
        let r = run(bare_cmd(dir.path())
            .env("KOLBO_API_KEY", &kolbo_key)
            .env("KOALA_API_KEY", &koala_key)
            .env("KOLBO_BASE_URL", &base)
            .env("KOALA_BASE_URL", &base)
            .args(args));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "{args:?} took {took:?}");
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("could not reach"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("refused:"),
            "{args:?} is not a refusal: {}",
            r.stderr
        );
        if args.contains(&"--json") {
            let json = r.json();
            assert_eq!(json["error"]["kind"], "other", "{json}");
            let route = json["route"].as_array().unwrap();
            assert_eq!(route.len(), 1, "one failure per host: {json}");
            assert!(
                route[0].as_str().unwrap().contains("could not reach"),
                "{json}"
            );
        }
    }
    // `models` and `estimate` too.
    for args in [
        &["models"][..],
        &["estimate", "a fox", "--provider", "kolbo"],
    ] {
        let r = run(bare_cmd(dir.path())
            .env("KOLBO_API_KEY", &kolbo_key)
            .env("KOLBO_BASE_URL", &base)
            .args(args));
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("could not reach"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_failed_generation_says_the_providers_reason() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    sim.sim().faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::content_flagged(),
    ));
    let args = [
        "generate",
        "a fox",
        "--provider",
        "kolbo",
        "--model",
        "z-image/turbo",
    ];
    let r = run(sim.cmd(dir.path()).args(args));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("flagged as sensitive"), "{}", r.stderr);
    assert!(!r.stderr.contains("refused"), "{}", r.stderr);
    let r = run(sim.cmd(dir.path()).args(args).arg("--json"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    let json = r.json();
    assert_eq!(json["error"]["kind"], "generation_failed", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("flagged as sensitive"), "{json}");
    assert!(!message.contains("refused"), "{json}");
    let route = json["route"].as_array().unwrap();
    assert!(
        route
            .iter()
            .any(|l| l.as_str().unwrap().contains("flagged as sensitive")),
        "{json}"
    );
    assert!(json["images"].as_array().unwrap().is_empty());
}

#[test]
fn model_auto_lets_kolbo_pick_and_reports_the_model_that_ran() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a product photo of a sneaker",
        "--model",
        "auto",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bodies = sim.sim().request_log().for_route(Route::KolboGenerate);
    assert_eq!(bodies.len(), 1);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 0);
    let body = bodies[0].body.clone().unwrap();
    assert!(
        body.get("model").is_none(),
        "Smart Select sends no model: {body}"
    );
    let json = r.json();
    let image = &json["images"][0];
    assert_eq!(image["provider"], "kolbo");
    // The simulator's Smart Select runs nano-banana-2 for a product photo, and says so.
    assert_eq!(image["model"], "nano-banana-2", "{json}");
    let sidecar_path = dir.path().join(image["sidecar"].as_str().unwrap());
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(sidecar_path).unwrap()).unwrap();
    assert_eq!(sidecar["model"], "nano-banana-2", "{sidecar}");
    // The charge is what Kolbo reported, not the reservation of its highest price.
    let charged = json["credits_charged"].as_f64().unwrap();
    assert!(charged > 0.0 && charged < 16.0, "{json}");

    // The estimate shows the pick alone, priced at Kolbo's highest catalog price.
    let r = run(sim
        .cmd(dir.path())
        .args(["estimate", "a fox", "--model", "auto", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = r.json();
    let best = &json["candidates"][0];
    assert_eq!(best["provider"], "kolbo");
    assert!(best["model"].is_null(), "{best}");
    assert_eq!(best["price_is_cap"], true);
    // At least the dearest flat price (nano-banana-2/4k, 16); a quality or tier may cost more.
    assert!(
        best["credits_per_image"].as_f64().unwrap() >= 16.0,
        "{best}"
    );

    // auto never goes to KoalaImages, whose "no model" is a fixed default.
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a fox",
        "--model",
        "auto",
        "--provider",
        "koala",
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("picks its own model"), "{}", r.stderr);
    // Its worst case is checked against the budget before anything is sent.
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", "a fox", "--model", "auto", "--budget", "5"]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(sim.posts(), 1);
}

#[test]
fn provider_options_reach_the_body_of_their_provider() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a captain on the bridge",
        "--moodboard",
        "6601a1b2c3d4e5f6a7b8c9d0",
        "--visual-dna",
        "65f1a2b3c4d5e6f7a8b9c0d1",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 0);
    let body = sim.sim().request_log().for_route(Route::KolboGenerate)[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["moodboard_id"], "6601a1b2c3d4e5f6a7b8c9d0", "{body}");
    assert_eq!(
        body["visual_dna_ids"],
        serde_json::json!(["65f1a2b3c4d5e6f7a8b9c0d1"]),
        "{body}"
    );
    assert_eq!(r.json()["images"][0]["provider"], "kolbo");

    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a red fox in the snow",
        "--alt-text",
        "--preserve-original",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KolboGenerate), 1);
    let body = sim.sim().request_log().for_route(Route::KoalaGenerate)[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["generateAltText"], true, "{body}");
    assert_eq!(body["preserveOriginal"], true, "{body}");
    assert_eq!(body["model"], "gpt-image-2", "{body}");
    let json = r.json();
    let alt = json["images"][0]["alt"].as_str().unwrap_or_default();
    assert!(!alt.is_empty(), "{json}");

    // Four visual DNAs, or options of both providers: input errors, nothing sent.
    let before = sim.sim().request_log().total();
    let mut four = vec!["generate", "a fox"];
    for id in ["a", "b", "c", "d"] {
        four.extend(["--visual-dna", id]);
    }
    let r = run(sim.cmd(dir.path()).args(&four));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("at most 3"), "{}", r.stderr);
    let r = run(sim.cmd(dir.path()).args([
        "generate",
        "a fox",
        "--moodboard",
        "6601a1b2c3d4e5f6a7b8c9d0",
        "--alt-text",
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(sim.sim().request_log().total(), before);

    // The same keys in a batch line.
    std::fs::write(
        dir.path().join("lines.jsonl"),
        "{\"prompt\": \"a heron\", \"alt_text\": true}\n{\"prompt\": \"a koi\", \"moodboard_id\": \"6601a1b2c3d4e5f6a7b8c9d1\", \"visual_dna_ids\": [\"65f1a2b3c4d5e6f7a8b9c0d1\"]}\n",
    )
    .unwrap();
    let r = run(sim
        .cmd(dir.path())
        .args(["batch", "lines.jsonl", "--concurrency", "1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let koala = sim.sim().request_log().for_route(Route::KoalaGenerate);
    assert_eq!(
        koala.last().unwrap().body.as_ref().unwrap()["generateAltText"],
        true
    );
    let kolbo = sim.sim().request_log().for_route(Route::KolboGenerate);
    let body = kolbo.last().unwrap().body.clone().unwrap();
    assert_eq!(body["moodboard_id"], "6601a1b2c3d4e5f6a7b8c9d1", "{body}");
    assert_eq!(
        body["visual_dna_ids"][0], "65f1a2b3c4d5e6f7a8b9c0d1",
        "{body}"
    );
}

#[test]
fn moodboards_and_visual_dna_list_the_account() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let r = run(sim.cmd(dir.path()).args(["moodboards"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("6601a1b2c3d4e5f6a7b8c9d0"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Warm Film"), "{}", r.stdout);
    let r = run(sim.cmd(dir.path()).args(["moodboards", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json()["moodboards"].as_array().unwrap().len() >= 3);

    let r = run(sim.cmd(dir.path()).args(["visual-dna"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Captain Mira"), "{}", r.stdout);
    let r = run(sim.cmd(dir.path()).args(["visual-dna", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dnas = r.json()["visual_dna"].as_array().unwrap().clone();
    assert!(dnas.iter().any(|d| d["id"] == "65f1a2b3c4d5e6f7a8b9c0d1"));

    // Without Kolbo there is nothing to list: an input error.
    let r = run(sim
        .cmd(dir.path())
        .env_remove("KOLBO_API_KEY")
        .args(["moodboards"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("KOLBO_API_KEY"), "{}", r.stderr);
}

/// The sidecar of the first image of a `generate --json` run in `dir`.
fn first_sidecar(dir: &Path, json: &Value) -> Value {
    let path = dir.join(json["images"][0]["sidecar"].as_str().unwrap());
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_sidecar_records_what_was_asked_and_what_was_sent() {
    const MOODBOARD: &str = "6601a1b2c3d4e5f6a7b8c9d0";
    let flags = [
        "a lighthouse at dusk",
        "--aspect",
        "16:9",
        "--style",
        "watercolor",
        "--moodboard",
        MOODBOARD,
        "--json",
    ];
    let check_sent = |sidecar: &Value| {
        let sent = &sidecar["sent"];
        assert_eq!(sent["provider"], "kolbo", "{sidecar}");
        assert_eq!(sent["shape"], "16:9", "{sidecar}");
        // Kolbo has no style field: the style goes in the prompt.
        assert_eq!(
            sent["style"],
            serde_json::json!({"kind": "in_prompt", "value": "watercolor"}),
            "{sidecar}"
        );
        assert_eq!(sent["options"]["moodboard_id"], MOODBOARD, "{sidecar}");
        assert_eq!(sidecar["asked"]["request"]["shape"], "16:9", "{sidecar}");
        assert_eq!(
            sidecar["asked"]["request"]["style"], "watercolor",
            "{sidecar}"
        );
        assert_eq!(
            sidecar["asked"]["request"]["extras"]["kolbo"]["moodboard_id"], MOODBOARD,
            "{sidecar}"
        );
        assert_eq!(
            sidecar["asked"]["call"]["provider"],
            Value::Null,
            "{sidecar}"
        );
    };

    // Against an `imagegen sim` reached through the environment: the plan sent is the
    // one the estimate showed, and the client cannot tell it is a simulator.
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let estimate = run(sim.cmd(dir.path()).arg("estimate").args(flags));
    assert_eq!(estimate.code, 0, "{}", estimate.stderr);
    let planned = estimate.json()["candidates"][0]["calls"][0].clone();
    let r = run(sim.cmd(dir.path()).arg("generate").args(flags));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = r.json();
    let sidecar = first_sidecar(dir.path(), &json);
    check_sent(&sidecar);
    assert_eq!(sidecar["sent"], planned, "{sidecar}");
    assert_eq!(json["images"][0]["sent"], sidecar["sent"], "{json}");
    assert_eq!(sidecar["simulated"], false, "{sidecar}");
    let text = serde_json::to_string(&sidecar).unwrap();
    for key in sim.keys() {
        assert!(
            !text.contains(&key),
            "a key leaked into the sidecar: {text}"
        );
    }

    // With no key, against the simulator in the process: `simulated` says so.
    let dir = tempfile::tempdir().unwrap();
    let r = run(bare_cmd(dir.path()).arg("generate").args(flags));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = r.json();
    let sidecar = first_sidecar(dir.path(), &json);
    check_sent(&sidecar);
    assert_eq!(sidecar["simulated"], true, "{sidecar}");
    assert_eq!(json["images"][0]["sent"], sidecar["sent"], "{json}");
}

#[test]
fn a_huge_prompt_exits_2_with_a_short_message_and_sends_nothing() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    // 110,000 characters: over the 32,000 any prompt may have (and under the 128 KiB one
    // argument may be).
    let prompt = "a zebra crossing ".repeat(6_500);
    for command in ["generate", "estimate"] {
        let r = run(sim.cmd(dir.path()).args([command, prompt.as_str()]));
        assert_eq!(
            r.code,
            2,
            "{command}: {}",
            r.stderr.chars().take(500).collect::<String>()
        );
        assert!(
            r.stderr.len() < 2_048,
            "{command}: {} bytes of stderr",
            r.stderr.len()
        );
        assert!(!r.stderr.contains("zebra"), "{command}: {}", r.stderr);
        assert!(
            r.stderr.contains("110,499 characters") && r.stderr.contains("at most 32,000"),
            "{command}: {}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "{command}");
        // With --json, the error is as short.
        let r = run(sim
            .cmd(dir.path())
            .args([command, prompt.as_str(), "--json"]));
        assert_eq!(r.code, 2);
        assert!(
            r.stdout.len() < 2_048 && !r.stdout.contains("zebra"),
            "{}",
            r.stdout
        );
        assert_eq!(r.json()["error"]["kind"], "invalid_input", "{}", r.stdout);
    }
    assert_eq!(sim.sim().request_log().total(), 0);
}

#[test]
fn a_koala_only_prompt_over_its_bound_is_refused_before_sending() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let prompt = "a heron in the reeds ".repeat(250); // 5,249 characters once trimmed
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", prompt.as_str(), "--provider", "koala"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("takes prompts of at most 4,000 characters; this one has 5,249"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("heron"), "{}", r.stderr);
    assert_eq!(sim.posts(), 0);
    // Naming a Koala-only model is the same input error.
    let r = run(sim
        .cmd(dir.path())
        .args(["generate", prompt.as_str(), "--model", "ideogram-3.0"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("koala/ideogram-3.0: takes prompts of at most 4,000"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.posts(), 0);
    // `estimate` shows why each Koala model is left out, and what else could take it.
    let r = run(sim
        .cmd(dir.path())
        .args(["estimate", prompt.as_str(), "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let candidates = r.json()["candidates"].as_array().unwrap().clone();
    let koala: Vec<&Value> = candidates
        .iter()
        .filter(|c| c["provider"] == "koala" && !c["model"].is_null())
        .collect();
    assert!(!koala.is_empty());
    for c in koala {
        assert_eq!(c["eligible"], false, "{c}");
        assert!(
            c["exclusions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "prompt_too_long" && e["max"] == 4000),
            "{c}"
        );
    }
    assert_eq!(sim.posts(), 0);
}

#[test]
fn a_batch_of_a_million_lines_fails_fast_naming_the_limit() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), "a\n".repeat(1_000_001)).unwrap();
    let started = Instant::now();
    let r = run(sim.cmd(dir.path()).args(["batch", "big.txt"]));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("1000001 prompts")
            && r.stderr.contains("at most 10000")
            && r.stderr.contains("split the file"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.len() < 2_048);
    assert_eq!(sim.sim().request_log().total(), 0);

    // A file over 64 MiB is refused on its size, before it is read.
    let huge = std::fs::File::create(dir.path().join("huge.txt")).unwrap();
    huge.set_len(64 * 1024 * 1024 + 1).unwrap();
    drop(huge);
    let r = run(sim.cmd(dir.path()).args(["batch", "huge.txt"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than 64 MiB") && r.stderr.contains("split"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.sim().request_log().total(), 0);
}

#[test]
fn a_batch_file_byte_order_mark_is_not_part_of_the_first_prompt() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bom.txt"),
        "\u{feff}a red fox\r\na blue heron\r\n",
    )
    .unwrap();
    let r = run(sim
        .cmd(dir.path())
        .args(["batch", "bom.txt", "--provider", "koala", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["prompt"], "a red fox", "{items:?}");
    assert_eq!(items[1]["prompt"], "a blue heron");
    let posts = sim.sim().request_log().for_route(Route::KoalaGenerate);
    assert_eq!(posts.len(), 2);
    for post in posts {
        let prompt = post.body.unwrap()["prompt"].as_str().unwrap().to_owned();
        assert!(!prompt.contains('\u{feff}'), "{prompt:?}");
    }
}

#[test]
fn concurrency_outside_1_to_32_is_refused() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.txt"), "a fox\n").unwrap();
    for n in ["0", "33", "1000"] {
        let r = run(sim
            .cmd(dir.path())
            .args(["batch", "p.txt", "--concurrency", n]));
        assert_eq!(r.code, 2, "{n}: {}", r.stderr);
        assert!(
            r.stderr.contains("--concurrency") && r.stderr.contains("between 1 and 32"),
            "{n}: {}",
            r.stderr
        );
    }
    assert_eq!(sim.sim().request_log().total(), 0);
}

#[test]
fn long_batch_prompts_are_shown_shortened_and_kept_whole_in_json() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    let long = format!("a fox {}", "in deep snow ".repeat(150))
        .trim()
        .to_owned();
    std::fs::write(dir.path().join("p.txt"), format!("{long}\n")).unwrap();
    let r = run(sim
        .cmd(dir.path())
        .args(["batch", "p.txt", "--provider", "koala"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("a fox in deep snow"), "{}", r.stderr);
    assert!(r.stderr.contains('…'), "{}", r.stderr);
    assert!(!r.stderr.contains(&long), "{}", r.stderr);
    assert!(r.stderr.len() < 2_048, "{}", r.stderr);
    let r = run(sim.cmd(dir.path()).args([
        "batch",
        "p.txt",
        "--provider",
        "koala",
        "--json",
        "--rerun",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["items"][0]["prompt"], long.as_str());
}

#[test]
fn a_batch_run_again_skips_the_lines_already_saved_and_rerun_pays_again() {
    let sim = Sim::instant();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.txt"), "one fox\ntwo foxes\n").unwrap();
    let batch = |extra: &[&str]| {
        let mut args = vec!["batch", "p.txt", "--provider", "koala"];
        args.extend_from_slice(extra);
        run(sim.cmd(dir.path()).args(args))
    };
    let first = batch(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 2);

    // The same file again: nothing is sent, and each line says where it is.
    let again = batch(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("line 1 \"one fox\": already saved as imagegen-out/one-fox-1."),
        "{}",
        again.stderr
    );
    let json = batch(&["--json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.json()["already_saved"].as_array().unwrap().len(), 2);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 2);

    // A new line is the only one paid for.
    std::fs::write(
        dir.path().join("p.txt"),
        "one fox\ntwo foxes\nthree foxes\n",
    )
    .unwrap();
    let grown = batch(&[]);
    assert_eq!(grown.code, 0, "{}", grown.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 3);

    // --rerun pays again for every line.
    let rerun = batch(&["--rerun"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(sim.sim().request_log().count(Route::KoalaGenerate), 6);
    assert_eq!(ledger_history(dir.path()).len(), 6);
}

#[test]
fn resume_imports_a_journal_of_an_earlier_version_reading_past_a_bad_line() {
    let sim = Sim::start(
        SimConfig::default()
            .with_speed(0.4)
            .with_image_size(ImageSize::MaxSide(64))
            .without_rate_limits(),
    );
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("old.jsonl");
    // An earlier version's run, killed while its Kolbo job was still running.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let job_id = runtime.block_on(async {
        let config = imagegen::ClientConfig::from_lookup(|name| match name {
            "KOLBO_API_KEY" => Some(sim.sim().kolbo_api_key().to_owned()),
            "KOLBO_BASE_URL" => Some(sim.sim().kolbo_base_url()),
            "IMAGEGEN_POLL_INTERVAL_MS" => Some("50".into()),
            _ => None,
        })
        .unwrap();
        let client = imagegen::Client::builder().config(config).build().unwrap();
        let journal = std::sync::Arc::new(imagegen::Journal::open(&journal_path).unwrap());
        let request = imagegen::GenerationRequest::builder("an old fox")
            .build()
            .unwrap();
        let out = dir.path().join("imagegen-out");
        let options = imagegen::GenerateOptions::default()
            .journal(journal.clone())
            .out_dir(&out);
        let run =
            tokio::spawn(async move { client.generate_to_dir(&request, &out, &options).await });
        let started = Instant::now();
        while journal.unfinished().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no job was journaled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        journal.unfinished().unwrap()[0].job.job_id.clone()
    });
    drop(runtime);
    // A line nobody can read, in the middle.
    let text = std::fs::read_to_string(&journal_path).unwrap();
    std::fs::write(
        &journal_path,
        format!("{{\"event\":\"from_the_future\",\"v\":9}}\n{text}"),
    )
    .unwrap();
    let posts_before = sim.posts();

    let r = run(sim
        .cmd(dir.path())
        .args(["resume", "--journal", "old.jsonl", "--json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("skipped line 1: unknown event `from_the_future`"),
        "{}",
        r.stderr
    );
    let json = r.json();
    assert_eq!(json["imported"]["accepted"], 1, "{json}");
    assert_eq!(json["jobs"][0]["job_id"], job_id.as_str());
    assert_eq!(json["jobs"][0]["closed"], true);
    assert_eq!(sim.posts(), posts_before);
    assert!(ledger_open_jobs(dir.path()).is_empty());
    // Imported once: a second import adds nothing and leaves nothing to do.
    let again = run(sim
        .cmd(dir.path())
        .args(["resume", "--journal", "old.jsonl"]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
}
