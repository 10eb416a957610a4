//! Wall-clock timestamps for `created_at` fields: the simulator's start time plus the
//! injected clock's elapsed time, formatted as RFC 3339 in UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-03-05T10:30:00Z` for `epoch + elapsed`.
pub(crate) fn rfc3339(epoch: SystemTime, elapsed: Duration) -> String {
    let at = epoch + elapsed;
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    (
        year,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH, Duration::ZERO), "1970-01-01T00:00:00Z");
        // 2026-03-05T10:30:00Z
        let at = UNIX_EPOCH + Duration::from_secs(1_772_706_600);
        assert_eq!(rfc3339(at, Duration::ZERO), "2026-03-05T10:30:00Z");
        assert_eq!(
            rfc3339(at, Duration::from_secs(86_400 * 365)),
            "2027-03-05T10:30:00Z"
        );
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(1_709_164_800);
        assert_eq!(rfc3339(leap, Duration::ZERO), "2024-02-29T00:00:00Z");
    }
}
