//! The exit codes, one per kind of outcome, so scripts can decide without reading text.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else (a host that could not be reached, disk, interrupted with Ctrl-C) |
//! | 2 | input rejected before any generation request was sent (a bad flag, setting or batch line; no model can take the request) |
//! | 3 | a provider refused (a wrong key, credits, plan, a rate limit after waiting, content policy at submission) |
//! | 4 | the generation failed after the provider accepted it (flagged content, a model error), or its outcome is unknown: resume it |
//! | 5 | the run budget or a price cap would be exceeded |
//!
//! Usage errors found by the argument parser (a bad flag value) exit 2 as well.

use imagegen::ErrorKind;

/// Success.
pub(crate) const OK: u8 = 0;
/// Anything else.
pub(crate) const OTHER: u8 = 1;
/// Input rejected before any request was sent.
pub(crate) const INVALID_INPUT: u8 = 2;
/// A provider refused.
pub(crate) const REFUSED: u8 = 3;
/// The generation failed.
pub(crate) const GENERATION_FAILED: u8 = 4;
/// The budget or a price cap would be exceeded.
pub(crate) const OVER_BUDGET: u8 = 5;

/// The exit code of an error kind.
pub(crate) fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => INVALID_INPUT,
        ErrorKind::Refused => REFUSED,
        ErrorKind::GenerationFailed => GENERATION_FAILED,
        ErrorKind::OverBudget => OVER_BUDGET,
        _ => OTHER,
    }
}

/// A short name for JSON output.
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Refused => "refused",
        ErrorKind::GenerationFailed => "generation_failed",
        ErrorKind::OverBudget => "over_budget",
        ErrorKind::Interrupted => "interrupted",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(code(ErrorKind::InvalidInput), 2);
        assert_eq!(code(ErrorKind::Refused), 3);
        assert_eq!(code(ErrorKind::GenerationFailed), 4);
        assert_eq!(code(ErrorKind::OverBudget), 5);
        assert_eq!(code(ErrorKind::Interrupted), 1);
        assert_eq!(code(ErrorKind::Other), 1);
        assert_eq!(OK, 0);
    }
}
