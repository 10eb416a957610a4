//! UTC days and times as the pages show and take them (`2026-12-02`,
//! `2026-12-02 14:05:09 UTC`), with no time-zone database: the proleptic Gregorian
//! calendar's civil-from-days and days-from-civil.

const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 of `year-month-day`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `year-month-day` of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The start of UTC day `text` (`YYYY-MM-DD`) in milliseconds since the Unix epoch;
/// `None` for anything else or a day before 1970.
pub(crate) fn day_start_ms(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 2026-02-31 is not a day.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    u64::try_from(days).ok()?.checked_mul(DAY_MS)
}

/// The end of UTC day `text`: the start of the next.
pub(crate) fn day_end_ms(text: &str) -> Option<u64> {
    day_start_ms(text)?.checked_add(DAY_MS)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of `ms`.
pub(crate) fn format_ms(ms: u64) -> String {
    let days = i64::try_from(ms / DAY_MS).unwrap_or(i64::MAX / DAY_MS as i64);
    let (year, month, day) = civil_from_days(days);
    let secs = (ms % DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A duration in milliseconds as people read it: `850 ms`, `4.2 s`, `3 min 5 s`.
pub(crate) fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, ms % 1000 / 100)
    } else {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-12-02"), Some(1_796_169_600_000));
        assert_eq!(day_end_ms("1970-01-01"), Some(DAY_MS));
        assert_eq!(day_start_ms("2026-02-31"), None);
        assert_eq!(day_start_ms("yesterday"), None);
        assert_eq!(
            format_ms(1_796_169_600_000 + 3_723_000),
            "2026-12-02 01:02:03 UTC"
        );
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_duration(4_250), "4.2 s");
    }
}
