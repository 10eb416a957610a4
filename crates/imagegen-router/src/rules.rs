//! [`Rules`]: the policy and one call's options, judged together.

use imagegen_core::{ModelId, ProviderId};

use crate::call::CallOptions;
use crate::policy::{PriceCaps, RoutingPolicy};

/// The router's policy with one request's [`CallOptions`] on top.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) policy: &'a RoutingPolicy,
    pub(crate) call: &'a CallOptions,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(policy: &'a RoutingPolicy, call: &'a CallOptions) -> Self {
        Self { policy, call }
    }

    /// Why `provider` may not be used, if it may not.
    pub(crate) fn provider_refusal(&self, provider: &ProviderId) -> Option<&'static str> {
        if let Some(pinned) = &self.call.provider
            && pinned != provider
        {
            return Some("not the provider asked for");
        }
        self.policy.provider_refusal(provider).map(|why| match why {
            "denied" => "denied by the policy",
            _ => "not allowed by the policy",
        })
    }

    /// Why `model` at `provider` may not be used, if it may not.
    pub(crate) fn model_refusal(
        &self,
        provider: &ProviderId,
        model: &ModelId,
    ) -> Option<&'static str> {
        if self.call.wants_provider_pick() {
            return Some("not asked for: auto lets the provider pick");
        }
        if let Some(pinned) = self.call.named_model()
            && pinned != model
        {
            return Some("not the model asked for");
        }
        self.policy
            .model_refusal(provider, model)
            .map(|why| match why {
                "denied" => "denied by the policy",
                _ => "not allowed by the policy",
            })
    }

    /// Whether the user named this model (in the call, an allow rule or an order).
    pub(crate) fn names_model(&self, provider: &ProviderId, model: &ModelId) -> bool {
        self.call.named_model() == Some(model)
            && self.call.provider.as_ref().is_none_or(|p| p == provider)
            || self.policy.names_model(provider, model)
    }

    /// Whether the user named a model at all.
    pub(crate) fn names_a_model(&self) -> bool {
        self.call.named_model().is_some() || !self.policy.allowed_model_names().is_empty()
    }

    /// The models named, as `provider/model` or `model`.
    pub(crate) fn named_models(&self) -> Vec<String> {
        match (&self.call.provider, self.call.named_model()) {
            (Some(p), Some(m)) => vec![format!("{p}/{m}")],
            (None, Some(m)) => vec![m.to_string()],
            _ => self.policy.allowed_model_names(),
        }
    }

    /// Whether the call asks for the provider's own pick (`auto`).
    pub(crate) fn wants_provider_pick(&self) -> bool {
        self.call.wants_provider_pick()
    }

    /// Whether far reshaping is allowed.
    pub(crate) fn reshape_allowed(&self) -> bool {
        self.call.allow_reshape || self.policy.reshape_allowed()
    }

    /// The price caps: the lower of the policy's and the call's.
    pub(crate) fn caps(&self) -> PriceCaps {
        let mut caps = self.policy.caps();
        let lower =
            |a: Option<imagegen_core::Credits>, b: Option<imagegen_core::Credits>| match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        caps.per_image = lower(caps.per_image, self.call.max_credits_per_image);
        caps.per_request = lower(caps.per_request, self.call.max_credits_per_request);
        caps
    }
}
