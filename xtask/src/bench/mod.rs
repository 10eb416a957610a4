//! `cargo xtask bench [--quick]`: four benchmarks against the simulator, side by side in
//! one run, reported as ratios (these machines are noisy), printed as a table and written
//! to `docs/benchmarks.md`. Release mode only: a debug build re-runs itself with
//! `cargo run --release`. Loopback only; every loop is bounded.
//!
//! A fifth, `--only instances`, runs apart (it needs PostgreSQL and the release `imagegen`
//! binary): several gateways on one ledger. A sixth, `--only gateway`, runs apart too (it
//! spawns `imagegen serve` and installs LiteLLM's proxy from PyPI into `target/bench-venv`):
//! the latency the gateway adds and its requests per second per core, against LiteLLM's
//! proxy. Their sections of `docs/benchmarks.md` are written by hand from one run and kept
//! when the other four regenerate the file.

pub(crate) mod batch;
pub(crate) mod clock;
pub(crate) mod gateway;
pub(crate) mod instances;
pub(crate) mod measure;
pub(crate) mod overhead;
pub(crate) mod polling;
pub(crate) mod run_dir;
pub(crate) mod scale;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Smaller runs (well under a minute).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Run one benchmark and print its table, without writing `docs/benchmarks.md`.
    #[arg(long, value_enum)]
    pub(crate) only: Option<Bench>,
    /// With `--only overhead`: run this path alone, for a profiler (`valgrind
    /// --tool=callgrind`, `perf record`, `strace -c`).
    #[arg(long, value_enum, requires = "only")]
    pub(crate) path: Option<overhead::Path>,
    /// With `--only overhead`: generations per path (default 2,000; 300 with `--quick`).
    #[arg(long, requires = "only")]
    pub(crate) generations: Option<usize>,
    /// With `--only gateway`: measure `imagegen serve` and the simulator alone, without
    /// installing or running LiteLLM (for profiling the gateway).
    #[arg(long, requires = "only")]
    pub(crate) without_litellm: bool,
}

/// One of the four benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Bench {
    /// 1: client overhead against a hand-written reqwest loop.
    Overhead,
    /// 2: 1, 64, 1,000 and 10,000 generations in flight.
    Scale,
    /// 3: ready-to-known latency and polls per job against the docs' loop.
    Polling,
    /// 4: a batch under Kolbo's 10 generations/min.
    Batch,
    /// 5: several `imagegen serve` processes on one PostgreSQL ledger: shared Kolbo pacing
    /// and throughput through 1 and 3 gateways (needs PostgreSQL; `--only` alone).
    Instances,
    /// 6: the latency `imagegen serve` adds (open loop, 1,000 requests/s) and its requests
    /// per second per core (closed loop), against LiteLLM's proxy (`--only` alone;
    /// installs LiteLLM from PyPI into `target/bench-venv` once).
    Gateway,
}

struct Sizes {
    overhead: usize,
    scales: &'static [(usize, usize)],
    polling_jobs: usize,
    batch: usize,
}

const FULL: Sizes = Sizes {
    overhead: 2_000,
    scales: &[(1, 12), (64, 640), (1_000, 3_000), (10_000, 20_000)],
    polling_jobs: 700,
    batch: 60,
};

const QUICK: Sizes = Sizes {
    overhead: 300,
    scales: &[(1, 4), (64, 192), (1_000, 1_000)],
    polling_jobs: 140,
    batch: 30,
};

/// The overhead guard: our full path may cost at most this much wall time of the
/// hand-written loop's...
const WALL_GUARD: f64 = 1.05;
/// ...and at most this much CPU time. The former 10 % CPU target is retired (decision 20):
/// what is left above it is per-request timeouts and the provider layer that keeps paid
/// jobs resumable, not waste worth byte-level decoding tricks.
const CPU_GUARD: f64 = 1.30;

/// Benchmark 3's goal: the median time from "ready" to "known", in seconds.
const POLL_P50_GOAL: f64 = 0.3;

/// Benchmark 2's goal: this many generations in flight in one process...
const SCALE_GOAL_IN_FLIGHT: usize = 10_000;
/// ...at no more than this peak resident memory, in MiB.
const SCALE_GOAL_MIB: f64 = 150.0;

/// The simulator's speed in the scale runs (a 20 s model takes 0.4 s).
const SCALE_SPEED: f64 = 0.02;

/// Findings that explain the overhead figures; kept across regenerations.
const OPTIMIZATION_NOTES: &str = "## Where the client's CPU goes

**Method.** CPU time on these shared 2-core VMs drifts from run to run. Each generation is
timed on its own (`CLOCK_THREAD_CPUTIME_ID`), the paths take turns one generation at a
time in an order shuffled every round, and the figures are medians; the A/A row (a second,
identical hand loop) is the method's own error. Wall time is dominated by the simulator
drawing and encoding each image and is within a few percent on every path.

**A guard, not a target** (decision 20 in `docs/decisions.md`). The old goal of 10 % CPU
over the hand loop drove byte-level decoding tricks in kolbo-api; they are gone (plain
serde in one `decode` module), and the benchmark now guards against regressions: wall
at most ×1.05, CPU at most ×1.30.

**What the ratio is made of.** Under `valgrind --tool=callgrind --separate-threads=yes`
(client thread, one `--path` at a time, 300 generations less a 0-generation baseline) our
full path runs about 291K user-space instructions per generation against the hand loop's
281K (×1.04; submit + wait with a plain download 281K, the bare client 262K): the CPU
ratio is not instructions. The bare `KolboClient` runs fewer than the hand loop; its CPU excess is the per-request timeout (one tokio timer per request,
which wakes the runtime's time driver: `strace -c` counts one more `write` and
`epoll_wait` per generation than the hand loop, which sets no timeout and can hang
forever; decision 10). `KolboProvider` and its waiter add the `JobHandle` that keeps a
paid job resumable, progress events and request translation; the `ImageDownloader` adds
content sniffing, size reading and its own deadline. The ratio also depends on the base:
on this machine the hand loop costs about 75-95 µs of CPU per generation (about 245 µs
where the previous figures were taken), so the same fixed costs read as a larger ratio;
compare the absolute columns too.

";

pub(crate) fn run(args: &BenchArgs) -> Result<(), String> {
    let profiling = args.path.is_some() || args.generations.is_some();
    if profiling && args.only != Some(Bench::Overhead) {
        return Err("--path and --generations go with --only overhead".to_owned());
    }
    if args.without_litellm && args.only != Some(Bench::Gateway) {
        return Err("--without-litellm goes with --only gateway".to_owned());
    }
    if cfg!(debug_assertions) {
        return crate::rerun_in_release("bench");
    }
    let sizes = if args.quick { &QUICK } else { &FULL };
    if let Some(bench) = args.only {
        println!("{}", run_one(bench, sizes, args)?);
        return Ok(());
    }
    let started = Instant::now();
    eprintln!(
        "bench 1/4: client overhead ({} generations each way)",
        sizes.overhead
    );
    let overhead = overhead::run(sizes.overhead, None)?;
    let mut scales = Vec::new();
    for &(in_flight, total) in sizes.scales {
        eprintln!("bench 2/4: {in_flight} in flight ({total} generations, child process)");
        scales.push(scale::run(in_flight, total, SCALE_SPEED)?);
    }
    let runtime = crate::runtime()?;
    eprintln!(
        "bench 3/4: polling latency ({} jobs, virtual time)",
        sizes.polling_jobs
    );
    let polling = runtime.block_on(polling::run(sizes.polling_jobs))?;
    eprintln!(
        "bench 4/4: batch of {} under 10/min (60× compressed time)",
        sizes.batch
    );
    let paced = runtime.block_on(batch::run(sizes.batch, true))?;
    let unpaced = runtime.block_on(batch::run(sizes.batch, false))?;
    let report = Report {
        quick: args.quick,
        overhead,
        scales,
        polling,
        batch: [paced, unpaced],
        seconds: started.elapsed().as_secs_f64(),
    };
    let tables = report.tables();
    println!("{tables}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
    let kept = std::fs::read_to_string(&path)
        .ok()
        .map(|old| kept_sections(&old))
        .unwrap_or_default();
    std::fs::write(&path, report.document(&tables, &kept))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote docs/benchmarks.md");
    Ok(())
}

/// Runs one benchmark and returns its table.
fn run_one(bench: Bench, sizes: &Sizes, args: &BenchArgs) -> Result<String, String> {
    Ok(match bench {
        Bench::Overhead => overhead_table(&overhead::run(
            args.generations.unwrap_or(sizes.overhead),
            args.path,
        )?),
        Bench::Scale => {
            let mut scales = Vec::new();
            for &(in_flight, total) in sizes.scales {
                scales.push(scale::run(in_flight, total, SCALE_SPEED)?);
            }
            scale_table(&scales)
        }
        Bench::Polling => {
            polling_table(&crate::runtime()?.block_on(polling::run(sizes.polling_jobs))?)
        }
        Bench::Batch => {
            let runtime = crate::runtime()?;
            let paced = runtime.block_on(batch::run(sizes.batch, true))?;
            let unpaced = runtime.block_on(batch::run(sizes.batch, false))?;
            batch_table(&[paced, unpaced])
        }
        Bench::Instances => instances::table(&instances::run(args.quick)?),
        Bench::Gateway => gateway::table(&gateway::run(args.quick, args.without_litellm)?),
    })
}

struct Report {
    quick: bool,
    overhead: overhead::OverheadResult,
    scales: Vec<scale::ScaleResult>,
    polling: polling::PollingResult,
    batch: [batch::BatchResult; 2],
    seconds: f64,
}

/// The headings of benchmarks 5 and 6's sections and the soak's (`cargo xtask soak`),
/// which a full run keeps as it finds them.
const KEPT_HEADINGS: [&str; 3] = [
    "## Several gateways on one ledger",
    "## Gateway against LiteLLM",
    "## Soak: faults and kill -9",
];

/// The section of `document` under `heading`, up to the next `## `.
fn section(document: &str, heading: &str) -> Option<String> {
    let start = document.find(heading)?;
    let rest = &document[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len() + 1);
    Some(rest[..end].to_owned())
}

/// The kept sections of an existing `docs/benchmarks.md`, in that order.
fn kept_sections(document: &str) -> String {
    KEPT_HEADINGS
        .iter()
        .filter_map(|heading| section(document, heading))
        .collect()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    fn tables(&self) -> String {
        let mut t = overhead_table(&self.overhead);
        t.push('\n');
        t.push_str(&scale_table(&self.scales));
        t.push('\n');
        t.push_str(&polling_table(&self.polling));
        t.push('\n');
        t.push_str(&batch_table(&self.batch));
        t
    }

    /// One line per goal: met or not, with the figure.
    fn verdicts(&self) -> String {
        let o = &self.overhead;
        let p = &self.polling;
        let [paced, _] = &self.batch;
        let mark = |ok: bool| if ok { "met" } else { "**not met**" };
        let mut v = String::new();
        let _ = writeln!(
            v,
            "1. Client overhead, a guard against regressions (wall ≤ ×{WALL_GUARD:.2} and CPU ≤ \
             ×{CPU_GUARD:.2} of the hand-written loop): wall time {} (×{:.2}); \
             CPU time {} (×{:.2}; the bare `KolboClient` ×{:.2}, the A/A control ×{:.2}). \
             Medians of per-generation samples; where the CPU goes is below.",
            mark(o.wall_ratio() <= WALL_GUARD),
            o.wall_ratio(),
            mark(o.cpu_ratio() <= CPU_GUARD),
            o.cpu_ratio(),
            o.ratio(
                overhead::Path::ClientOnly,
                overhead::PathSamples::cpu_median
            ),
            o.ratio(overhead::Path::HandAgain, overhead::PathSamples::cpu_median),
        );
        let failures = self.scales.iter().map(|s| s.failures).sum::<usize>();
        let largest = self.scales.iter().max_by_key(|s| s.in_flight);
        let (in_flight, peak) = largest.map_or((0, 0.0), |s| (s.in_flight, mib(s.peak_rss_kib)));
        let _ = writeln!(
            v,
            "2. Scale: 10,000 generations in flight in one process at no more \
             than {SCALE_GOAL_MIB} MiB peak, 0 failures: {} ({failures} failures over all {} \
             runs; peak memory {peak:.1} MiB at {in_flight} in flight).",
            if in_flight < SCALE_GOAL_IN_FLIGHT {
                "not measured (a quick run)"
            } else {
                mark(failures == 0 && peak <= SCALE_GOAL_MIB)
            },
            self.scales.len(),
        );
        let _ = writeln!(
            v,
            "3. Polling: ready-to-known p50 at most {POLL_P50_GOAL} s with no more polls than the \
             docs' loop (polls ≤ ×1.00): {} with progress measured against the estimate (p50 \
             {:.2} s against the loop's {:.2} s, mean ×{:.2}, polls ×{:.2}: such progress says \
             nothing the clock does not); {} with progress that tracks the work (p50 {:.2} s, \
             polls ×{:.2}). Kolbo does not document which it reports.",
            mark(p.ours.p50 <= POLL_P50_GOAL && p.ours.polls_per_job <= p.docs.polls_per_job),
            p.ours.p50,
            p.docs.p50,
            p.ours.mean / p.docs.mean.max(1e-9),
            p.ours.polls_per_job / p.docs.polls_per_job.max(1e-9),
            mark(
                p.ours_work.p50 <= POLL_P50_GOAL
                    && p.ours_work.polls_per_job <= p.docs.polls_per_job
            ),
            p.ours_work.p50,
            p.ours_work.polls_per_job / p.docs.polls_per_job.max(1e-9)
        );
        let _ = writeln!(
            v,
            "4. Batch: at least 95 % of the bound with no 429: {} ({:.1} %, {} 429s).",
            mark(paced.fraction_of_bound >= 0.95 && paced.rate_limited == 0 && paced.failed == 0),
            paced.fraction_of_bound * 100.0,
            paced.rate_limited
        );
        v
    }

    fn document(&self, tables: &str, kept: &str) -> String {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        format!(
            "# Benchmarks\n\n\
Produced by `cargo xtask bench{quick}` (release mode, {cores} cores, {secs:.0} s), against the\n\
in-process simulator (`imagegen-sim`) on loopback. Regenerate with `cargo xtask bench`\n\
(under a minute once built) or `cargo xtask bench --quick`. Figures are ratios measured side by\n\
side in one run, because these machines are shared and noisy.\n\n\
## Against the goals\n\n\
{verdicts}\n\
{tables}\n\
{kept}{notes}## How each figure is measured\n\n\
1. **Client overhead.** The simulator's generations finish at once (speed 0), images are\n\
   256 px. Our path is `KolboProvider::submit` (Smart Select), `Provider::wait` (the\n\
   kolbo-api waiter; its sleeps run on an auto-advancing `ManualClock`, so no real time\n\
   is spent sleeping) and `imagegen_http::ImageDownloader` (no credentials) into a counting\n\
   sink. The hand-written loop is what a user would write from the docs: `POST\n\
   /v1/generate/image`, `GET .../status` until `completed` (no sleep), `GET` each URL\n\
   with a plain client. The client runs on a current-thread runtime on one thread, the\n\
   simulator on its own thread, so the CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the\n\
   client's alone. After a warm-up the five paths take turns one generation at a time,\n\
   in an order shuffled every round, each generation timed on its own; the figures are\n\
   medians of those samples.\n\
2. **Scale.** Each scale runs in a child process (`bench-scale-child`) so its peak\n\
   resident memory (`VmHWM`) is its own; the simulator runs in the parent. The child\n\
   keeps N generations in flight (`nano-banana-2`, estimated 20 s, realistic spread)\n\
   through `KolboProvider` and the downloader, with time compressed 50× on both sides.\n\
   Generations/s is bounded by the generation time at low N and by the two shared\n\
   cores from 1,000. The Kolbo client keeps at most 128 requests open at once\n\
   (`KolboClientBuilder::max_open_requests`); before that limit each open HTTP/1.1\n\
   request held its own connection and buffers, and 10,000 in flight peaked at 438 MiB\n\
   with over 12,000 sockets.\n\
3. **Polling.** Every simulated model in turn (estimates 4–40 s), generation times from\n\
   the simulator's seeded spread (most within ±30 % of the estimate, 8 % up to 2.5×\n\
   slower). Everything runs on a virtual clock that jumps to the next wake-up once every\n\
   task waits, so the figures are exact and independent of the machine; the simulator\n\
   says afterwards when each job really ended. It reports `progress` as a service must,\n\
   from the time run over the model's estimate, held at 99 (it cannot know the real end;\n\
   until 2026-12 it reported the share of the real run, which gave the end away). Our\n\
   waiter plans from the model's `estimated_duration_seconds` (`PollSchedule`: first poll\n\
   at 60 % of the estimate, then dense polls sized so a job finishing at the estimate\n\
   costs no more polls than the docs' loop; for models estimated under 6 s, the docs'\n\
   loop) and lets each answer's progress move the next poll to just after the end it\n\
   predicts, when that says more than the estimate (`PollTracker`). Progress computed\n\
   from the clock says nothing more, so here the plan alone decides: with ends spread\n\
   over ±30 % of the estimate and no more polls than the loop, about 0.65 s is the best\n\
   median any schedule reaches (kolbo-api's unit tests show the waiter under 0.3 s with\n\
   fewer polls when progress is the share of the real run).\n\
4. **Batch.** N generations started at once and waited for, on a simulator with Kolbo's\n\
   documented limits (10 starts per sliding minute per key), the simulator and the client\n\
   sharing a clock 60× faster than real time. The bound is 10 starts per minute; the\n\
   fraction is `accepted × 60 s / (last start − first start + 60 s) / 10`. The paced\n\
   client uses `kolbo_api::SubmitPacer::kolbo_generate()`, which models the same sliding\n\
   window and counts each start from when its answer arrived; the unpaced one has\n\
   nothing: the client never repeats a paid POST, so each 429 fails its start (the\n\
   router, not used here, is what waits a rate limit out).\n",
            quick = if self.quick { " --quick" } else { "" },
            secs = self.seconds,
            verdicts = self.verdicts(),
            notes = OPTIMIZATION_NOTES,
        )
    }
}

fn overhead_table(o: &overhead::OverheadResult) -> String {
    use overhead::{Path, PathSamples};
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 1. Client overhead ({} generations each way: submit, poll, download)\n",
        o.generations
    );
    let _ = writeln!(
        t,
        "| path | CPU µs / generation, median | CPU µs, mean | wall µs, median | CPU ratio (median) | wall ratio |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
    for path in Path::ALL {
        let p = o.path(path);
        if p.is_empty() {
            continue;
        }
        let ratio = |pick: fn(&PathSamples) -> f64| {
            let r = o.ratio(path, pick);
            if r.is_nan() {
                "–".to_owned()
            } else if path == Path::Ours {
                format!("**{r:.2}**")
            } else {
                format!("{r:.2}")
            }
        };
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            path.label(),
            p.cpu_median(),
            p.cpu_mean(),
            p.wall_median(),
            ratio(PathSamples::cpu_median),
            ratio(PathSamples::wall_median),
        );
    }
    let _ = writeln!(
        t,
        "\nRatios are over the hand-written loop (guard: wall ≤ 1.05, CPU ≤ 1.30); {:.2} µs, the cost of reading the clocks, is taken off every CPU sample.",
        o.reading_cost_us
    );
    t
}

fn scale_table(scales: &[scale::ScaleResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 2. Scale (simulator at speed {SCALE_SPEED}, client clock {:.0}× faster)\n",
        1.0 / SCALE_SPEED
    );
    let _ = writeln!(
        t,
        "| in flight | generations | failures | generations/s | peak RSS MiB | RSS before the run MiB |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|");
    for s in scales {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            s.in_flight,
            s.generations,
            s.failures,
            s.per_second(),
            mib(s.peak_rss_kib),
            mib(s.baseline_rss_kib)
        );
    }
    t
}

fn polling_table(p: &polling::PollingResult) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 3. Polling ({} jobs over every simulated model, realistic generation times, virtual clock)\n",
        p.jobs
    );
    let _ = writeln!(
        t,
        "| waiter | ready→known p50 s | p99 s | mean s | polls / job |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|");
    for (name, s) in [
        ("imagegen (estimate plan + progress)", &p.ours),
        (
            "imagegen, progress that tracks the work (`KolboProgress::Work`)",
            &p.ours_work,
        ),
        ("Kolbo docs' loop (sleep 3 s, poll)", &p.docs),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.p50, s.p99, s.mean, s.polls_per_job
        );
    }
    let _ = writeln!(
        t,
        "| **ratio** (goal: p50 ≤ {POLL_P50_GOAL} s, polls ≤ 1) | **{:.2}** | **{:.2}** | **{:.2}** | **{:.2}** |",
        p.ours.p50 / p.docs.p50.max(1e-9),
        p.ours.p99 / p.docs.p99.max(1e-9),
        p.ours.mean / p.docs.mean.max(1e-9),
        p.ours.polls_per_job / p.docs.polls_per_job.max(1e-9)
    );
    t
}

fn batch_table(batch: &[batch::BatchResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 4. Batch under Kolbo's 10 generations/min (60× compressed time)\n"
    );
    let _ = writeln!(
        t,
        "| client | generations | accepted | failed | 429s | span (clock s) | fraction of the bound |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|");
    for b in batch {
        let name = if b.paced {
            "imagegen with `SubmitPacer::kolbo_generate()`"
        } else {
            "unpaced (no client retries)"
        };
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {:.1} | {:.1} % |",
            b.generations,
            b.accepted,
            b.failed,
            b.rate_limited,
            b.span_secs,
            b.fraction_of_bound * 100.0
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_run_keeps_the_instances_and_gateway_sections() {
        let heading = KEPT_HEADINGS[0];
        let doc = "# Benchmarks\n\n### 4. Batch\n\n## Several gateways on one ledger\n\nfigures\n\n## Gateway against LiteLLM\n\nlatency\n\n## Where the client's CPU goes\n\nnotes\n";
        assert_eq!(
            section(doc, heading).as_deref(),
            Some("## Several gateways on one ledger\n\nfigures\n\n")
        );
        assert_eq!(
            kept_sections(doc),
            "## Several gateways on one ledger\n\nfigures\n\n## Gateway against LiteLLM\n\nlatency\n\n"
        );
        assert_eq!(section("# Benchmarks\n", heading), None);
        assert_eq!(kept_sections("# Benchmarks\n"), "");
        let last = "## Several gateways on one ledger\n\nend\n";
        assert_eq!(section(last, heading).as_deref(), Some(last));
    }
}
