//! The user's Koala subscription plan, which decides what a request may use.
//!
//! Koala has no endpoint that tells a client its plan, so the user says it. With
//! [`KoalaPlan::Unknown`] (the default) every request is allowed locally, and a `403` from
//! Koala then says the Professional Plan is required.

use std::fmt;
use std::str::FromStr;

use imagegen_core::PlanName;
use serde::{Deserialize, Serialize};

/// The plan name the catalog uses for Koala's Professional Plan.
pub const PROFESSIONAL: &str = "professional";

/// Which Koala plan the account has.
///
/// ```
/// use koala_api::KoalaPlan;
/// assert_eq!("Professional".parse::<KoalaPlan>().unwrap(), KoalaPlan::Professional);
/// assert!(!KoalaPlan::Basic.allows_professional_features());
/// assert!(KoalaPlan::Unknown.allows_professional_features());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KoalaPlan {
    /// A paid plan below Professional: gpt-image-2 at `fast` and `standard` only.
    Basic,
    /// The Professional Plan: every model and quality.
    Professional,
    /// Not told: nothing is refused locally; Koala's `403` decides.
    #[default]
    Unknown,
}

impl KoalaPlan {
    /// Koala's plans that can use the API, lowest first: what
    /// [`ProviderProfile::plan_tiers`](imagegen_core::ProviderProfile::plan_tiers) compares a
    /// needed plan with. Every paid plan has API access; the catalog needs only the line
    /// between the plans below Professional (`basic`) and Professional.
    pub const TIERS: [KoalaPlan; 2] = [KoalaPlan::Basic, KoalaPlan::Professional];

    /// The plan's name for the router; `None` when the plan is unknown.
    ///
    /// ```
    /// use koala_api::KoalaPlan;
    /// assert_eq!(KoalaPlan::Professional.plan_name().unwrap(), "professional");
    /// assert_eq!(KoalaPlan::Unknown.plan_name(), None);
    /// ```
    pub fn plan_name(self) -> Option<PlanName> {
        match self {
            Self::Unknown => None,
            known => Some(PlanName::new(known.as_str())),
        }
    }

    /// Whether the plan may (or, when unknown, might) use what needs the Professional Plan.
    pub fn allows_professional_features(self) -> bool {
        !matches!(self, Self::Basic)
    }

    /// Whether the plan may make a request that does (`true`) or does not need the
    /// Professional Plan.
    pub fn allows(self, needs_professional: bool) -> bool {
        !needs_professional || self.allows_professional_features()
    }

    /// The plan as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Professional => PROFESSIONAL,
            Self::Unknown => "unknown",
        }
    }

    /// The catalog's name for the Professional Plan.
    pub fn professional_plan_name() -> PlanName {
        PlanName::new(PROFESSIONAL)
    }
}

impl fmt::Display for KoalaPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan name that is not `basic`, `professional` (or `pro`) or `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Koala plan: use basic, professional or unknown")]
pub struct PlanParseError(String);

impl FromStr for KoalaPlan {
    type Err = PlanParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(Self::Basic),
            "professional" | "pro" => Ok(Self::Professional),
            "unknown" | "" => Ok(Self::Unknown),
            _ => Err(PlanParseError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_gates() {
        assert_eq!("pro".parse::<KoalaPlan>(), Ok(KoalaPlan::Professional));
        assert_eq!(" basic ".parse::<KoalaPlan>(), Ok(KoalaPlan::Basic));
        assert!("gold".parse::<KoalaPlan>().is_err());
        assert!(KoalaPlan::Basic.allows(false));
        assert!(!KoalaPlan::Basic.allows(true));
        assert!(KoalaPlan::Professional.allows(true));
        assert_eq!(KoalaPlan::default(), KoalaPlan::Unknown);
        let tiers: Vec<&str> = KoalaPlan::TIERS.iter().map(|p| p.as_str()).collect();
        assert_eq!(tiers, ["basic", "professional"]);
        assert_eq!(
            KoalaPlan::Professional.plan_name(),
            Some(KoalaPlan::professional_plan_name())
        );
        assert_eq!(
            serde_json::to_string(&KoalaPlan::Professional).unwrap(),
            "\"professional\""
        );
    }
}
