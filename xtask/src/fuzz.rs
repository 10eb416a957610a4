//! `cargo xtask fuzz`: seeds the corpora of the fuzz targets in `fuzz/` from `fixtures/`,
//! builds them once (`cargo +nightly fuzz build`), then runs each for `--seconds` with
//! libFuzzer's `-max_total_time`, printing executions and executions per second per target
//! and any crash. Exits non-zero when a target crashed. See docs/fuzzing.md.
//!
//! Seeds are written into `fuzz/corpus/<target>/` (small, committed); what the fuzzer
//! finds goes to `fuzz/corpus/<target>/generated/` (ignored by git), crashes to
//! `fuzz/artifacts/<target>/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagegen_core::fixture::Fixture;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub(crate) struct FuzzArgs {
    /// Seconds each target runs (libFuzzer's `-max_total_time`).
    #[arg(long, default_value_t = 60)]
    pub(crate) seconds: u64,
    /// Stop each target after this many executions (libFuzzer's `-runs`), or at
    /// `--seconds`, whichever comes first.
    #[arg(long)]
    pub(crate) runs: Option<u64>,
    /// Run this target alone (default: every target).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    pub(crate) target: Option<String>,
    /// Only write the seed corpora from fixtures/; build and run nothing.
    #[arg(long)]
    pub(crate) seed_only: bool,
}

/// Every fuzz target, as named in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: [&str; 9] = [
    "kolbo_answer",
    "koala_answer",
    "retry_after",
    "image_complete",
    "finite_numbers",
    "shape_credits",
    "request",
    "batch_lines",
    "gateway_body",
];

/// The build both `build` and `run` use: no sanitizer (the workspace forbids `unsafe`;
/// without ASan a target runs several times faster), debug assertions and overflow checks
/// on (an overflow is a crash).
const BUILD_FLAGS: [&str; 3] = ["--sanitizer=none", "--debug-assertions", "--release"];

fn fuzz_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// What one target's run showed.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    per_second: Option<u64>,
    crash: Option<String>,
}

pub(crate) fn run(args: &FuzzArgs) -> Result<(), String> {
    let root = fuzz_root();
    let written = seed(&root, &crate::fixtures::fixtures_root())?;
    println!("seed corpora: {written} files under fuzz/corpus/");
    if args.seed_only {
        return Ok(());
    }
    let targets: Vec<&'static str> = TARGETS
        .into_iter()
        .filter(|t| args.target.as_deref().is_none_or(|only| only == *t))
        .collect();
    let mut build = cargo_fuzz(&root);
    build.arg("build").args(BUILD_FLAGS);
    if let [only] = targets.as_slice() {
        build.arg(only);
    }
    let status = build.status().map_err(|e| {
        format!("cannot run `cargo +nightly fuzz` (install it: cargo install cargo-fuzz): {e}")
    })?;
    if !status.success() {
        return Err(format!("`cargo +nightly fuzz build` failed ({status})"));
    }
    let mut outcomes = Vec::new();
    for target in targets {
        match args.runs {
            Some(runs) => println!("fuzz {target}: {runs} runs, at most {} s", args.seconds),
            None => println!("fuzz {target}: {} s", args.seconds),
        }
        let outcome = run_target(&root, target, args.seconds, args.runs)?;
        print_outcome(&outcome);
        outcomes.push(outcome);
    }
    println!();
    println!("| target | executions | exec/s | result |");
    println!("|---|---:|---:|---|");
    for o in &outcomes {
        let shown = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), thousands);
        println!(
            "| `{}` | {} | {} | {} |",
            o.target,
            shown(o.executions),
            shown(o.per_second),
            o.crash
                .as_deref()
                .map_or("no crash".to_owned(), |c| format!("CRASH: {c}"))
        );
    }
    let crashed = outcomes.iter().filter(|o| o.crash.is_some()).count();
    if crashed > 0 {
        return Err(format!(
            "{crashed} target(s) crashed; the inputs are in fuzz/artifacts/ (reproduce with `cargo +nightly fuzz run <target> <file>`)"
        ));
    }
    Ok(())
}

/// `cargo +nightly fuzz` in `fuzz/`, without the variables the stable `cargo xtask` run
/// set (they would pin the toolchain or the cargo binary).
fn cargo_fuzz(root: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_MANIFEST_DIR")
        .args(["+nightly", "fuzz"]);
    command
}

fn run_target(
    root: &Path,
    target: &'static str,
    seconds: u64,
    runs: Option<u64>,
) -> Result<Outcome, String> {
    let corpus = root.join("corpus").join(target);
    let generated = corpus.join("generated");
    fs::create_dir_all(&generated).map_err(|e| format!("{}: {e}", generated.display()))?;
    let output = cargo_fuzz(root)
        .arg("run")
        .args(BUILD_FLAGS)
        .arg(target)
        // New inputs go to the first directory; the seeds are read from the second.
        .arg(&generated)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(runs.map(|n| format!("-runs={n}")))
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .output()
        .map_err(|e| format!("cannot run `cargo +nightly fuzz run {target}`: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let log_path = root.join("target").join(format!("{target}.log"));
    if let Some(dir) = log_path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let _ = fs::write(&log_path, log.as_bytes());
    let stat = |name: &str| {
        log.lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|rest| rest.trim_start_matches(':').trim().parse::<u64>().ok())
            .next_back()
    };
    let mut executions = stat("stat::number_of_executed_units");
    let mut per_second = stat("stat::average_exec_per_sec");
    if executions.is_none() {
        // A crashed run prints no final stats: take the last status line's.
        if let Some(line) = log
            .lines()
            .rev()
            .find(|l| l.starts_with('#') && l.contains("exec/s"))
        {
            executions = line[1..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok());
            per_second = line
                .split("exec/s:")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok());
        }
    }
    let crash = (!output.status.success()).then(|| {
        let artifact = log
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map(str::trim);
        let panic = log
            .lines()
            .find(|l| l.contains("panicked at"))
            .map(str::trim);
        match (panic, artifact) {
            (Some(p), Some(a)) => format!("{p} (input: {a}; log: {})", log_path.display()),
            (None, Some(a)) => format!("input: {a}; log: {}", log_path.display()),
            (p, None) => format!(
                "{} ({}; log: {})",
                p.unwrap_or("the run failed"),
                output.status,
                log_path.display()
            ),
        }
    });
    Ok(Outcome {
        target,
        executions,
        per_second,
        crash,
    })
}

fn print_outcome(o: &Outcome) {
    let shown = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), thousands);
    println!(
        "  {}: {} executions, {} exec/s{}",
        o.target,
        shown(o.executions),
        shown(o.per_second),
        o.crash
            .as_deref()
            .map_or(String::new(), |c| format!(", CRASH: {c}"))
    );
}

fn thousands(n: u64) -> String {
    imagegen_core::request::thousands(n)
}

/// Writes the seed corpora: the recorded bodies of `fixtures/` for the targets that read
/// provider answers, and a few hand-written inputs for the others. Returns how many files.
pub(crate) fn seed(root: &Path, fixtures: &Path) -> Result<usize, String> {
    let mut seeds: BTreeMap<(&'static str, String), Vec<u8>> = BTreeMap::new();
    for provider in ["kolbo", "koala"] {
        for path in json_files(&fixtures.join(provider))? {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let fixture: Fixture = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a fixture: {e}", path.display()))?;
            let relative = path.strip_prefix(fixtures.join(provider)).unwrap_or(&path);
            let name = format!(
                "{provider}-{}",
                relative
                    .to_string_lossy()
                    .replace(['/', '\\'], "-")
                    .trim_end_matches(".json")
            );
            let response = &fixture.response;
            let body = match (&response.body_text, &response.body) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(json)) => serde_json::to_vec(json).map_err(|e| e.to_string())?,
                (None, None) => Vec::new(),
            };
            let status = response.status.to_be_bytes();
            if provider == "kolbo" {
                let route = kolbo_route(&fixture.request.method, &fixture.request.path);
                seeds.insert(
                    ("kolbo_answer", name.clone()),
                    [&[route], &status[..], &body].concat(),
                );
            } else {
                seeds.insert(
                    ("koala_answer", name.clone()),
                    [&status[..], &body].concat(),
                );
            }
            seeds.insert(("finite_numbers", name.clone()), body);
            if let Some(request) = &fixture.request.body {
                seeds.insert(
                    ("finite_numbers", format!("{name}-request")),
                    serde_json::to_vec(request).map_err(|e| e.to_string())?,
                );
            }
            if let Some(value) = response.headers.get("retry-after") {
                seeds.insert(("retry_after", name), [&NOW[..], value.as_bytes()].concat());
            }
        }
    }
    for (target, name, bytes) in hand_written() {
        seeds.insert((target, name), bytes);
    }
    for ((target, name), bytes) in &seeds {
        let dir = root.join("corpus").join(target);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        fs::write(dir.join(name), bytes).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(seeds.len())
}

/// `kolbo_answer`'s route byte for a recorded request (see the target).
fn kolbo_route(method: &str, path: &str) -> u8 {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [.., "generate", "image"] if method == "POST" => 0,
        [.., "status"] => 1,
        [.., "cancel"] => 2,
        [.., "models"] => 3,
        [.., "credits"] => 4,
        [.., "moodboards"] => 5,
        [.., "moodboards", _] => 6,
        [.., "visual-dna"] => 7,
        [.., "visual-dna", _] => 8,
        _ => 9,
    }
}

/// `retry_after`'s clock for the seeds: Wed, 21 Oct 2015 07:28:00 GMT.
const NOW: [u8; 8] = 1_445_412_480u64.to_be_bytes();

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            files.extend(json_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Inputs for what no fixture holds: user text, request bodies, images.
fn hand_written() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds.push((target, format!("hand-{name}"), bytes));
    };
    for (name, value) in [
        ("seconds", "120"),
        ("fraction", "1.5"),
        ("date", "Wed, 21 Oct 2015 07:28:30 GMT"),
        ("past", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("huge", "99999999999999999999"),
    ] {
        add("retry_after", name, [&NOW[..], value.as_bytes()].concat());
    }
    for (name, text) in [
        ("ratio", "16:9"),
        ("pixels", "1024x1024"),
        ("times", " 1536 × 1024 "),
        ("word", "Landscape"),
        ("credits", "2.5"),
        ("micro", "0.000001"),
        ("json-string", "\"8\""),
        ("worth", "$0.01"),
        ("exponent", "1e3"),
    ] {
        add("shape_credits", name, text.as_bytes().to_vec());
    }
    add(
        "batch_lines",
        "mixed",
        b"# prompts\na red fox\n\n{\"prompt\": \"a heron\", \"count\": 2, \"aspect\": \"16:9\"}\n"
            .to_vec(),
    );
    add(
        "batch_lines",
        "options",
        b"{\"prompt\":\"x\",\"size\":\"1024x1536\",\"quality\":\"high\",\"style\":\"anime\",\"refs\":[\"https://example.com/a.png\"],\"provider\":\"kolbo\",\"model\":\"flux\",\"max_credits\":\"12.5\",\"no_enhance\":true,\"allow_reshape\":true}\n".to_vec(),
    );
    for (name, body) in [
        ("minimal", r#"{"prompt":"a red fox"}"#),
        (
            "full",
            r#"{"prompt":"a red fox","model":"auto","n":2,"size":"1536x1024","quality":"hd","style":"vivid","response_format":"b64_json","user":"u1","stream":false,"background":null,"output_format":"png","extra":1}"#,
        ),
        (
            "ratio",
            r#"{"prompt":"p","size":"16:9","quality":"turbo","model":"koala/gpt-image-2"}"#,
        ),
        ("bad-n", r#"{"prompt":"p","n":0}"#),
    ] {
        add("gateway_body", name, body.as_bytes().to_vec());
    }
    // Images: content type 0 (none), no splits, then the body; and one split in two.
    let png = [
        &b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00"[..],
        &[0; 4],
        &[0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82],
    ]
    .concat();
    let jpeg = [
        &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..],
        b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        &[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x04, 0x00, 0x05, 0x03],
        &[0; 24],
        &[0xFF, 0xD9],
    ]
    .concat();
    let gif = [
        &b"GIF89a\x20\x03\x58\x02\x00\x00\x00"[..],
        &[0; 24],
        &[0x3B],
    ]
    .concat();
    let webp = [
        &b"RIFF\x24\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00"[..],
        &[0; 20],
    ]
    .concat();
    for (name, image) in [("png", png), ("jpeg", jpeg), ("gif", gif), ("webp", webp)] {
        add("image_complete", name, [&[0, 0][..], &image].concat());
        add(
            "image_complete",
            &format!("{name}-split"),
            [&[1, 1, 13, 0][..], &image].concat(),
        );
    }
    seeds
}
