//! [`FaultMix`]: every kind of fault the simulator has, on every route it applies to, at
//! one overall rate per call: what a soak or a chaos run injects.

use std::time::Duration;

use crate::fault::{Fault, FaultRule, Route};

/// Every kind of [`Fault`] on every route it applies to, each route failing about `rate`
/// of its calls, the rate shared evenly among the kinds that route can have.
///
/// What each route gets:
///
/// | route | faults |
/// |---|---|
/// | Kolbo generate | 429 with `Retry-After`, 500, 502, 503, an HTML 502, reset before and after processing (paid, answer lost), a cut or non-JSON answer (paid), a slow first byte, queued, no URLs, a retryable and a content-policy failure (refunded) |
/// | Kolbo status | 429, 500, 502, 503, an HTML 502, resets, a cut or non-JSON answer, a slow first byte, an unknown `state` |
/// | KoalaImages generate | as Kolbo generate, less queued and the content-policy failure |
/// | image URLs (KoalaImages, Kolbo's CDN) | 500, 502, 503, an HTML 502, a reset, a slow first byte, a redirect to another origin, a cut-short image |
/// | models, credits | 503, a reset |
///
/// ```
/// use imagegen_sim::{FaultMix, Route, SimConfig, Trigger};
/// let mix = FaultMix::new(0.05);
/// let rules = mix.rules();
/// let per_call: u32 = rules
///     .iter()
///     .filter(|r| r.route == Some(Route::KoalaImage))
///     .map(|r| match r.trigger { Trigger::Chance { per_million } => per_million, _ => 0 })
///     .sum();
/// assert!((49_000..=51_000).contains(&per_call)); // about 5 % of image fetches
/// let config = rules.into_iter().fold(SimConfig::default(), SimConfig::with_fault);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FaultMix {
    rate: f64,
    slow_first_byte: Duration,
}

impl FaultMix {
    /// Each route fails about `rate` (0 to 1) of its calls.
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            slow_first_byte: Duration::from_millis(1_500),
        }
    }

    /// How long a slow first byte takes, on the simulator's clock (default 1.5 s).
    pub fn with_slow_first_byte(mut self, delay: Duration) -> Self {
        self.slow_first_byte = delay;
        self
    }

    /// The overall rate per call.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The faults `route` gets.
    pub fn kinds(&self, route: Route) -> Vec<Fault> {
        let slow = Fault::SlowFirstByte(self.slow_first_byte);
        let transient = || {
            vec![
                Fault::Status {
                    status: 429,
                    retry_after: Some(1),
                },
                Fault::status(500),
                Fault::status(502),
                Fault::status(503),
                Fault::HtmlErrorPage { status: 502 },
                Fault::ConnectionReset,
            ]
        };
        let answer_lost = [
            Fault::ResetAfterProcessing,
            Fault::TruncatedJson,
            Fault::NotJson,
        ];
        match route {
            Route::KolboGenerate => {
                let mut kinds = transient();
                kinds.extend(answer_lost);
                kinds.extend([
                    slow,
                    Fault::Queued,
                    Fault::ZeroUrls,
                    Fault::provider_failure(),
                    Fault::content_flagged(),
                ]);
                kinds
            }
            Route::KolboStatus => {
                let mut kinds = transient();
                kinds.extend(answer_lost);
                kinds.extend([slow, Fault::UnknownState("rendering".to_owned())]);
                kinds
            }
            Route::KoalaGenerate => {
                let mut kinds = transient();
                kinds.extend(answer_lost);
                kinds.extend([slow, Fault::ZeroUrls, Fault::provider_failure()]);
                kinds
            }
            Route::KoalaImage | Route::CdnImage => {
                let mut kinds = transient();
                // A 429 on an image URL is not something either service documents.
                kinds.remove(0);
                kinds.extend([slow, Fault::RedirectToOtherOrigin, Fault::TruncatedImage]);
                kinds
            }
            Route::KolboModels | Route::KolboCredits => {
                vec![Fault::status(503), Fault::ConnectionReset]
            }
            _ => Vec::new(),
        }
    }

    /// The rules: one [`FaultRule::chance`] per route and kind.
    pub fn rules(&self) -> Vec<FaultRule> {
        [
            Route::KolboGenerate,
            Route::KolboStatus,
            Route::KoalaGenerate,
            Route::KoalaImage,
            Route::CdnImage,
            Route::KolboModels,
            Route::KolboCredits,
        ]
        .into_iter()
        .flat_map(|route| {
            let kinds = self.kinds(route);
            let share = if kinds.is_empty() {
                0.0
            } else {
                self.rate / kinds.len() as f64
            };
            kinds
                .into_iter()
                .map(move |fault| FaultRule::chance(route, share, fault))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Faults;

    #[test]
    fn every_route_fails_about_the_rate() {
        let faults = Faults::default();
        for rule in FaultMix::new(0.05).rules() {
            faults.inject(rule);
        }
        for route in [Route::KolboGenerate, Route::KoalaImage, Route::KolboStatus] {
            let failed = (0..40_000)
                .filter(|_| !faults.on_call(route).is_empty())
                .count();
            // Independent rules: 1 - Π(1 - p/k) is a little under p.
            assert!((1_700..=2_150).contains(&failed), "{route:?}: {failed}");
        }
    }

    #[test]
    fn every_kind_of_fault_is_in_the_mix() {
        let mix = FaultMix::new(0.05);
        let all: Vec<Fault> = [Route::KolboGenerate, Route::KolboStatus, Route::KoalaImage]
            .into_iter()
            .flat_map(|r| mix.kinds(r))
            .collect();
        for wanted in [
            Fault::ResetAfterProcessing,
            Fault::TruncatedImage,
            Fault::RedirectToOtherOrigin,
            Fault::Queued,
            Fault::ZeroUrls,
            Fault::content_flagged(),
            Fault::UnknownState("rendering".to_owned()),
        ] {
            assert!(all.contains(&wanted), "{wanted:?}");
        }
    }
}
