//! `cargo xtask soak`: many generations through several `imagegen serve` processes on one
//! PostgreSQL ledger, against a simulator that fails about 5 % of every route's calls with
//! every kind of fault it has, while an instance is killed with `kill -9` every few hundred
//! generations and started again (issue #19). Then an audit, from the provider's side (the
//! simulator's charge book) against ours (the ledger and the image files):
//!
//! | figure | what it counts | goal |
//! |---|---|---|
//! | lost jobs | a generation the provider charged for and answered, that the ledger does not know; or that it knows but left without its images although the provider made them | 0 |
//! | double charges | a request charged twice or more by the provider, not counting charges the provider itself gave back or whose job ended failed (those were retried on purpose, after a failure the provider reported) | 0 |
//! | budget overshoot | a gateway key's budget less what the provider charged for its requests | 0 |
//! | unanswered | a request the load generator got no final answer to before the time limit | 0 |
//!
//! The run ends on its own: every wait is bounded (the load generator's retries, the
//! gateways' downloads through `IMAGEGEN_DOWNLOAD_DEADLINE`, the final wait for open jobs),
//! and the whole run stops at `--time-limit`. Exit status 1 when a goal is missed.
//!
//! | module | owns |
//! |---|---|
//! | [`mod@self`] | options, the run: simulator, database, keys, gateways, killer, report |
//! | [`load`] | the load generator: one OpenAI-style client per request, retrying as the `openai` clients do |
//! | [`audit`] | the audit: the simulator's charges against the ledger and the files |

mod audit;
mod load;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use imagegen_sim::{FaultMix, ImageSize, KoalaPlan, SimConfig, SimHandle};

use crate::bench::instances::{Gateway, build_imagegen, imagegen_command, start_gateway};

/// Options of `cargo xtask soak`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SoakArgs {
    /// Generations to request.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) generations: usize,
    /// Gateway processes on the one ledger.
    #[arg(long, default_value_t = 3)]
    pub(crate) gateways: usize,
    /// The fraction of every route's calls the simulator fails.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) fault_rate: f64,
    /// Kill a gateway with `kill -9` (then start a new one) after every this many
    /// answered generations (0: never).
    #[arg(long, default_value_t = 300)]
    pub(crate) kill_every: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 48)]
    pub(crate) concurrency: usize,
    /// The simulator's generation-time factor (0.02: a 20 s model takes 0.4 s).
    #[arg(long, default_value_t = 0.02)]
    pub(crate) speed: f64,
    /// The whole run's limit, in seconds; the audit runs at the end either way.
    #[arg(long, default_value_t = 1_500)]
    pub(crate) time_limit: u64,
    /// The seed of the simulator (its timings, ids and which calls fail).
    #[arg(long, default_value_t = 19)]
    pub(crate) seed: u64,
}

/// The gateways' job lease: short, so a killed gateway's jobs are taken over soon.
const JOB_LEASE_SECS: &str = "2";
/// How long a gateway's image download may take (`IMAGEGEN_DOWNLOAD_DEADLINE`): a
/// KoalaImages image that failed answers 500 for ever, and a gateway must not hold the
/// request (and the soak) for the default 15 minutes.
const DOWNLOAD_DEADLINE_SECS: &str = "15";
/// The budget of the capped key, in credits: a run's capped requests (a tenth, about one
/// credit each) ask for about 2.5 times more.
fn capped_budget(generations: usize) -> u32 {
    u32::try_from(generations / 25).unwrap_or(u32::MAX).max(10)
}
/// Every `CAPPED_EVERY`th request goes with the capped key.
const CAPPED_EVERY: usize = 10;
/// How long the end waits for the jobs the gateways still hold to finish.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

/// The gateway keys of the run.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// Two keys without a budget.
    pub(crate) open: [String; 2],
    /// A key with a budget of [`capped_budget`] credits.
    pub(crate) capped: String,
}

/// The live gateways' URLs, by slot (`None` while a slot's gateway is down).
#[derive(Debug, Default)]
pub(crate) struct Pool {
    urls: RwLock<Vec<Option<String>>>,
}

impl Pool {
    /// The URL of a live gateway, chosen by `pick`.
    pub(crate) fn url(&self, pick: usize) -> Option<String> {
        let urls = self.urls.read().unwrap_or_else(PoisonError::into_inner);
        let live: Vec<&String> = urls.iter().flatten().collect();
        if live.is_empty() {
            return None;
        }
        Some(live[pick % live.len()].clone())
    }

    fn set(&self, slot: usize, url: Option<String>) {
        let mut urls = self.urls.write().unwrap_or_else(PoisonError::into_inner);
        if urls.len() <= slot {
            urls.resize(slot + 1, None);
        }
        urls[slot] = url;
    }
}

/// `cargo xtask soak`.
pub(crate) fn run(args: &SoakArgs) -> Result<(), String> {
    if cfg!(debug_assertions) {
        return crate::rerun_in_release("soak");
    }
    if args.generations == 0 || args.gateways == 0 || args.concurrency == 0 {
        return Err("--generations, --gateways and --concurrency must be above 0".to_owned());
    }
    let binary = build_imagegen()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.time_limit);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let runtime = crate::runtime()?;
    let report = runtime.block_on(async {
        let (db, name) = imagegen_ledger::testing::fresh_database().await;
        let outcome = soak(args, &binary, &db, dir.path(), deadline).await;
        imagegen_ledger::testing::drop_database(&name).await;
        outcome
    });
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let kept = dir.keep();
            return Err(format!(
                "{e} (the gateways' logs are in {})",
                kept.display()
            ));
        }
    };
    let text = report.render(args, started.elapsed());
    println!("{text}");
    let missed = report.missed_goals();
    if missed.is_empty() {
        Ok(())
    } else {
        let kept = dir.keep();
        Err(format!(
            "soak goals missed: {} (the gateways' logs are in {})",
            missed.join(", "),
            kept.display()
        ))
    }
}

/// Everything the soak measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) load: load::LoadReport,
    pub(crate) audit: audit::Audit,
    pub(crate) kills: usize,
    pub(crate) faults_fired: u64,
    pub(crate) run_secs: f64,
    pub(crate) settle_secs: f64,
    pub(crate) graceful_stops: usize,
    pub(crate) capped_budget: u32,
    /// How `imagegen resume` at the end went.
    pub(crate) resumed: Resumed,
    /// Jobs it finished.
    pub(crate) resumed_jobs: usize,
}

async fn soak(
    args: &SoakArgs,
    binary: &Path,
    db: &str,
    dir: &Path,
    deadline: Instant,
) -> Result<Report, String> {
    let sim = start_sim(args).await?;
    let fault_ids: Vec<_> = FaultMix::new(args.fault_rate)
        .rules()
        .into_iter()
        .map(|rule| sim.faults().inject(rule))
        .collect();
    let budget = capped_budget(args.generations);
    let keys = create_keys(binary, db, dir, budget)?;
    let env = [
        ("IMAGEGEN_DOWNLOAD_DEADLINE", DOWNLOAD_DEADLINE_SECS),
        ("KOALA_PLAN", "professional"),
    ];
    let extra = [
        "--job-lease",
        JOB_LEASE_SECS,
        "--kolbo-rate-limit",
        "100000/1s",
    ];
    let launch = {
        let (binary, db, dir, sim_ref) = (binary.to_owned(), db.to_owned(), dir.to_owned(), &sim);
        move |name: &str| start_gateway(&binary, sim_ref, &db, &dir, name, &extra, &env)
    };
    let pool = Arc::new(Pool::default());
    let mut gateways: Vec<Gateway> = Vec::new();
    for slot in 0..args.gateways {
        let gateway = launch(&format!("gateway-{slot}-0"))?;
        pool.set(slot, Some(gateway.url.clone()));
        gateways.push(gateway);
    }
    eprintln!(
        "soak: {} generations through {} gateways, {:.1} % faults, kill -9 every {} answers",
        args.generations,
        args.gateways,
        args.fault_rate * 100.0,
        args.kill_every
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let run_started = Instant::now();
    let load = tokio::spawn(load::run(
        load::LoadPlan {
            generations: args.generations,
            concurrency: args.concurrency,
            keys: keys.clone(),
            capped_every: CAPPED_EVERY,
            deadline,
            tag: run_tag(args.seed),
        },
        Arc::clone(&pool),
        Arc::clone(&answered),
    ));
    // The killer: this task, until the load is done.
    let mut kills = 0usize;
    let mut restarts = vec![0usize; args.gateways];
    let gateways = Arc::new(Mutex::new(gateways));
    while !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if args.kill_every == 0 || answered.load(Ordering::Relaxed) < (kills + 1) * args.kill_every
        {
            continue;
        }
        let slot = kills % args.gateways;
        kills += 1;
        restarts[slot] += 1;
        pool.set(slot, None);
        let name = format!("gateway-{slot}-{}", restarts[slot]);
        {
            let mut all = gateways.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!(
                "soak: kill -9 of gateway {slot} (pid {}) after {} answers",
                all[slot].pid(),
                answered.load(Ordering::Relaxed)
            );
            all[slot].kill_hard();
        }
        // Down for a moment, as a crashed instance is before its supervisor restarts it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fresh = launch(&name)?;
        pool.set(slot, Some(fresh.url.clone()));
        gateways.lock().unwrap_or_else(PoisonError::into_inner)[slot] = fresh;
    }
    let load = load
        .await
        .map_err(|e| format!("the load generator failed: {e}"))?;
    let run_secs = run_started.elapsed().as_secs_f64();
    eprintln!("soak: load done in {run_secs:.1} s; waiting for open jobs to settle");
    let settle_started = Instant::now();
    let ledger = imagegen_ledger::open(db)
        .await
        .map_err(|e| format!("cannot open the ledger: {e}"))?;
    audit::settle(
        &*ledger,
        &sim,
        &run_tag(args.seed),
        SETTLE_LIMIT.min(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(5)),
        ),
    )
    .await;
    let settle_secs = settle_started.elapsed().as_secs_f64();
    // Stop the gateways gracefully, so what they hold is recorded.
    let graceful_stops = {
        let mut all = std::mem::take(&mut *gateways.lock().unwrap_or_else(PoisonError::into_inner));
        tokio::task::spawn_blocking(move || {
            all.iter_mut()
                .map(|g| g.stop(Duration::from_secs(30)))
                .filter(|stopped| *stopped)
                .count()
        })
        .await
        .map_err(|e| e.to_string())?
    };
    let faults_fired = fault_ids.iter().map(|id| sim.faults().fired(*id)).sum();
    sim.faults().clear();
    // What is still open is for `imagegen resume`, the product's own way to finish it.
    let open_before = audit::open_jobs(&*ledger, &run_tag(args.seed)).await;
    let resumed = resume(binary, &sim, db, dir)?;
    let resumed_jobs =
        open_before.saturating_sub(audit::open_jobs(&*ledger, &run_tag(args.seed)).await);
    let audit = audit::audit(&*ledger, &sim, &load, &run_tag(args.seed), budget, dir).await?;
    ledger.close().await;
    sim.shutdown().await;
    Ok(Report {
        load,
        audit,
        kills,
        faults_fired,
        run_secs,
        settle_secs,
        graceful_stops,
        capped_budget: budget,
        resumed,
        resumed_jobs,
    })
}

/// The text every prompt of the run carries, to find its charges and jobs.
fn run_tag(seed: u64) -> String {
    format!("soak-{seed:x}")
}

async fn start_sim(args: &SoakArgs) -> Result<SimHandle, String> {
    let config = SimConfig::default()
        .with_speed(args.speed)
        .with_seed(args.seed)
        .without_rate_limits()
        .with_max_jobs(args.generations.saturating_mul(3).max(10_000))
        .with_image_size(ImageSize::MaxSide(16));
    let sim = imagegen_sim::start(config)
        .await
        .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    sim.set_koala_credits(sim.koala_api_key(), u64::MAX / 4);
    sim.set_koala_plan(sim.koala_api_key(), KoalaPlan::Professional);
    Ok(sim)
}

/// `imagegen keys create` on the run's ledger: two open keys and the capped one.
fn create_keys(binary: &Path, db: &str, dir: &Path, budget: u32) -> Result<Keys, String> {
    let create = |name: &str, budget: Option<u32>| -> Result<String, String> {
        let mut command = Command::new(binary);
        command
            .current_dir(dir)
            .env_remove("IMAGEGEN_DATABASE_URL")
            .env("XDG_DATA_HOME", dir.join("data"))
            .args(["--db", db, "keys", "create", "--name", name]);
        if let Some(budget) = budget {
            command.args(["--budget", &budget.to_string(), "--period", "total"]);
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run imagegen keys create: {e}"))?;
        let key = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if !output.status.success() || !key.starts_with("igk_") {
            return Err(format!(
                "imagegen keys create --name {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(key)
    };
    Ok(Keys {
        open: [create("soak-open-a", None)?, create("soak-open-b", None)?],
        capped: create("soak-capped", Some(budget))?,
    })
}

/// `imagegen resume` on the run's ledger, the faults cleared: finishes the jobs the
/// gateways left open (images they could not fetch in time). Whether it succeeded.
fn resume(binary: &Path, sim: &SimHandle, db: &str, dir: &Path) -> Result<Resumed, String> {
    let output = imagegen_command(binary, sim, dir)
        .env("KOALA_PLAN", "professional")
        .env("IMAGEGEN_DOWNLOAD_DEADLINE", "5")
        .args(["--db", db, "resume", "--json"])
        .output()
        .map_err(|e| format!("cannot run imagegen resume: {e}"))?;
    let _ = std::fs::write(dir.join("resume.stderr"), &output.stderr);
    // Its `--json` report: one row per job it took up, `closed` and `error` as the
    // library's `ResumeReport` has them (none when it stopped before resuming anything).
    let jobs = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|report| report["jobs"].as_array().cloned());
    let counts = jobs.map(|jobs| {
        let closed = |failed: bool| {
            jobs.iter()
                .filter(|job| {
                    job["closed"].as_bool() == Some(true) && job["error"].is_null() != failed
                })
                .count()
        };
        let (finished, failed) = (closed(false), closed(true));
        JobCounts {
            finished,
            failed,
            still_open: jobs.len() - finished - failed,
        }
    });
    Ok(Resumed {
        exit: output.status.code(),
        counts,
        last_words: String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_owned(),
    })
}

/// What `imagegen resume` reported at the end of the run.
#[derive(Debug)]
pub(crate) struct Resumed {
    /// Its exit code (`None`: killed by a signal); not 0 when a job failed.
    pub(crate) exit: Option<i32>,
    /// Its report's jobs, when it printed one.
    pub(crate) counts: Option<JobCounts>,
    /// The last line it wrote to stderr.
    pub(crate) last_words: String,
}

/// The jobs `imagegen resume` took up, by how they ended.
#[derive(Debug)]
pub(crate) struct JobCounts {
    /// Finished with their images.
    pub(crate) finished: usize,
    /// Closed as failed (the provider failed them).
    pub(crate) failed: usize,
    /// Left open.
    pub(crate) still_open: usize,
}

impl Resumed {
    fn describe(&self) -> String {
        let exit = self
            .exit
            .map_or_else(|| "killed".to_owned(), |code| format!("exit {code}"));
        match &self.counts {
            Some(c) => format!(
                "its report: {} finished, {} failed by the provider, {} still open; {exit}",
                c.finished, c.failed, c.still_open
            ),
            None => format!("no report: `{}`; {exit}", self.last_words),
        }
    }
}

impl Report {
    /// The goals this run missed, by name.
    pub(crate) fn missed_goals(&self) -> Vec<&'static str> {
        let mut missed = Vec::new();
        if self.audit.lost_jobs() > 0 {
            missed.push("lost jobs");
        }
        if self.audit.double_charged > 0 {
            missed.push("double charges");
        }
        if self.audit.overshoot_credits > 0.0 {
            missed.push("budget overshoot");
        }
        if self.load.unanswered > 0 {
            missed.push("unanswered requests");
        }
        missed
    }

    /// The report, as Markdown.
    pub(crate) fn render(&self, args: &SoakArgs, total: Duration) -> String {
        let (l, a) = (&self.load, &self.audit);
        let mut t = String::new();
        let goal = |n: f64| if n == 0.0 { "0 ✓" } else { "**missed**" };
        let _ = writeln!(
            t,
            "### Soak: {} generations, {} gateways on one PostgreSQL ledger, {:.0} % faults, kill -9 every {} answers\n",
            args.generations,
            args.gateways,
            args.fault_rate * 100.0,
            args.kill_every
        );
        let _ = writeln!(t, "| goal | result |");
        let _ = writeln!(t, "|---|---:|");
        let _ = writeln!(
            t,
            "| lost jobs (paid and answered, not in the ledger: {}; in it without the images the provider made: {}) | {} |",
            a.unknown_to_ledger,
            a.unsaved,
            goal(a.lost_jobs() as f64)
        );
        let _ = writeln!(
            t,
            "| double charges ({}) | {} |",
            a.double_charged,
            goal(a.double_charged as f64)
        );
        let _ = writeln!(
            t,
            "| paid while its gateway was killed, id lost with it (answered \"may have been charged\", never sent again; no provider API finds such an id) | {} |",
            a.lost_in_kill
        );
        let _ = writeln!(
            t,
            "| budget overshoot (capped key: {:.0} of {} credits charged by the provider) | {} |",
            a.capped_charged,
            self.capped_budget,
            goal(a.overshoot_credits)
        );
        let _ = writeln!(
            t,
            "| requests without a final answer | {} |",
            goal(l.unanswered as f64)
        );
        let _ = writeln!(t, "\n| figure | value |");
        let _ = writeln!(t, "|---|---:|");
        let rows: Vec<(String, String)> = vec![
            (
                "requests answered 200 (images)".into(),
                format!("{} ({} images)", l.succeeded, l.images),
            ),
            (
                "refused by the capped key's budget (402, nothing sent)".into(),
                l.budget_refused.to_string(),
            ),
            (
                "failed, typed (status and code below)".into(),
                l.failed.values().sum::<usize>().to_string(),
            ),
            (
                "HTTP attempts (retries: connection lost, 409 in progress, 429, 5xx)".into(),
                format!(
                    "{} ({})",
                    l.attempts,
                    l.attempts.saturating_sub(args.generations)
                ),
            ),
            (
                "answers that said `taken_over` (finished by another gateway)".into(),
                l.taken_over.to_string(),
            ),
            (
                "gateways killed with kill -9 (and started again)".into(),
                self.kills.to_string(),
            ),
            (
                "faults the simulator injected".into(),
                self.faults_fired.to_string(),
            ),
            (
                "charges by the provider (kept / given back)".into(),
                format!("{} / {}", a.charges_kept, a.charges_refunded),
            ),
            (
                "charges whose answer was lost on the way (id unknown to the client)".into(),
                format!(
                    "{} (ids recovered anyway: {})",
                    a.answer_lost, a.answer_lost_recovered
                ),
            ),
            (
                "jobs in the ledger: done / failed / open at the end".into(),
                format!("{} / {} / {}", a.jobs_done, a.jobs_failed, a.jobs_open),
            ),
            (
                "open at the end, the provider failed them (refunded)".into(),
                a.open_provider_failed.to_string(),
            ),
            (
                "image files checked on disk".into(),
                format!("{} ({} missing)", a.files_checked, a.files_missing),
            ),
            (
                "load phase / settling / whole run".into(),
                format!(
                    "{:.1} s / {:.1} s / {:.1} s",
                    self.run_secs,
                    self.settle_secs,
                    total.as_secs_f64()
                ),
            ),
            (
                "generations per second (load phase)".into(),
                format!("{:.1}", args.generations as f64 / self.run_secs.max(1e-9)),
            ),
            (
                "latency of answered requests p50 / p99 / max".into(),
                format!(
                    "{:.2} s / {:.2} s / {:.2} s",
                    l.latency_p50, l.latency_p99, l.latency_max
                ),
            ),
            (
                "gateways that stopped gracefully at the end".into(),
                format!("{} of {}", self.graceful_stops, args.gateways),
            ),
            (
                "jobs `imagegen resume` finished at the end (faults off)".into(),
                format!("{} ({})", self.resumed_jobs, self.resumed.describe()),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(t, "| {name} | {value} |");
        }
        if !a.details.is_empty() {
            let _ = writeln!(t, "\nWhat missed a goal (first {}):\n", a.details.len());
            for line in &a.details {
                let _ = writeln!(t, "- {line}");
            }
        }
        if !l.failed.is_empty() {
            let _ = writeln!(
                t,
                "\nTyped failures: {}",
                l.failed
                    .iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        t
    }
}
