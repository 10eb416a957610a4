//! Kolbo credit amounts as exact thousandths (Kolbo prices can be fractional), written to
//! JSON as an integer when whole and as a decimal otherwise.

use serde::{Serialize, Serializer};

/// Credits in thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Milli(pub(crate) u64);

impl Milli {
    pub(crate) const ZERO: Self = Self(0);

    /// From a decimal amount, rounded to the nearest thousandth (negative and NaN give 0).
    pub(crate) fn from_f64(amount: f64) -> Self {
        if amount.is_finite() && amount > 0.0 {
            Self((amount * 1000.0).round() as u64)
        } else {
            Self::ZERO
        }
    }

    pub(crate) fn to_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Multiplied by a factor, rounded up to the next thousandth (a price never understates).
    pub(crate) fn scale(self, factor: f64) -> Self {
        let scaled = (self.0 as f64 * factor).ceil();
        if scaled.is_finite() && scaled > 0.0 {
            Self(scaled as u64)
        } else {
            Self::ZERO
        }
    }

    pub(crate) fn times(self, n: u32) -> Self {
        Self(self.0.saturating_mul(u64::from(n)))
    }

    pub(crate) fn plus(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    pub(crate) fn minus(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// As a JSON number: `8` when whole, `2.25` otherwise.
    pub(crate) fn to_json(self) -> serde_json::Value {
        if self.0.is_multiple_of(1000) {
            serde_json::Value::from(self.0 / 1000)
        } else {
            serde_json::Value::from(self.to_f64())
        }
    }
}

impl Serialize for Milli {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_amounts_are_integers_in_json() {
        assert_eq!(Milli::from_f64(8.0).to_json(), serde_json::json!(8));
        assert_eq!(Milli::from_f64(2.25).to_json(), serde_json::json!(2.25));
        assert_eq!(Milli::from_f64(1.5).scale(1.5), Milli(2250));
        assert_eq!(Milli(1).scale(0.5), Milli(1));
        assert_eq!(Milli::from_f64(-3.0), Milli::ZERO);
        assert_eq!(Milli(5).minus(Milli(9)), Milli::ZERO);
    }
}
