//! `GET /v1/account/credits`: the credit balance.

use imagegen_core::Credits;
use serde::{Deserialize, Serialize};

/// The answer to `GET /v1/account/credits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountCreditsResponse {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The balance.
    pub credits: AccountCredits,
}

/// A credit balance. Credits are spent from the plan first, then packs, then redemptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountCredits {
    /// Everything available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Credits>,
    /// From the subscription plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_credits: Option<Credits>,
    /// From purchased packs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_pack: Option<Credits>,
    /// From redeemed codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption: Option<Credits>,
}
