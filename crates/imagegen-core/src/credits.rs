//! Money as data: exact credit amounts, price multipliers and what a credit is worth.
//!
//! Every amount is a fixed-point integer with six decimal places, so `0.1 + 0.2` is exactly
//! `0.3` and a sum of a thousand prices drifts by nothing. Arithmetic is checked: an overflow
//! is `None`, never a wrapped or saturated number.

use std::fmt;
use std::iter::Sum;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fixed-point scale shared by [`Credits`], [`Multiplier`] and [`Usd`]: six decimals.
const SCALE: u64 = 1_000_000;
const DECIMALS: usize = 6;

/// Why a piece of text or a number is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountParseError {
    /// Not a non-negative decimal number.
    #[error("`{input}` is not an amount: write a non-negative decimal number such as `8` or `2.5`")]
    NotANumber {
        /// The text as given.
        input: String,
    },
    /// More than six decimal places.
    #[error("`{input}` has more than {DECIMALS} decimal places")]
    TooPrecise {
        /// The text as given.
        input: String,
    },
    /// Too large to represent.
    #[error("`{input}` is too large")]
    TooLarge {
        /// The text as given.
        input: String,
    },
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name {
            micros: u64,
        }

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self { micros: 0 };

            /// A whole amount.
            pub const fn whole(units: u32) -> Self {
                Self { micros: units as u64 * SCALE }
            }

            /// An amount from millionths of a unit.
            pub const fn from_micros(micros: u64) -> Self {
                Self { micros }
            }

            /// The amount in millionths of a unit.
            pub const fn micros(self) -> u64 {
                self.micros
            }

            /// Whether the amount is zero.
            pub const fn is_zero(self) -> bool {
                self.micros == 0
            }

            /// The nearest amount to a float, to the millionth; `None` for negative,
            /// non-finite or too large values. Use it only at a boundary where a float
            /// arrives (a JSON number); compute with the exact methods.
            pub fn from_f64(value: f64) -> Option<Self> {
                if !value.is_finite() || value < 0.0 {
                    return None;
                }
                let micros = (value * SCALE as f64).round();
                // u64::MAX as f64 rounds up to 2^64, so compare with `<`.
                (micros < u64::MAX as f64).then(|| Self { micros: micros as u64 })
            }

            /// The amount as a float, for display and for JSON numbers.
            pub fn to_f64(self) -> f64 {
                self.micros as f64 / SCALE as f64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_decimal(f, self.micros)
            }
        }

        impl FromStr for $name {
            type Err = AmountParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_decimal(s).map(|micros| Self { micros })
            }
        }

        impl Serialize for $name {
            /// A JSON number when it is exact as a float (every amount below 2^53
            /// millionths), otherwise a decimal string.
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if self.micros < (1 << 53) {
                    if self.micros % SCALE == 0 {
                        serializer.serialize_u64(self.micros / SCALE)
                    } else {
                        serializer.serialize_f64(self.to_f64())
                    }
                } else {
                    serializer.collect_str(self)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Accepts a JSON number or a decimal string.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(AmountVisitor).map(Self::from_micros)
            }
        }
    };
}

fixed_point! {
    /// An exact number of provider credits.
    ///
    /// ```
    /// use imagegen_core::Credits;
    /// let price: Credits = "2.5".parse()?;
    /// let four = price.checked_mul(4).unwrap();
    /// assert_eq!(four, Credits::whole(10));
    /// assert_eq!(Credits::whole(1).checked_sub(four), None);
    /// # Ok::<(), imagegen_core::AmountParseError>(())
    /// ```
    Credits
}

fixed_point! {
    /// A price factor such as a quality or resolution multiplier (`1.5` for 2K).
    Multiplier
}

fixed_point! {
    /// An amount of US dollars: the common unit the router compares providers in.
    Usd
}

impl Credits {
    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.micros.checked_add(other.micros).map(Self::from_micros)
    }

    /// `self - other`, or `None` when `other` is larger.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.micros.checked_sub(other.micros).map(Self::from_micros)
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Self) -> Self {
        Self::from_micros(self.micros.saturating_sub(other.micros))
    }

    /// `self × count` (a price times a number of images), or `None` on overflow.
    pub fn checked_mul(self, count: u32) -> Option<Self> {
        self.micros
            .checked_mul(u64::from(count))
            .map(Self::from_micros)
    }

    /// `self × factor`, rounded **up** to the millionth (a price estimate never
    /// understates a cost), or `None` on overflow.
    pub fn checked_scale(self, factor: Multiplier) -> Option<Self> {
        mul_div_ceil(self.micros, factor.micros, SCALE).map(Self::from_micros)
    }

    /// The amount with its unit, for people: `1 credit`, `0.5 credits`, `8 credits`.
    ///
    /// ```
    /// use imagegen_core::Credits;
    /// assert_eq!(Credits::whole(1).with_unit().to_string(), "1 credit");
    /// assert_eq!("0.5".parse::<Credits>()?.with_unit().to_string(), "0.5 credits");
    /// # Ok::<(), imagegen_core::AmountParseError>(())
    /// ```
    pub fn with_unit(self) -> CreditsWithUnit {
        CreditsWithUnit(self)
    }

    /// The sum of amounts, or `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Self>>(items: I) -> Option<Self> {
        items
            .into_iter()
            .try_fold(Self::ZERO, |acc, c| acc.checked_add(c))
    }
}

/// [`Credits`] displayed with their unit; see [`Credits::with_unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditsWithUnit(Credits);

impl fmt::Display for CreditsWithUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.0 == Credits::whole(1) {
            "credit"
        } else {
            "credits"
        };
        write!(f, "{} {unit}", self.0)
    }
}

impl Multiplier {
    /// The neutral factor, 1.
    pub const ONE: Self = Self { micros: SCALE };
}

impl Usd {
    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.micros.checked_add(other.micros).map(Self::from_micros)
    }
}

impl Sum for Credits {
    /// Sums, saturating at the largest amount; use [`Credits::checked_sum`] to detect
    /// overflow.
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, |acc, c| {
            Self::from_micros(acc.micros.saturating_add(c.micros))
        })
    }
}

/// What one credit of a provider is worth in dollars.
///
/// Kolbo documents 1 credit = $0.01 ([`CreditWorth::KOLBO_DOCUMENTED`]); a KoalaImages
/// credit's worth depends on the user's plan, so the user configures it.
///
/// ```
/// use imagegen_core::{CreditWorth, Credits, Usd};
/// let kolbo = CreditWorth::KOLBO_DOCUMENTED;
/// assert_eq!(kolbo.to_usd(Credits::whole(8)), Some("0.08".parse::<Usd>()?));
/// # Ok::<(), imagegen_core::AmountParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreditWorth(Usd);

impl CreditWorth {
    /// Kolbo's documented worth: one credit is one US cent.
    pub const KOLBO_DOCUMENTED: Self = Self(Usd::from_micros(10_000));

    /// A worth of `usd` dollars per credit.
    pub const fn per_credit(usd: Usd) -> Self {
        Self(usd)
    }

    /// Dollars per credit.
    pub const fn usd_per_credit(self) -> Usd {
        self.0
    }

    /// The dollar value of `credits`, rounded up to the millionth of a dollar, or `None`
    /// on overflow.
    pub fn to_usd(self, credits: Credits) -> Option<Usd> {
        mul_div_ceil(credits.micros, self.0.micros, SCALE).map(Usd::from_micros)
    }
}

impl FromStr for CreditWorth {
    type Err = AmountParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().trim_start_matches('$').parse().map(Self)
    }
}

impl fmt::Display for CreditWorth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}/credit", self.0)
    }
}

/// Reads an amount, in millionths, from a JSON number or a decimal string, without the
/// trial-and-error (and the error values it allocates) of an untagged enum: amounts are
/// parsed on every response, so this is a hot path.
struct AmountVisitor;

impl serde::de::Visitor<'_> for AmountVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative amount (a number or a decimal string)")
    }

    fn visit_u64<E: serde::de::Error>(self, units: u64) -> Result<u64, E> {
        units
            .checked_mul(SCALE)
            .ok_or_else(|| E::custom(format!("{units} is too large")))
    }

    fn visit_i64<E: serde::de::Error>(self, units: i64) -> Result<u64, E> {
        match u64::try_from(units) {
            Ok(units) => self.visit_u64(units),
            Err(_) => Err(E::custom(format!("{units} is not a non-negative amount"))),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<u64, E> {
        Credits::from_f64(value)
            .map(Credits::micros)
            .ok_or_else(|| E::custom(format!("{value} is not a non-negative amount")))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
        parse_decimal(text).map_err(E::custom)
    }
}

fn mul_div_ceil(a: u64, b: u64, div: u64) -> Option<u64> {
    let product = u128::from(a) * u128::from(b);
    let q = product.div_ceil(u128::from(div));
    u64::try_from(q).ok()
}

fn write_decimal(f: &mut fmt::Formatter<'_>, micros: u64) -> fmt::Result {
    let whole = micros / SCALE;
    let frac = micros % SCALE;
    if frac == 0 {
        write!(f, "{whole}")
    } else {
        let digits = format!("{frac:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

fn parse_decimal(input: &str) -> Result<u64, AmountParseError> {
    let text = input.trim();
    let not_a_number = || AmountParseError::NotANumber {
        input: input.to_owned(),
    };
    let too_large = || AmountParseError::TooLarge {
        input: input.to_owned(),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(not_a_number());
    }
    if text.ends_with('.') {
        return Err(not_a_number());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > DECIMALS {
        return Err(AmountParseError::TooPrecise {
            input: input.to_owned(),
        });
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac_micros: u64 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<DECIMALS$}");
        padded.parse().map_err(|_| not_a_number())?
    };
    whole
        .checked_mul(SCALE)
        .and_then(|w| w.checked_add(frac_micros))
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Credits {
        s.parse().unwrap()
    }

    #[test]
    fn decimal_sums_are_exact() {
        assert_eq!(c("0.1").checked_add(c("0.2")), Some(c("0.3")));
        let thousand_tenths = Credits::checked_sum(std::iter::repeat_n(c("0.1"), 1000));
        assert_eq!(thousand_tenths, Some(Credits::whole(100)));
    }

    #[test]
    fn parse_and_display_round_trip() {
        for (text, shown) in [
            ("8", "8"),
            ("2.5", "2.5"),
            ("0.000001", "0.000001"),
            (" 12.50 ", "12.5"),
            (".5", "0.5"),
            ("007", "7"),
        ] {
            assert_eq!(c(text).to_string(), shown, "{text}");
        }
        for bad in ["", "-1", "1e3", "abc", "1.2.3", "1.", "."] {
            assert!(bad.parse::<Credits>().is_err(), "{bad}");
        }
        assert!(matches!(
            "0.0000001".parse::<Credits>(),
            Err(AmountParseError::TooPrecise { .. })
        ));
        assert!(matches!(
            "18446744073709551615".parse::<Credits>(),
            Err(AmountParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Credits::from_micros(u64::MAX);
        assert_eq!(max.checked_add(Credits::from_micros(1)), None);
        assert_eq!(max.checked_mul(2), None);
        assert_eq!(Credits::whole(1).checked_sub(Credits::whole(2)), None);
        assert_eq!(
            Credits::whole(1).saturating_sub(Credits::whole(2)),
            Credits::ZERO
        );
        assert_eq!(Credits::checked_sum([max, Credits::whole(1)]), None);
        assert_eq!([max, Credits::whole(1)].into_iter().sum::<Credits>(), max);
    }

    #[test]
    fn scaling_rounds_up() {
        let eight = Credits::whole(8);
        assert_eq!(
            eight.checked_scale("1.5".parse().unwrap()),
            Some(Credits::whole(12))
        );
        // 0.000001 × 0.5 is half a millionth: rounded up, never down to free.
        assert_eq!(
            Credits::from_micros(1).checked_scale("0.5".parse().unwrap()),
            Some(Credits::from_micros(1))
        );
        assert_eq!(
            Credits::from_micros(u64::MAX).checked_scale("2".parse().unwrap()),
            None
        );
        assert_eq!(eight.checked_scale(Multiplier::ONE), Some(eight));
    }

    #[test]
    fn worth_converts_to_dollars() {
        let koala: CreditWorth = "$0.0075".parse().unwrap();
        assert_eq!(
            koala.to_usd(Credits::whole(5)),
            Some("0.0375".parse().unwrap())
        );
        assert_eq!(
            CreditWorth::KOLBO_DOCUMENTED.to_usd(Credits::whole(8)),
            Some("0.08".parse().unwrap())
        );
        assert_eq!(koala.to_string(), "$0.0075/credit");
    }

    #[test]
    fn serde_numbers_and_strings() {
        assert_eq!(serde_json::to_string(&Credits::whole(8)).unwrap(), "8");
        assert_eq!(serde_json::to_string(&c("2.5")).unwrap(), "2.5");
        assert_eq!(serde_json::from_str::<Credits>("2.5").unwrap(), c("2.5"));
        assert_eq!(serde_json::from_str::<Credits>("16").unwrap(), c("16"));
        assert_eq!(
            serde_json::from_str::<Credits>("\"0.3\"").unwrap(),
            c("0.3")
        );
        assert!(serde_json::from_str::<Credits>("-1").is_err());
        assert!(serde_json::from_str::<Credits>("\"x\"").is_err());
        assert!(serde_json::from_str::<Credits>("-1.5").is_err());
        assert!(serde_json::from_str::<Credits>("null").is_err());
        assert!(serde_json::from_str::<Credits>("18446744073709551615").is_err());
        // Through a `Value`, as the wire crates read bodies.
        let value = serde_json::json!({"a": 0.5, "b": 8, "c": "1.25"});
        for (key, want) in [("a", "0.5"), ("b", "8"), ("c", "1.25")] {
            assert_eq!(Credits::deserialize(&value[key]).unwrap(), c(want));
        }
        let huge = Credits::from_micros(u64::MAX);
        let text = serde_json::to_string(&huge).unwrap();
        assert_eq!(serde_json::from_str::<Credits>(&text).unwrap(), huge);
    }

    #[test]
    fn float_boundary() {
        assert_eq!(Credits::from_f64(0.1), Some(c("0.1")));
        assert_eq!(Credits::from_f64(-0.5), None);
        assert_eq!(Credits::from_f64(f64::NAN), None);
        assert_eq!(Credits::from_f64(1e30), None);
    }
}
