//! How a simulator run is set up: addresses, time, accounts, limits, image sizes, faults.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use imagegen_core::{SharedClock, TokioClock};

use crate::fault::FaultRule;
use crate::rng::SplitMix;

/// Everything a simulator run needs; [`SimConfig::default`] gives a realistic simulator on
/// `127.0.0.1` with one Kolbo and one (Professional) KoalaImages account.
///
/// ```
/// use std::time::Duration;
/// use imagegen_sim::{ImageSize, SimConfig};
///
/// let config = SimConfig::default()
///     .with_speed(0.0)                      // every generation finishes at once
///     .with_image_size(ImageSize::MaxSide(64)) // small images for fast tests
///     .with_job_ttl(Duration::from_secs(60));
/// assert_eq!(config.speed, 0.0);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// The address both listeners bind (default `127.0.0.1`).
    pub host: IpAddr,
    /// The API listener's port (Kolbo and KoalaImages share it; 0 picks a free port).
    pub port: u16,
    /// The CDN listener's port, a different origin serving Kolbo's image URLs (0: free port).
    pub cdn_port: u16,
    /// The time source. Default: the real clock. Tests pass a `ManualClock`.
    pub clock: SharedClock,
    /// Wall-clock time at start, for `created_at` fields (default: now).
    pub wall_epoch: SystemTime,
    /// Generation-time factor: `1.0` realistic (Kolbo 5–40 s per model, KoalaImages
    /// 8–15 s), `0.1` ten times faster, `0.0` instant.
    pub speed: f64,
    /// Seed for ids, keys, timing spread and Smart Select; the same seed gives the same run.
    pub seed: u64,
    /// Kolbo-specific settings.
    pub kolbo: KolboConfig,
    /// KoalaImages-specific settings.
    pub koala: KoalaConfig,
    /// How large served images are.
    pub image_size: ImageSize,
    /// How long a finished job and its images stay available (default one hour).
    pub job_ttl: Duration,
    /// The most jobs (Kolbo generations, KoalaImages images) kept at once; beyond it,
    /// finished ones are dropped oldest first, and new ones are refused with 503 if none is
    /// finished.
    pub max_jobs: usize,
    /// Budget for encoded image bytes kept in memory; images are re-rendered (the same
    /// bytes) when evicted.
    pub image_cache_bytes: usize,
    /// How many requests the request log keeps (oldest dropped first).
    pub request_log_capacity: usize,
    /// Faults active from the start.
    pub faults: Vec<FaultRule>,
    /// How long an idle keep-alive connection stays open before the simulator closes it
    /// (default 5 s, as Node.js servers do; real servers all close idle connections after
    /// some seconds). A request being answered (a KoalaImages image still being made, a
    /// slow first byte) is not idle. `None` keeps idle connections open forever.
    pub idle_timeout: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        let seed = 0x1A6E_6E51_u64;
        let clock = TokioClock::shared();
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            cdn_port: 0,
            wall_epoch: clock.wall_time(),
            clock,
            speed: 1.0,
            seed,
            kolbo: KolboConfig::with_seed(seed),
            koala: KoalaConfig::with_seed(seed),
            image_size: ImageSize::Requested,
            job_ttl: Duration::from_secs(3600),
            max_jobs: 10_000,
            image_cache_bytes: 256 << 20,
            request_log_capacity: 10_000,
            faults: Vec::new(),
            idle_timeout: Some(Duration::from_secs(5)),
        }
    }
}

impl SimConfig {
    /// Sets the generation-time factor (`0.0` instant, `1.0` realistic).
    #[must_use]
    pub fn with_speed(mut self, speed: f64) -> Self {
        self.speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            0.0
        };
        self
    }

    /// Sets the time source.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the seed, and derives fresh default keys from it.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.kolbo.accounts = vec![KolboAccount::new(kolbo_key(seed))];
        self.koala.accounts = vec![KoalaAccount::new(koala_key(seed), KoalaPlan::Professional)];
        self
    }

    /// Sets the API listener's port (0: any free port).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the CDN listener's port (0: any free port).
    #[must_use]
    pub fn with_cdn_port(mut self, port: u16) -> Self {
        self.cdn_port = port;
        self
    }

    /// Sets how large served images are.
    #[must_use]
    pub fn with_image_size(mut self, size: ImageSize) -> Self {
        self.image_size = size;
        self
    }

    /// Sets how long finished jobs are kept.
    #[must_use]
    pub fn with_job_ttl(mut self, ttl: Duration) -> Self {
        self.job_ttl = ttl;
        self
    }

    /// Sets the job cap.
    #[must_use]
    pub fn with_max_jobs(mut self, max_jobs: usize) -> Self {
        self.max_jobs = max_jobs.max(1);
        self
    }

    /// Adds a fault active from the start.
    #[must_use]
    pub fn with_fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Sets how long an idle keep-alive connection stays open (`None`: forever).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// Sets Kolbo's rate limits (for example a small generation limit over a short window).
    #[must_use]
    pub fn with_kolbo_rate_limits(mut self, limits: KolboRateLimits) -> Self {
        self.kolbo.rate_limits = limits;
        self
    }

    /// Turns off every rate limit (for benchmarks).
    #[must_use]
    pub fn without_rate_limits(mut self) -> Self {
        self.kolbo.rate_limits = KolboRateLimits::unlimited();
        self.koala.generate_per_minute = None;
        self
    }
}

/// Kolbo settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KolboConfig {
    /// The accounts (API keys and balances); the first is [`crate::SimHandle::kolbo_api_key`].
    pub accounts: Vec<KolboAccount>,
    /// The form of `poll_url` in the "generation started" response.
    pub poll_url: PollUrlForm,
    /// The HTTP status of `INSUFFICIENT_CREDITS` (documented 400; 402 is seen elsewhere).
    pub insufficient_credits_status: u16,
    /// Requests per window (a minute by default) per key.
    pub rate_limits: KolboRateLimits,
    /// Whether a Smart Select result names the model that ran (as Kolbo's own client
    /// expects) or says `"auto"` (as the docs example shows).
    pub smart_select_reports_model: bool,
    /// Whether the catalog lists the Smart Select pseudo-model (`kolbo_smart_select_router`,
    /// credit 0), as some catalogs do.
    pub list_smart_select_router: bool,
    /// Whether every generation first waits `pending` (queued) for a tenth of its time
    /// before `processing`. Off by default: Kolbo documents `pending` for Creative Director
    /// runs only, and its docs' polling loops stop on any state but `processing`, so a
    /// plain image generation starts `processing`. [`crate::Fault::Queued`] queues one job.
    pub queue_generations: bool,
    /// What `progress` measures (default [`KolboProgress::Estimate`]).
    pub progress: KolboProgress,
}

impl KolboConfig {
    fn with_seed(seed: u64) -> Self {
        Self {
            accounts: vec![KolboAccount::new(kolbo_key(seed))],
            poll_url: PollUrlForm::BaseRelative,
            insufficient_credits_status: 400,
            rate_limits: KolboRateLimits::default(),
            smart_select_reports_model: true,
            list_smart_select_router: false,
            queue_generations: false,
            progress: KolboProgress::Estimate,
        }
    }
}

/// One Kolbo account.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KolboAccount {
    /// Its API key (`kolbo_live_` + 40 hex).
    pub key: String,
    /// Balance of the plan bucket (spent first).
    pub plan_credits: f64,
    /// Balance of bought credit packs (spent second).
    pub credit_pack: f64,
    /// Balance of redeemed credits (spent last).
    pub redemption: f64,
}

impl KolboAccount {
    /// An account with the docs' example balance (1000 + 400 + 100 = 1500 credits).
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            plan_credits: 1000.0,
            credit_pack: 400.0,
            redemption: 100.0,
        }
    }

    /// An account holding `credits`, all in the plan bucket.
    pub fn with_credits(key: impl Into<String>, credits: f64) -> Self {
        Self {
            key: key.into(),
            plan_credits: credits,
            credit_pack: 0.0,
            redemption: 0.0,
        }
    }
}

/// Kolbo rate limits, requests per sliding window (a minute, as documented) per key
/// (`None`: unlimited).
///
/// ```
/// use std::time::Duration;
/// use imagegen_sim::{KolboRateLimits, SimConfig};
///
/// // 5 generation starts per 2 seconds, for tests of pacing that must not wait minutes.
/// let limits = KolboRateLimits::default()
///     .with_generate(Some(5))
///     .with_window(Duration::from_secs(2));
/// let config = SimConfig::default().with_kolbo_rate_limits(limits);
/// assert_eq!(config.kolbo.rate_limits.window, Duration::from_secs(2));
/// assert_eq!(KolboRateLimits::default().window, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KolboRateLimits {
    /// Generation starts and moodboard reads, which share a bucket (documented 10/min).
    pub generate: Option<u32>,
    /// Status polls (documented 300/min).
    pub status: Option<u32>,
    /// Models, credits, visual DNA and cancel (documented 300/min).
    pub other: Option<u32>,
    /// The sliding window every limit counts over (default, as documented: 60 s).
    pub window: Duration,
}

impl Default for KolboRateLimits {
    fn default() -> Self {
        Self {
            generate: Some(10),
            status: Some(300),
            other: Some(300),
            window: crate::rate_limit::MINUTE,
        }
    }
}

impl KolboRateLimits {
    /// No limits.
    pub fn unlimited() -> Self {
        Self {
            generate: None,
            status: None,
            other: None,
            window: crate::rate_limit::MINUTE,
        }
    }

    /// Sets the generation-start limit (`None`: unlimited).
    #[must_use]
    pub fn with_generate(mut self, limit: Option<u32>) -> Self {
        self.generate = limit;
        self
    }

    /// Sets the window every limit counts over (at least a millisecond).
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }
}

/// The form of Kolbo's `poll_url` (the docs disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PollUrlForm {
    /// `/v1/generate/{id}/status`, relative to the base URL (the current docs page).
    #[default]
    BaseRelative,
    /// `/api/v1/generate/{id}/status`, relative to the origin (the older docs).
    OriginRelative,
    /// `http://127.0.0.1:PORT/api/v1/generate/{id}/status`.
    Absolute,
}

/// What Kolbo's `progress` (1 to 99 while processing) measures. Kolbo does not document
/// it, and it runs other providers' models, so it may know no more than the time spent
/// against its estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KolboProgress {
    /// Time processing over the model's catalog estimate: a job slower than its
    /// estimate sits at 99 until it ends (what a service that cannot see the work
    /// reports).
    #[default]
    Estimate,
    /// The share of the job's real run done (what a service that counts the upstream's
    /// steps reports): progress predicts the end.
    Work,
}

/// KoalaImages settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KoalaConfig {
    /// The accounts; the first is [`crate::SimHandle::koala_api_key`].
    pub accounts: Vec<KoalaAccount>,
    /// Generation requests per minute per key (`None`, the default: unlimited, since
    /// KoalaImages publishes no limit).
    pub generate_per_minute: Option<u32>,
    /// Fraction of images (0–1) that take "much longer" (5–20× the usual time), as the docs
    /// warn happens under load.
    pub slow_image_fraction: f64,
    /// How error bodies are written (KoalaImages documents none).
    pub error_body: KoalaErrorBody,
}

/// The body of KoalaImages error responses, which the docs do not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KoalaErrorBody {
    /// `{"error": "<message>"}` as `application/json` (the simulator's default).
    #[default]
    Json,
    /// The message alone as `text/plain`, as the workspace's docs-transcribed fixtures
    /// assume.
    PlainText,
}

impl KoalaConfig {
    fn with_seed(seed: u64) -> Self {
        Self {
            accounts: vec![KoalaAccount::new(koala_key(seed), KoalaPlan::Professional)],
            generate_per_minute: None,
            slow_image_fraction: 0.0,
            error_body: KoalaErrorBody::Json,
        }
    }
}

/// One KoalaImages account.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KoalaAccount {
    /// Its API key (a UUID).
    pub key: String,
    /// Its plan.
    pub plan: KoalaPlan,
    /// Its credit balance.
    pub credits: u64,
}

impl KoalaAccount {
    /// An account on `plan` with 1000 credits.
    pub fn new(key: impl Into<String>, plan: KoalaPlan) -> Self {
        Self {
            key: key.into(),
            plan,
            credits: 1000,
        }
    }

    /// Sets the balance.
    #[must_use]
    pub fn with_credits(mut self, credits: u64) -> Self {
        self.credits = credits;
        self
    }
}

/// A KoalaImages plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KoalaPlan {
    /// A paid plan below Professional: `gpt-image-2` at `fast` and `standard` only.
    Basic,
    /// The Professional plan: every model and quality.
    Professional,
}

/// How large served images are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ImageSize {
    /// The dimensions the model would produce (for example 1024×1024).
    #[default]
    Requested,
    /// Scaled down (keeping the aspect ratio) so the longer side is at most this.
    MaxSide(u32),
}

impl ImageSize {
    /// The served dimensions for a model's `width`×`height`.
    pub(crate) fn apply(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Self::Requested => (width.max(1), height.max(1)),
            Self::MaxSide(max) => {
                let long = width.max(height).max(1);
                if long <= max {
                    return (width.max(1), height.max(1));
                }
                let scale = f64::from(max.max(1)) / f64::from(long);
                (
                    ((f64::from(width) * scale).round() as u32).max(1),
                    ((f64::from(height) * scale).round() as u32).max(1),
                )
            }
        }
    }
}

/// The default Kolbo key for a seed: `kolbo_live_` + 40 hex digits.
pub(crate) fn kolbo_key(seed: u64) -> String {
    format!(
        "kolbo_live_{}",
        SplitMix::new(seed ^ 0x6b6f_6c62_6f00).hex(40)
    )
}

/// The default KoalaImages key for a seed: a version-4-shaped UUID.
pub(crate) fn koala_key(seed: u64) -> String {
    let hex = SplitMix::new(seed ^ 0x6b6f_616c_6100).hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_have_the_documented_shapes() {
        let k = kolbo_key(1);
        assert!(k.starts_with("kolbo_live_"));
        assert_eq!(k.len(), "kolbo_live_".len() + 40);
        let u = koala_key(1);
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_ne!(kolbo_key(1), kolbo_key(2));
    }

    #[test]
    fn max_side_keeps_the_ratio() {
        assert_eq!(ImageSize::MaxSide(64).apply(1792, 1008), (64, 36));
        assert_eq!(ImageSize::MaxSide(2048).apply(1024, 1024), (1024, 1024));
        assert_eq!(ImageSize::Requested.apply(1344, 768), (1344, 768));
    }
}
