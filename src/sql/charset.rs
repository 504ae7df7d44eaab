//! SQL text in the client's character set: decoded for the proxy's scanners and parser (a GBK, Big5
//! or SJIS character whose second byte is 0x5C is one character, not a backslash), and texts the
//! proxy rewrites encoded back into it before they reach a backend.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// The codec of a MariaDB character set name (`SET NAMES` argument, collation words allowed);
/// `None` for UTF-8 and the sets read as UTF-8 (ascii, binary), or those without a codec here.
pub fn codec(charset: &str) -> Option<&'static Encoding> {
    let name = charset.split_whitespace().next().unwrap_or("").trim_matches(|c| c == '\'' || c == '"' || c == '`');
    Some(match name.to_ascii_lowercase().as_str() {
        "latin1" => encoding_rs::WINDOWS_1252,
        "latin2" => encoding_rs::ISO_8859_2,
        "latin5" => encoding_rs::WINDOWS_1254,
        "latin7" => encoding_rs::ISO_8859_13,
        "greek" => encoding_rs::ISO_8859_7,
        "hebrew" => encoding_rs::ISO_8859_8,
        "cp1250" => encoding_rs::WINDOWS_1250,
        "cp1251" => encoding_rs::WINDOWS_1251,
        "cp1256" => encoding_rs::WINDOWS_1256,
        "cp1257" => encoding_rs::WINDOWS_1257,
        "cp866" => encoding_rs::IBM866,
        "koi8r" => encoding_rs::KOI8_R,
        "koi8u" => encoding_rs::KOI8_U,
        "macroman" => encoding_rs::MACINTOSH,
        "gbk" | "gb2312" => encoding_rs::GBK,
        "big5" => encoding_rs::BIG5,
        "sjis" | "cp932" => encoding_rs::SHIFT_JIS,
        "ujis" | "eucjpms" => encoding_rs::EUC_JP,
        "euckr" => encoding_rs::EUC_KR,
        _ => return None,
    })
}

/// How well the proxy could read a client's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Exact,
    /// Some bytes are not text of the character set: they read as U+FFFD (never as ASCII), so the
    /// scanners are right, but a rewrite would alter them.
    Lossy,
    /// Not text of a character set whose second bytes can be ASCII (GBK, Big5, SJIS): MariaDB and the
    /// proxy might see different quotes and backslashes — the statement is refused.
    Unsafe,
}

/// Character sets where the second byte of a character may be an ASCII quote or backslash.
fn ascii_trail(enc: &'static Encoding) -> bool {
    enc == encoding_rs::GBK || enc == encoding_rs::BIG5 || enc == encoding_rs::SHIFT_JIS
}

/// The client's text as the proxy reads it, and how well.
pub fn decode<'a>(raw: &'a [u8], charset: &str) -> (Cow<'a, str>, Read) {
    match codec(charset) {
        Some(enc) => {
            let (text, had_errors) = enc.decode_without_bom_handling(raw);
            let read = match (had_errors, ascii_trail(enc)) {
                (false, _) => Read::Exact,
                (true, false) => Read::Lossy,
                (true, true) => Read::Unsafe,
            };
            (text, read)
        }
        None => match std::str::from_utf8(raw) {
            Ok(s) => (Cow::Borrowed(s), Read::Exact),
            // UTF-8 with stray bytes, or a single-byte set without a codec here: bytes >= 0x80 read
            // as U+FFFD, never as ASCII, so the scanners still see every quote and backslash right
            Err(_) => (String::from_utf8_lossy(raw), Read::Lossy),
        },
    }
}

/// A text the proxy built from the client's (decoded) text, in the client's character set.
pub fn encode<'a>(text: &'a str, charset: &str) -> Cow<'a, [u8]> {
    match codec(charset) {
        Some(enc) => {
            let (bytes, _, _) = enc.encode(text);
            bytes
        }
        None => Cow::Borrowed(text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gbk_character_ending_in_0x5c_is_not_a_backslash() {
        // 0x95 0x5C is one GBK character; read as bytes, 0x5C would escape the closing quote
        let raw = b"SELECT '\x95\x5C', 1";
        let (text, read) = decode(raw, "gbk");
        assert_eq!(read, Read::Exact);
        assert_eq!(text.chars().count(), "SELECT 'x', 1".len(), "{text}");
        assert_eq!(encode(&text, "gbk").as_ref(), raw);
        assert!(!text.contains('\\'));
    }

    #[test]
    fn round_trips_and_fallbacks() {
        let raw = b"SELECT '\xE9t\xE9'";
        let (text, read) = decode(raw, "latin1 COLLATE latin1_swedish_ci");
        assert_eq!(read, Read::Exact);
        assert_eq!(text, "SELECT 'été'");
        assert_eq!(encode(&text, "latin1").as_ref(), raw);
        assert_eq!(decode("SELECT 'é'".as_bytes(), "utf8mb4"), (Cow::Borrowed("SELECT 'é'"), Read::Exact));
        let (t, read) = decode(b"SELECT '\xFF'", "utf8mb4");
        assert!(read == Read::Lossy && t.contains('\u{FFFD}'));
        // a lead byte with a trail SJIS has no character for: MariaDB takes both bytes as one
        assert_eq!(decode(b"SELECT '\x82\x5C'", "sjis").1, Read::Unsafe);
    }
}
