//! `imagegen batch` as it runs: each prompt printed the moment it is saved (a slow one
//! holds up no other), rate-limit waits said in plain lines without a terminal, and Ctrl-C
//! listing what was saved and which lines were never sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::time::Duration;

use imagegen::sim::{Fault, FaultRule, ImageSize, Route, SimConfig};

mod common;

use common::{Sim, run_streaming as run};

/// A simulator drawing small images.
fn small_images_sim(config: SimConfig) -> Sim {
    Sim::start(config.with_image_size(ImageSize::MaxSide(64)))
}

/// Where `needle` is in `text`, or a failure showing `text`.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not found in:\n{text}"))
}

#[test]
fn a_slow_line_holds_up_no_other_line() {
    // Every KoalaImages submission takes 3 s to be answered; Kolbo answers at once.
    let sim = small_images_sim(
        SimConfig::default()
            .with_speed(0.0)
            .with_fault(FaultRule::always(
                Route::KoalaGenerate,
                Fault::SlowFirstByte(Duration::from_secs(3)),
            )),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.txt"),
        "{\"prompt\": \"a slow heron\", \"provider\": \"koala\"}\n\
         {\"prompt\": \"a quick fox\", \"provider\": \"kolbo\"}\n\
         {\"prompt\": \"a quick koi\", \"provider\": \"kolbo\"}\n",
    )
    .unwrap();
    let r = run(sim
        .streaming_cmd(dir.path())
        .args(["batch", "prompts.txt", "--concurrency", "3"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The quick lines are printed (path and status) before the slow first line.
    let slow = at(&r.stdout, "a-slow-heron-1.");
    assert!(at(&r.stdout, "a-quick-fox-1.png") < slow, "{}", r.stdout);
    assert!(at(&r.stdout, "a-quick-koi-1.png") < slow, "{}", r.stdout);
    let slow = at(&r.stderr, "Saved line 1:");
    assert!(at(&r.stderr, "Saved line 2:") < slow, "{}", r.stderr);
    assert!(at(&r.stderr, "Saved line 3:") < slow, "{}", r.stderr);
    assert!(
        at(&r.stderr, "Finished 3 of 3 prompt(s)") > slow,
        "{}",
        r.stderr
    );
    // No terminal: no progress bar drawing on stderr.
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
}

#[test]
fn a_rate_limit_wait_is_said_in_a_plain_line() {
    let sim = small_images_sim(
        SimConfig::default()
            .with_speed(0.0)
            .with_fault(FaultRule::nth(
                Route::KolboGenerate,
                1,
                Fault::Status {
                    status: 429,
                    retry_after: Some(1),
                },
            )),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prompts.txt"), "a fox\n").unwrap();
    let r =
        run(sim
            .streaming_cmd(dir.path())
            .args(["batch", "prompts.txt", "--provider", "kolbo"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Waiting line 1: waiting for Kolbo's rate limit (1 s)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Saved line 1:"), "{}", r.stderr);
}

#[test]
fn ctrl_c_lists_what_was_saved_and_the_lines_never_sent() {
    // Slow generations, one at a time: Ctrl-C comes once the first line is saved, while
    // the second runs and the rest wait.
    let sim = small_images_sim(SimConfig::default().with_speed(0.4).without_rate_limits());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.txt"),
        "a fox\na heron\na koi\na lynx\na wren\na newt\n",
    )
    .unwrap();
    let mut child = sim
        .streaming_cmd(dir.path())
        .args([
            "batch",
            "prompts.txt",
            "--concurrency",
            "1",
            "--provider",
            "kolbo",
        ])
        .spawn()
        .unwrap();
    // The first path on stdout: line 1 is saved, and printed before the batch ends.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("a-fox-1.png"), "{first:?}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(1), "{stderr}");

    // The existing note, then the lists.
    let note = at(&stderr, "finish them with: imagegen resume");
    let saved = at(&stderr, "note: saved before the interrupt: 1 of 6 line(s)");
    assert!(note < saved, "{stderr}");
    assert!(
        stderr[saved..].contains("  line 1 \"a fox\": imagegen-out/a-fox-1.png"),
        "{stderr}"
    );
    let never = at(&stderr, "note: never sent, nothing spent:");
    let listed = &stderr[never..];
    for (line, prompt) in [(3, "a koi"), (4, "a lynx"), (5, "a wren"), (6, "a newt")] {
        assert!(
            listed.contains(&format!("  line {line} \"{prompt}\"")),
            "line {line} is not listed as never sent:\n{stderr}"
        );
    }
    // A line whose job was accepted is not among those never sent, and nothing was sent
    // after the interrupt: every POST is a journaled job.
    let accepted: Vec<String> = common::ledger_history(dir.path())
        .into_iter()
        .map(|h| h.prompt)
        .collect();
    for prompt in &accepted {
        assert!(
            !listed.contains(&format!("{prompt:?}")),
            "{prompt:?} was accepted yet is listed as never sent:\n{stderr}"
        );
    }
    assert_eq!(
        sim.sim().request_log().count(Route::KolboGenerate),
        accepted.len()
    );
}
