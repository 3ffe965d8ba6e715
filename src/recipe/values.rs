//! Values recipes are made of, checked as readers need them: names, tags, durations, sizes,
//! and the bounds of ids and times.

pub fn describe_char(c: char) -> String {
    match c {
        ':' => "`:`".into(),
        '\n' => "a newline".into(),
        '\0' => "a NUL byte".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// The largest recipe file read (recipes are a few kB).
pub const MAX_RECIPE_BYTES: u64 = 4 << 20;

/// The largest uid or gid a recipe may name.
pub const MAX_ID: u32 = (1 << 31) - 1;

/// The last second of the year 9999 (`9999-12-31T23:59:59Z`): RFC 3339 has four-digit years.
pub const MAX_EPOCH: u64 = 253_402_300_799;

pub fn valid_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn valid_repo_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
}

pub use crate::model::reference::valid_tag;

/// `1h2m3s`, `30s`, `500ms`, `1.5s` → nanoseconds, computed exactly in integers, and only up
/// to what Go's `time.Duration` holds (2^63-1 ns), which docker and podman read it into.
pub fn parse_duration(s: &str) -> Option<u64> {
    duration_syntax(s).filter(|ns| *ns <= i64::MAX as u128).map(|ns| ns as u64)
}

/// The nanoseconds a duration string says, however many (`None`: not a duration).
pub fn duration_syntax(s: &str) -> Option<u128> {
    let mut total: u128 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (whole, frac) = match rest[..num_end].split_once('.') {
            Some((w, f)) => (w, f),
            None => (&rest[..num_end], ""),
        };
        if (whole.is_empty() && frac.is_empty()) || whole.len() > 30 {
            return None;
        }
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let mut part = whole.checked_mul(scale)?;
        // The fraction, digit by digit, to the nanosecond.
        let mut unit = scale;
        for d in frac.bytes() {
            if !d.is_ascii_digit() {
                return None;
            }
            unit /= 10;
            part = part.checked_add(u128::from(d - b'0') * unit)?;
        }
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// `80 MB`, `80MB`, `512 KiB`, `1.5 GB`, or a number of bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration(".5ms"), Some(500_000));
        assert_eq!(parse_duration("2562047h47m16.854775807s"), Some(i64::MAX as u64));
        assert_eq!(parse_duration("2562047h47m16.854775808s"), None, "one past time.Duration");
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("1..5s"), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::parse_size("80 MB"), Some(80_000_000));
        assert_eq!(super::parse_size("512KiB"), Some(524_288));
        assert_eq!(super::parse_size("1.5 GB"), Some(1_500_000_000));
        assert_eq!(super::parse_size("1200"), Some(1200));
        assert_eq!(super::parse_size("12 parsecs"), None);
    }
}
