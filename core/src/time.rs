//! Times as RFC 3339 text, both ways, without a date library: versions keep milliseconds
//! since the Unix epoch (UTC); people read and write calendar times.

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
///
/// ```
/// assert_eq!(strata_core::time::rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
/// ```
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`; `t`,
/// `z` or a space also accepted) or a date (`2024-05-01`, the start of that day, UTC) into
/// milliseconds since the Unix epoch. The error says what is wrong.
///
/// # Errors
/// A one-line message naming the text and what is wrong with it.
///
/// ```
/// assert_eq!(strata_core::time::parse("2000-02-29"), Ok(951_782_400_000));
/// assert!(strata_core::time::parse("2000-02-30").is_err());
/// ```
pub fn parse(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "'{text}' is not a time: {why}; write an RFC 3339 time such as \
             2024-05-01T12:00:00Z or a date such as 2024-05-01"
        )
    };
    let b = text.as_bytes();
    let num = |from: usize, len: usize, what: &str| -> Result<i64, String> {
        let part = b
            .get(from..from + len)
            .ok_or_else(|| bad(&format!("the {what} is missing")))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad(&format!("the {what} is not {len} digits")));
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: u8, what: &str| -> Result<(), String> {
        if b.get(at) == Some(&want) {
            Ok(())
        } else {
            Err(bad(&format!("expected '{}' {what}", want as char)))
        }
    };
    let year = num(0, 4, "year")?;
    sep(4, b'-', "after the year")?;
    let month = num(5, 2, "month")?;
    sep(7, b'-', "after the month")?;
    let day = num(8, 2, "day")?;
    if !(1..=12).contains(&month) {
        return Err(bad("the month is not 01-12"));
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return Err(bad("that day does not exist in that month"));
    }
    let days = days_from_civil(year, month, day);
    let mut ms = days * 86_400_000;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(bad("expected 'T' between the date and the time"));
        }
        let hour = num(11, 2, "hour")?;
        sep(13, b':', "after the hour")?;
        let minute = num(14, 2, "minute")?;
        sep(16, b':', "after the minutes")?;
        let second = num(17, 2, "second")?;
        if hour > 23 || minute > 59 || second > 60 {
            return Err(bad("the time of day is out of range"));
        }
        let mut at = 19;
        let mut frac_ms = 0;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return Err(bad("no digits after the decimal point"));
            }
            // Milliseconds: the first three digits, the rest dropped.
            let digits = &b[start..at];
            for i in 0..3 {
                frac_ms = frac_ms * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
        }
        let offset_min = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(&c @ (b'+' | b'-')) if at + 6 == b.len() => {
                let oh = num(at + 1, 2, "offset hours")?;
                sep(at + 3, b':', "in the offset")?;
                let om = num(at + 4, 2, "offset minutes")?;
                if oh > 23 || om > 59 {
                    return Err(bad("the offset is out of range"));
                }
                let m = oh * 60 + om;
                if c == b'-' { -m } else { m }
            }
            _ => return Err(bad("expected 'Z' or an offset such as +02:00 at the end")),
        };
        ms += ((hour * 60 + minute - offset_min) * 60 + second) * 1000 + frac_ms;
    }
    u64::try_from(ms).map_err(|_| bad("it is before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_dates_times_fractions_and_offsets() {
        use super::parse;
        assert_eq!(parse("1970-01-01"), Ok(0));
        assert_eq!(parse("2000-02-29"), Ok(951_782_400_000));
        assert_eq!(parse("2026-11-27T12:00:00Z"), Ok(1_795_780_800_000));
        assert_eq!(parse("2026-11-27t12:00:00.123z"), Ok(1_795_780_800_123));
        assert_eq!(
            parse("2026-11-27T14:00:00.1239+02:00"),
            Ok(1_795_780_800_123)
        );
        assert_eq!(parse("2026-11-27 07:30:00-04:30"), Ok(1_795_780_800_000));
        for (text, why) in [
            ("2023-02-29", "does not exist"),
            ("2024-13-01", "month"),
            ("24-05-01", "year"),
            ("2024-05-01T12:00Z", "minutes"),
            ("2024-05-01T12:00:00", "offset"),
            ("2024-05-01T25:00:00Z", "out of range"),
            ("2024-05-01T12:00:00.Z", "decimal point"),
            ("1969-12-31", "before 1970"),
            ("2024-05-01T12:00:00+0200", "offset"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
        // Round trip with the formatter.
        let t = parse("2031-07-04T01:02:03Z").unwrap();
        assert_eq!(super::rfc3339(t), "2031-07-04T01:02:03Z");
    }

    #[test]
    fn known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_780_800_123), "2026-11-27T12:00:00Z");
    }
}
