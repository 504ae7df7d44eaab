//! The Java behaviours Mycat's functions are defined by: `String.hashCode`, `Long.parseLong`, lenient
//! `SimpleDateFormat` parsing, Guava's murmur3_32 and consistentHash — reproduced bit for bit.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone};

/// `String.hashCode()`: 31-polynomial over UTF-16 code units, wrapping i32.
pub fn string_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// `Long.parseLong`: optional sign, decimal digits, nothing else.
pub fn parse_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Integer.parseInt`.
pub fn parse_int(s: &str) -> Option<i32> {
    parse_long(s).and_then(|v| i32::try_from(v).ok())
}

/// Guava `Hashing.murmur3_32(seed).hashUnencodedChars(s)`: MurmurHash3 x86_32 over the UTF-16 code
/// units as little-endian byte pairs, as a signed int.
pub fn murmur3_32_chars(seed: u32, s: &str) -> i32 {
    let mut bytes = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    murmur3_32(seed, &bytes) as i32
}

fn murmur3_32(seed: u32, data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k ^= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Guava `Hashing.consistentHash(input, buckets)` (linear congruential walk).
pub fn guava_consistent_hash(input: i64, buckets: i32) -> i32 {
    let mut state = input as u64;
    let mut candidate: i32 = 0;
    loop {
        state = state.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let next_double = f64::from(((state >> 33) as i32).wrapping_add(1)) / 2147483648.0;
        let next = (f64::from(candidate + 1) / next_double) as i32;
        if next >= 0 && next < buckets {
            candidate = next;
        } else {
            return candidate;
        }
    }
}

/// The time zone date functions compute in (`timeZone` property; default the host's).
#[derive(Debug, Clone)]
pub enum Zone {
    Local,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `GMT+8`, `UTC+08:00`, `+0800`, or an IANA name such as `Asia/Shanghai`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        let rest = t.strip_prefix("GMT").or_else(|| t.strip_prefix("UTC")).unwrap_or(t);
        if rest.is_empty() {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).ok_or("bad offset")?));
        }
        if let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
            let body = &rest[1..];
            let (h, m) = match body.split_once(':') {
                Some((h, m)) => (h, m),
                None if body.len() == 4 => (&body[..2], &body[2..]),
                None => (body, "0"),
            };
            let (h, m): (i32, i32) = (
                h.parse().map_err(|_| format!("bad time zone '{s}'"))?,
                m.parse().map_err(|_| format!("bad time zone '{s}'"))?,
            );
            let secs = (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 };
            return FixedOffset::east_opt(secs).map(Zone::Fixed).ok_or_else(|| format!("bad time zone '{s}'"));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| format!("unknown time zone '{s}'"))
    }

    /// Milliseconds since the epoch of a local date-time in this zone (earliest if ambiguous).
    pub fn millis(&self, dt: NaiveDateTime) -> Option<i64> {
        let ms = match self {
            Zone::Local => chrono::Local.from_local_datetime(&dt).earliest()?.timestamp_millis(),
            Zone::Fixed(o) => o.from_local_datetime(&dt).earliest()?.timestamp_millis(),
            Zone::Named(z) => z.from_local_datetime(&dt).earliest()?.timestamp_millis(),
        };
        Some(ms)
    }

    /// The local date-time of an instant in this zone.
    pub fn local(&self, millis: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp_millis(millis)?.naive_utc();
        let off = match self {
            Zone::Local => chrono::Local.offset_from_utc_datetime(&utc).fix(),
            Zone::Fixed(o) => *o,
            Zone::Named(z) => z.offset_from_utc_datetime(&utc).fix(),
        };
        Some(utc + chrono::Duration::seconds(i64::from(off.local_minus_utc())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Field(char, usize),
    Literal(String),
}

/// A `SimpleDateFormat` pattern, parsed leniently: numbers may be shorter than the pattern (`2014-03-1`
/// for `yyyy-MM-dd`), adjacent numeric fields take their pattern width, trailing text is ignored.
#[derive(Debug, Clone)]
pub struct DateFormat {
    pieces: Vec<Piece>,
    pub pattern: String,
}

impl DateFormat {
    pub fn new(pattern: &str) -> Result<DateFormat, String> {
        let mut pieces = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    n += 1;
                }
                if !"yMdHhmsS".contains(c) {
                    return Err(format!("date pattern letter '{c}' is not supported (use y M d H m s S)"));
                }
                pieces.push(Piece::Field(c, n));
            } else if c == '\'' {
                let mut lit = String::new();
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    lit.push(d);
                }
                pieces.push(Piece::Literal(lit));
            } else {
                match pieces.last_mut() {
                    Some(Piece::Literal(l)) => l.push(c),
                    _ => pieces.push(Piece::Literal(c.to_string())),
                }
            }
        }
        Ok(DateFormat { pieces, pattern: pattern.to_string() })
    }

    /// The local date-time written in `s`.
    pub fn parse_local(&self, s: &str) -> Option<NaiveDateTime> {
        let b = s.as_bytes();
        let mut pos = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut se, mut ms) = (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
        for (i, p) in self.pieces.iter().enumerate() {
            match p {
                Piece::Literal(l) => {
                    if !s.get(pos..)?.starts_with(l.as_str()) {
                        return None;
                    }
                    pos += l.len();
                }
                Piece::Field(c, n) => {
                    let adjacent = matches!(self.pieces.get(i + 1), Some(Piece::Field(..)));
                    let max = if adjacent { *n } else { 18 };
                    let start = pos;
                    if b.get(pos) == Some(&b'-') && *c == 'y' {
                        pos += 1;
                    }
                    while pos < b.len() && b[pos].is_ascii_digit() && pos - start < max {
                        pos += 1;
                    }
                    let v: i64 = s.get(start..pos)?.parse().ok()?;
                    match c {
                        'y' => y = v,
                        'M' => mo = v,
                        'd' => d = v,
                        'H' | 'h' => h = v,
                        'm' => mi = v,
                        's' => se = v,
                        _ => ms = v,
                    }
                }
            }
        }
        // lenient: months, days and times roll over as in java.util.GregorianCalendar
        let base = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, 1, 1)?;
        let months = mo - 1;
        let date = if months >= 0 {
            base.checked_add_months(chrono::Months::new(u32::try_from(months).ok()?))?
        } else {
            base.checked_sub_months(chrono::Months::new(u32::try_from(-months).ok()?))?
        };
        let dt = date.and_hms_opt(0, 0, 0)?
            + chrono::Duration::days(d - 1)
            + chrono::Duration::hours(h)
            + chrono::Duration::minutes(mi)
            + chrono::Duration::seconds(se)
            + chrono::Duration::milliseconds(ms);
        Some(dt)
    }

    /// Milliseconds since the epoch of the date-time written in `s`, read in `zone`.
    pub fn parse_millis(&self, s: &str, zone: &Zone) -> Option<i64> {
        zone.millis(self.parse_local(s)?)
    }

    /// Formats an instant with this pattern (for ranges that step through dates).
    pub fn format(&self, millis: i64, zone: &Zone) -> Option<String> {
        use chrono::{Datelike, Timelike};
        let t = zone.local(millis)?;
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => out.push_str(l),
                Piece::Field(c, n) => {
                    let v = match c {
                        'y' => i64::from(t.year()),
                        'M' => i64::from(t.month()),
                        'd' => i64::from(t.day()),
                        'H' | 'h' => i64::from(t.hour()),
                        'm' => i64::from(t.minute()),
                        's' => i64::from(t.second()),
                        _ => i64::from(t.nanosecond() / 1_000_000),
                    };
                    out.push_str(&format!("{v:0width$}", width = *n));
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_code_and_murmur_vectors() {
        assert_eq!(string_hash_code("abc"), 96354);
        assert_eq!(string_hash_code(""), 0);
        assert_eq!(string_hash_code("NULL"), 2407815);
        for (s, h) in [("", 0), ("a", 1867108634), ("abc", 1118836419), ("1", -126235597), ("hello", -675079799)] {
            assert_eq!(murmur3_32_chars(0, s), h, "{s}");
        }
    }

    #[test]
    fn long_parsing_is_strict() {
        assert_eq!(parse_long("-12"), Some(-12));
        assert_eq!(parse_long("+7"), Some(7));
        for bad in ["", "1.5", " 1", "0x10", "9223372036854775808", "-"] {
            assert_eq!(parse_long(bad), None, "{bad}");
        }
    }

    #[test]
    fn lenient_dates() {
        let f = DateFormat::new("yyyy-MM-dd").unwrap();
        assert_eq!(f.parse_local("2014-03-1").unwrap().to_string(), "2014-03-01 00:00:00");
        assert_eq!(f.parse_local("2014-01-01 12:00:03").unwrap().to_string(), "2014-01-01 00:00:00");
        assert_eq!(f.parse_local("2014-13-01").unwrap().to_string(), "2015-01-01 00:00:00");
        assert!(f.parse_local("x2014").is_none());
        let g = DateFormat::new("yyyyMMddHH").unwrap();
        assert_eq!(g.parse_local("2015020216").unwrap().to_string(), "2015-02-02 16:00:00");
        let z = Zone::parse("GMT+8").unwrap();
        let ms = DateFormat::new("yyyy-MM-dd HH:mm:ss").unwrap().parse_millis("1970-01-01 08:00:00", &z);
        assert_eq!(ms, Some(0));
        assert_eq!(f.format(0, &z).as_deref(), Some("1970-01-01"));
        assert!(Zone::parse("Asia/Shanghai").is_ok());
        assert!(Zone::parse("Mars/Base").is_err());
    }
}
