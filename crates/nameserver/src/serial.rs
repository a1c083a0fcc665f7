//! The SOA serial, `YYYYMMDDnn` like the original's: the date of the change
//! and a two-digit counter of the changes that day.
//!
//! Each name server keeps its own serial and bumps it whenever its zone's
//! content changes (every view change does). A serial never goes down while
//! the server runs: past 99 changes in a day it runs into the next day's
//! numbers, as RFC 1912 allows.

use std::time::{SystemTime, UNIX_EPOCH};

/// The serial after `previous` on `today` (`YYYYMMDD`): the first of today
/// (`YYYYMMDD00`), or one more than `previous` if that is already higher.
pub fn next_serial(previous: Option<u32>, today: u32) -> u32 {
    let first_today = today.saturating_mul(100);
    match previous {
        Some(p) if p >= first_today => p.saturating_add(1),
        _ => first_today,
    }
}

/// Today's date as `YYYYMMDD` (UTC).
pub fn today() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    yyyymmdd(secs / 86_400)
}

/// The civil date (proleptic Gregorian, UTC) of a day counted from
/// 1970-01-01, as `YYYYMMDD` (Howard Hinnant's `civil_from_days`).
pub fn yyyymmdd(days_since_epoch: u64) -> u32 {
    let z = days_since_epoch as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 10_000 + month * 100 + day) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_civil_date_of_known_days() {
        assert_eq!(yyyymmdd(0), 19700101);
        assert_eq!(yyyymmdd(10_957), 20000101);
        assert_eq!(yyyymmdd(10_957 + 59), 20000229);
        assert_eq!(yyyymmdd(20_473), 20260120);
    }

    #[test]
    fn the_serial_starts_each_day_at_nn_00_and_only_grows() {
        assert_eq!(next_serial(None, 20260120), 2026012000);
        assert_eq!(next_serial(Some(2026012000), 20260120), 2026012001);
        assert_eq!(next_serial(Some(2026012007), 20260121), 2026012100);
        // The 100th change of a day runs into the next day's numbers.
        assert_eq!(next_serial(Some(2026012099), 20260120), 2026012100);
        // A clock set back never makes it go down.
        assert_eq!(next_serial(Some(2026012100), 20260119), 2026012101);
    }
}
