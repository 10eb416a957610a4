//! Conversions between the ledger's types and what the databases store: 64-bit signed
//! integers for money, counts and times; UTF-8 text for paths.

use std::path::{Path, PathBuf};

use imagegen_core::Credits;

use crate::error::LedgerError;

/// `value` as a stored integer, or [`LedgerError::TooLarge`].
pub(crate) fn int(value: u64, what: &'static str) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::TooLarge { what, value })
}

/// An amount as stored micros.
pub(crate) fn micros(amount: Credits, what: &'static str) -> Result<i64, LedgerError> {
    int(amount.micros(), what)
}

/// A stored integer that must not be negative.
pub(crate) fn uint(value: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt {
        what: format!("{what} ({value})"),
    })
}

/// A stored integer that must fit 32 bits.
pub(crate) fn uint32(value: i64, what: &str) -> Result<u32, LedgerError> {
    u32::try_from(value).map_err(|_| LedgerError::Corrupt {
        what: format!("{what} ({value})"),
    })
}

/// Stored micros as an amount.
pub(crate) fn credits(value: i64, what: &str) -> Result<Credits, LedgerError> {
    uint(value, what).map(Credits::from_micros)
}

/// A path as stored text; a path that is not UTF-8 is refused rather than stored lossily.
pub(crate) fn path_text(path: &Path) -> Result<&str, LedgerError> {
    path.to_str().ok_or_else(|| LedgerError::NotUtf8Path {
        path: path.to_path_buf(),
    })
}

/// Stored text as a path.
pub(crate) fn path(text: String) -> PathBuf {
    PathBuf::from(text)
}

/// A download URL without its query and fragment, where signed URLs carry their tokens.
pub(crate) fn without_query(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_owned()
}

/// The character that escapes `%`, `_` and itself in a `LIKE` pattern.
pub(crate) const LIKE_ESCAPE: char = '!';

/// A `LIKE` pattern (with `ESCAPE '!'`) matching text that contains `needle`, lower-cased.
pub(crate) fn contains_pattern(needle: Option<&str>) -> String {
    let mut pattern = String::from("%");
    for c in needle.unwrap_or_default().to_lowercase().chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    if pattern.len() > 1 {
        pattern.push('%');
    }
    pattern
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM` (UTC, the days `spend --by
/// day` counts).
///
/// ```
/// assert_eq!(imagegen_ledger::utc_minute(1_767_225_600_000 + 3_723_000), "2026-01-01 01:02");
/// ```
pub fn utc_minute(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let in_day = ms.rem_euclid(DAY_MS) / 1_000;
    format!(
        "{} {:02}:{:02}",
        utc_day(ms.div_euclid(DAY_MS)),
        in_day / 3_600,
        in_day % 3_600 / 60
    )
}

/// Day `days` since 1970-01-01 as `YYYY-MM-DD` (UTC, proleptic Gregorian).
pub(crate) fn utc_day(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_utc() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(951_868_799_999), "2000-02-29 23:59");
        assert_eq!(
            utc_minute(1_709_164_800_000 + 3_723_000),
            "2024-02-29 01:02"
        );
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_767_225_600_000 / DAY_MS), "2026-01-01");
        assert_eq!(utc_day(19_782), "2024-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern(None), "%");
        assert_eq!(contains_pattern(Some("")), "%");
        assert_eq!(contains_pattern(Some("Fox")), "%fox%");
        assert_eq!(contains_pattern(Some("50%_!")), "%50!%!_!!%");
    }

    #[test]
    fn source_urls_lose_their_tokens() {
        assert_eq!(
            without_query("https://cdn.example/a.png?X-Amz-Signature=abc#frag"),
            "https://cdn.example/a.png"
        );
        assert_eq!(
            without_query("https://cdn.example/a.png"),
            "https://cdn.example/a.png"
        );
    }

    #[test]
    fn integers_out_of_range_are_errors() {
        assert!(matches!(
            int(u64::MAX, "x"),
            Err(LedgerError::TooLarge { .. })
        ));
        assert!(matches!(uint(-1, "x"), Err(LedgerError::Corrupt { .. })));
        assert_eq!(credits(2_500_000, "x").ok(), Some("2.5".parse().unwrap()));
    }
}
