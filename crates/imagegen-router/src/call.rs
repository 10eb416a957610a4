//! [`CallOptions`]: routing choices for one request, judged against the run's shared state.
//!
//! A batch line may pin a provider or a model, or cap a price, without building another
//! router: the same catalog cache, cooldowns, lessons and budget serve every request.

use imagegen_core::{Credits, ModelId, ProviderId};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

impl CallOptions {
    /// Only `provider`.
    #[must_use]
    pub fn provider(mut self, provider: impl Into<ProviderId>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Only `model`.
    #[must_use]
    pub fn model(mut self, model: impl Into<ModelId>) -> Self {
        self.model = Some(model.into());
        self
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
