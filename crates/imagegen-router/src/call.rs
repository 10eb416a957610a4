//! [`CallOptions`]: routing choices for one request, judged against the run's shared state.
//!
//! A batch line may pin a provider or a model, or cap a price, without building another
//! router: the same catalog cache, cooldowns, lessons and budget serve every request.
//!
//! # `auto`: the provider picks the model
//!
//! [`CallOptions::provider_picks`] (or, the same, [`CallOptions::model`] with
//! [`AUTO_MODEL`], which is what `--model auto` and a batch line's `"model": "auto"` give)
//! asks for a provider's own pick: Kolbo's Smart Select, where no `model` is sent and
//! Kolbo chooses. Only providers registered with
//! [`RouterBuilder::provider_picks`](crate::RouterBuilder::provider_picks) pick (the
//! `imagegen` facade registers Kolbo; KoalaImages has a fixed default model, not a pick,
//! so `auto` never routes there). Every named model is left out with a reason, without
//! denying anything by name. The price is unknown until the provider reports it, so the
//! provider's highest catalog price per image is reserved for the images asked (caps and
//! the run budget are checked against it before anything is sent) and the reservation
//! settles to the charge the provider reports; the model that ran is the job output's.

use imagegen_core::{Credits, ModelId, ProviderId};
use serde::Serialize;

/// The model name that asks for the provider's own pick (`--model auto`).
pub const AUTO_MODEL: &str = "auto";

/// Routing choices for one request, on top of the router's [`RoutingPolicy`](crate::RoutingPolicy).
///
/// ```
/// use imagegen_core::Credits;
/// use imagegen_router::CallOptions;
/// let call = CallOptions::default()
///     .provider("koala")
///     .model("gpt-image-2")
///     .max_credits_per_image(Credits::whole(8))
///     .allow_reshape(true);
/// assert_eq!(call.provider.as_ref().map(|p| p.as_str()), Some("koala"));
/// ```
///
/// Its `Serialize` is what a sidecar records as the request's routing choices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallOptions {
    /// Only this provider.
    pub provider: Option<ProviderId>,
    /// Only this model (of the pinned provider, or of any provider offering it).
    pub model: Option<ModelId>,
    /// The most credits one image may cost (the lower of this and the policy's cap).
    pub max_credits_per_image: Option<Credits>,
    /// The most credits the request may cost (the lower of this and the policy's cap).
    pub max_credits_per_request: Option<Credits>,
    /// Allow a model whose nearest shape is far from the one asked.
    pub allow_reshape: bool,
    /// Let the provider pick the model (Kolbo's Smart Select); see the [module](self)
    /// docs. [`CallOptions::model`] with [`AUTO_MODEL`] sets it.
    pub provider_picks: bool,
}

impl CallOptions {
    /// Only `provider`.
    #[must_use]
    pub fn provider(mut self, provider: impl Into<ProviderId>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Only `model`. [`AUTO_MODEL`] (`"auto"`, any case) is no model name: it asks for
    /// the provider's own pick, as [`CallOptions::provider_picks`] does.
    ///
    /// ```
    /// use imagegen_router::CallOptions;
    /// let auto = CallOptions::default().model("auto");
    /// assert!(auto.wants_provider_pick());
    /// assert_eq!(auto.model, None);
    /// assert_eq!(auto, CallOptions::default().provider_picks(true));
    /// ```
    #[must_use]
    pub fn model(mut self, model: impl Into<ModelId>) -> Self {
        let model = model.into();
        if is_auto(&model) {
            self.model = None;
            self.provider_picks = true;
        } else {
            self.model = Some(model);
        }
        self
    }

    /// Lets the provider pick the model (Kolbo's Smart Select): only providers that pick
    /// are candidates, and their highest catalog price is reserved.
    #[must_use]
    pub fn provider_picks(mut self, picks: bool) -> Self {
        self.provider_picks = picks;
        self
    }

    /// Whether the call asks for the provider's own pick: [`CallOptions::provider_picks`],
    /// or a [`CallOptions::model`] field set to [`AUTO_MODEL`] directly.
    pub fn wants_provider_pick(&self) -> bool {
        self.provider_picks || self.model.as_ref().is_some_and(is_auto)
    }

    /// The model named, unless it is [`AUTO_MODEL`].
    pub(crate) fn named_model(&self) -> Option<&ModelId> {
        self.model.as_ref().filter(|m| !is_auto(m))
    }

    /// A per-image price cap.
    #[must_use]
    pub fn max_credits_per_image(mut self, cap: Credits) -> Self {
        self.max_credits_per_image = Some(cap);
        self
    }

    /// A per-request price cap.
    #[must_use]
    pub fn max_credits_per_request(mut self, cap: Credits) -> Self {
        self.max_credits_per_request = Some(cap);
        self
    }

    /// Allows far reshaping.
    #[must_use]
    pub fn allow_reshape(mut self, allow: bool) -> Self {
        self.allow_reshape = allow;
        self
    }

    /// Whether nothing is chosen.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether `model` is [`AUTO_MODEL`].
pub fn is_auto(model: &ModelId) -> bool {
    model.as_str().eq_ignore_ascii_case(AUTO_MODEL)
}
