//! Fault injection: make a route misbehave always, on its Nth call, or for its next N calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A route of the simulator, as faults and the request log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /api/v1/generate/image`
    KolboGenerate,
    /// `GET /api/v1/generate/{id}/status`
    KolboStatus,
    /// `POST /api/v1/generate/{id}/cancel`
    KolboCancel,
    /// `GET /api/v1/models`
    KolboModels,
    /// `GET /api/v1/account/credits`
    KolboCredits,
    /// `GET /api/v1/moodboards[/{id}]`
    KolboMoodboards,
    /// `GET /api/v1/visual-dna[/{id}]`
    KolboVisualDna,
    /// `POST /api/image-generation/`
    KoalaGenerate,
    /// `GET /api/image/{id}.jpg`
    KoalaImage,
    /// Any `GET` on the CDN listener.
    CdnImage,
    /// Anything else.
    Other,
}

impl Route {
    /// The route a request goes to.
    pub(crate) fn classify(cdn: bool, method: &str, path: &str) -> Self {
        if cdn {
            return Self::CdnImage;
        }
        let post = method == "POST";
        let get = method == "GET" || method == "HEAD";
        if let Some(rest) = path.strip_prefix("/api/v1/") {
            let parts: Vec<&str> = rest.split('/').collect();
            return match (parts.as_slice(), post, get) {
                (["generate", "image"], true, _) => Self::KolboGenerate,
                (["generate", _, "status"], _, true) => Self::KolboStatus,
                (["generate", _, "cancel"], true, _) => Self::KolboCancel,
                (["models"], _, true) => Self::KolboModels,
                (["account", "credits"], _, true) => Self::KolboCredits,
                (["moodboards"] | ["moodboards", _], _, true) => Self::KolboMoodboards,
                (["visual-dna"] | ["visual-dna", _], _, true) => Self::KolboVisualDna,
                _ => Self::Other,
            };
        }
        if post && path == "/api/image-generation/" {
            return Self::KoalaGenerate;
        }
        if get && path.starts_with("/api/image/") {
            return Self::KoalaImage;
        }
        Self::Other
    }

    /// Whether the route serves image bytes.
    pub(crate) fn is_image(self) -> bool {
        matches!(self, Self::KoalaImage | Self::CdnImage)
    }

    /// Whether the route belongs to KoalaImages (for the error body shape).
    pub(crate) fn is_koala(self) -> bool {
        matches!(self, Self::KoalaGenerate | Self::KoalaImage)
    }
}

/// A way for a route to misbehave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status before the route runs (nothing is charged), in the route's
    /// error body (Kolbo's `{success,error,code}`, its `{status,message}` for 429,
    /// KoalaImages' `{error}`), with `Retry-After: <secs>` when given.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// Answer with an HTML error page (as a proxy such as Cloudflare would) with this
    /// status, before the route runs.
    HtmlErrorPage {
        /// The HTTP status (typically 502).
        status: u16,
    },
    /// Run the route (charging as usual), then cut its JSON body in half.
    TruncatedJson,
    /// Run the route (charging as usual), then replace its body with plain text.
    NotJson,
    /// Wait this long (on the simulator's clock) before the route runs.
    SlowFirstByte(Duration),
    /// Close the connection without any response; the route does not run.
    ConnectionReset,
    /// Run the route (charging as usual), then close the connection without sending the
    /// response: the "paid but the answer was lost" case.
    ResetAfterProcessing,
    /// Kolbo status: report this `state` instead of the real one.
    UnknownState(String),
    /// Kolbo generate: the job first waits `pending` (queued) for a tenth of its time, as
    /// Kolbo documents for Creative Director runs (plain generations start `processing`
    /// unless [`crate::KolboConfig::queue_generations`] is set).
    Queued,
    /// Generation routes: the job completes with no image URLs (Kolbo `urls: []`,
    /// KoalaImages `[]`).
    ZeroUrls,
    /// Generation routes: the job fails (Kolbo `state: "failed"` with `error` and
    /// `failure`; KoalaImages image URLs answer 500) and its credits are refunded.
    FailGeneration {
        /// The failure message.
        message: String,
        /// Kolbo's `failure.code`.
        code: String,
        /// Kolbo's `failure.retryable`.
        retryable: bool,
    },
    /// Answer `302 Found` pointing at the same path on the CDN listener (another origin);
    /// the route does not run.
    RedirectToOtherOrigin,
    /// Image routes ([`Route::KoalaImage`], and [`Route::CdnImage`], which serves Kolbo's
    /// result images): run the route, then serve only the first half of a successful
    /// image's bytes, with a `Content-Length` of the bytes sent, so the response ends
    /// cleanly with a cut-short image (a PNG without its `IEND`, a JPEG without its end
    /// marker), as a proxy or a CDN that dropped the rest would. Other routes and error
    /// answers are left as they are.
    TruncatedImage,
}

impl Fault {
    /// `Status` without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// A content-policy failure, not retryable (Kolbo's `CONTENT_FLAGGED_SENSITIVE`).
    pub fn content_flagged() -> Self {
        Self::FailGeneration {
            message: "The input or output was flagged as sensitive. Please try different inputs."
                .into(),
            code: "CONTENT_FLAGGED_SENSITIVE".into(),
            retryable: false,
        }
    }

    /// A transient provider failure, retryable.
    pub fn provider_failure() -> Self {
        Self::FailGeneration {
            message: "The upstream provider failed to generate the image.".into(),
            code: "PROVIDER_ERROR".into(),
            retryable: true,
        }
    }
}

/// When a rule fires, counting calls to its route from when the rule was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// On every call.
    Always,
    /// On the Nth call only (1 = the next call).
    Nth(u64),
    /// On each of the next N calls.
    Next(u64),
    /// On each call with this chance, in millionths (50,000 = 5 %). Whether call number
    /// `n` of the rule fires is a hash of the rule and `n`, so a run is reproducible.
    Chance {
        /// The chance per call, in millionths (at most 1,000,000).
        per_million: u32,
    },
}

/// A fault, the route it applies to (`None`: every route) and when it fires.
///
/// ```
/// use imagegen_sim::{Fault, FaultRule, Route};
/// // The second status poll answers 502 with an HTML page.
/// let rule = FaultRule::nth(Route::KolboStatus, 2, Fault::HtmlErrorPage { status: 502 });
/// assert_eq!(rule.route, Some(Route::KolboStatus));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultRule {
    /// The route, or `None` for every route.
    pub route: Option<Route>,
    /// What goes wrong.
    pub fault: Fault,
    /// When.
    pub trigger: Trigger,
}

impl FaultRule {
    /// A rule.
    pub fn new(route: Option<Route>, fault: Fault, trigger: Trigger) -> Self {
        Self {
            route,
            fault,
            trigger,
        }
    }

    /// `fault` on every call of `route`.
    pub fn always(route: Route, fault: Fault) -> Self {
        Self::new(Some(route), fault, Trigger::Always)
    }

    /// `fault` on the `n`th call of `route` (1 = the next one).
    pub fn nth(route: Route, n: u64, fault: Fault) -> Self {
        Self::new(Some(route), fault, Trigger::Nth(n))
    }

    /// `fault` on the next `n` calls of `route`.
    pub fn next(route: Route, n: u64, fault: Fault) -> Self {
        Self::new(Some(route), fault, Trigger::Next(n))
    }

    /// `fault` on each call of `route` with chance `probability` (0 to 1).
    ///
    /// ```
    /// use imagegen_sim::{Fault, FaultRule, Route, Trigger};
    /// let rule = FaultRule::chance(Route::KoalaImage, 0.01, Fault::ConnectionReset);
    /// assert_eq!(rule.trigger, Trigger::Chance { per_million: 10_000 });
    /// ```
    pub fn chance(route: Route, probability: f64, fault: Fault) -> Self {
        Self::new(
            Some(route),
            fault,
            Trigger::Chance {
                per_million: per_million(probability),
            },
        )
    }
}

/// `probability` (clamped to 0..=1) in millionths.
fn per_million(probability: f64) -> u32 {
    if probability.is_nan() {
        return 0;
    }
    // In 0..=1_000_000 after the clamp, so the cast is exact.
    (probability.clamp(0.0, 1.0) * 1_000_000.0).round() as u32
}

/// Whether call `call` of rule `id` fires at `per_million` millionths: SplitMix64 of the
/// two, so the same rule fires on the same calls in every run.
fn chance_fires(id: FaultId, call: u64, per_million: u32) -> bool {
    let mut rng = crate::rng::SplitMix::new(id.0.rotate_left(32) ^ call);
    rng.next_u64() % 1_000_000 < u64::from(per_million)
}

/// Identifies an injected rule, for [`Faults::remove`] and [`Faults::fired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

#[derive(Debug)]
struct ActiveRule {
    id: FaultId,
    rule: FaultRule,
    calls: u64,
    fired: u64,
}

/// The faults of a running simulator; see [`crate::SimHandle::faults`].
///
/// ```no_run
/// # async fn demo(sim: imagegen_sim::SimHandle) {
/// use imagegen_sim::{Fault, FaultRule, Route};
/// let id = sim.faults().inject(FaultRule::nth(Route::KolboGenerate, 1, Fault::ConnectionReset));
/// // ... drive a client ...
/// assert_eq!(sim.faults().fired(id), 1);
/// sim.faults().clear();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

#[derive(Debug, Default)]
struct FaultsInner {
    next_id: AtomicU64,
    rules: Mutex<Vec<ActiveRule>>,
    fired: Mutex<Vec<(FaultId, u64)>>,
}

impl Faults {
    pub(crate) fn new(initial: Vec<FaultRule>) -> Self {
        let faults = Self::default();
        for rule in initial {
            faults.inject(rule);
        }
        faults
    }

    /// Adds a rule; its call count starts now.
    pub fn inject(&self, rule: FaultRule) -> FaultId {
        let id = FaultId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        self.rules().push(ActiveRule {
            id,
            rule,
            calls: 0,
            fired: 0,
        });
        id
    }

    /// Removes a rule; `false` if it was not there (spent rules are removed by themselves).
    pub fn remove(&self, id: FaultId) -> bool {
        let mut rules = self.rules();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        before != rules.len()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// How many times the rule has fired so far (also after it was spent or removed).
    pub fn fired(&self, id: FaultId) -> u64 {
        if let Some(r) = self.rules().iter().find(|r| r.id == id) {
            return r.fired;
        }
        lock(&self.inner.fired)
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Whether no rule is active.
    pub fn is_empty(&self) -> bool {
        self.rules().is_empty()
    }

    /// Counts a call to `route` and returns the faults that fire on it.
    pub(crate) fn on_call(&self, route: Route) -> Vec<Fault> {
        let mut rules = self.rules();
        if rules.is_empty() {
            return Vec::new();
        }
        let mut fired = Vec::new();
        let mut spent = Vec::new();
        for active in rules.iter_mut() {
            if active.rule.route.is_some_and(|r| r != route) {
                continue;
            }
            active.calls += 1;
            let (fires, done) = match active.rule.trigger {
                Trigger::Always => (true, false),
                Trigger::Nth(n) => (active.calls == n, active.calls >= n),
                Trigger::Next(n) => (active.calls <= n, active.calls >= n),
                Trigger::Chance { per_million } => {
                    (chance_fires(active.id, active.calls, per_million), false)
                }
            };
            if fires {
                active.fired += 1;
                fired.push(active.rule.fault.clone());
            }
            if done {
                spent.push((active.id, active.fired));
            }
        }
        if !spent.is_empty() {
            rules.retain(|r| !spent.iter().any(|(id, _)| *id == r.id));
            drop(rules);
            let mut log = lock(&self.inner.fired);
            log.extend(spent);
            // Keep the record of spent rules bounded.
            let len = log.len();
            if len > 10_000 {
                log.drain(..len - 10_000);
            }
        }
        fired
    }

    fn rules(&self) -> MutexGuard<'_, Vec<ActiveRule>> {
        lock(&self.inner.rules)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_routes() {
        assert_eq!(
            Route::classify(false, "POST", "/api/v1/generate/image"),
            Route::KolboGenerate
        );
        assert_eq!(
            Route::classify(false, "GET", "/api/v1/generate/abc/status"),
            Route::KolboStatus
        );
        assert_eq!(
            Route::classify(false, "POST", "/api/v1/generate/abc/cancel"),
            Route::KolboCancel
        );
        assert_eq!(
            Route::classify(false, "GET", "/api/v1/moodboards/x"),
            Route::KolboMoodboards
        );
        assert_eq!(
            Route::classify(false, "POST", "/api/image-generation/"),
            Route::KoalaGenerate
        );
        assert_eq!(
            Route::classify(false, "HEAD", "/api/image/v2-a-b.jpg"),
            Route::KoalaImage
        );
        assert_eq!(Route::classify(true, "GET", "/anything"), Route::CdnImage);
        assert_eq!(Route::classify(false, "GET", "/nope"), Route::Other);
    }

    #[test]
    fn chance_fires_at_its_rate_and_the_same_way_every_run() {
        let run = || {
            let faults = Faults::default();
            faults.inject(FaultRule::chance(
                Route::KolboStatus,
                0.05,
                Fault::ConnectionReset,
            ));
            (0..100_000)
                .map(|_| !faults.on_call(Route::KolboStatus).is_empty())
                .collect::<Vec<bool>>()
        };
        let first = run();
        let fired = first.iter().filter(|f| **f).count();
        assert!((4_500..=5_500).contains(&fired), "{fired} of 100,000");
        assert_eq!(first, run(), "reproducible");
        assert_eq!(per_million(f64::NAN), 0);
        assert_eq!(per_million(2.0), 1_000_000);
        let never = Faults::default();
        never.inject(FaultRule::chance(Route::KoalaImage, 0.0, Fault::NotJson));
        assert!((0..1_000).all(|_| never.on_call(Route::KoalaImage).is_empty()));
    }

    #[test]
    fn triggers_count_calls_of_their_route() {
        let faults = Faults::default();
        let nth = faults.inject(FaultRule::nth(Route::KolboStatus, 2, Fault::status(502)));
        let next = faults.inject(FaultRule::next(Route::KolboModels, 2, Fault::NotJson));
        let always = faults.inject(FaultRule::new(None, Fault::TruncatedJson, Trigger::Always));
        assert_eq!(
            faults.on_call(Route::KolboStatus),
            vec![Fault::TruncatedJson]
        );
        assert_eq!(
            faults.on_call(Route::KolboStatus),
            vec![Fault::status(502), Fault::TruncatedJson]
        );
        assert_eq!(
            faults.on_call(Route::KolboStatus),
            vec![Fault::TruncatedJson]
        );
        assert_eq!(faults.fired(nth), 1);
        assert!(!faults.remove(nth), "spent rules remove themselves");
        assert_eq!(faults.on_call(Route::KolboModels).len(), 2);
        assert_eq!(faults.on_call(Route::KolboModels).len(), 2);
        assert_eq!(faults.on_call(Route::KolboModels).len(), 1);
        assert_eq!(faults.fired(next), 2);
        assert_eq!(faults.fired(always), 6);
        assert!(faults.remove(always));
        assert!(faults.is_empty());
    }
}
