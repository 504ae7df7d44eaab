//! Building and reading the generic packets: OK, EOF, ERR, column definitions, text rows, length-encoded
//! values. mysql_common has no OK serializer and decoding OKs there allocates; these are the hot-path ones.

use bytes::{BufMut, BytesMut};

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

pub fn put_lenenc_int(buf: &mut BytesMut, v: u64) {
    match v {
        0..=250 => buf.put_u8(v as u8),
        251..=0xFFFF => {
            buf.put_u8(0xFC);
            buf.put_u16_le(v as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            buf.put_u8(0xFD);
            buf.put_uint_le(v, 3);
        }
        _ => {
            buf.put_u8(0xFE);
            buf.put_u64_le(v);
        }
    }
}

pub fn put_lenenc_str(buf: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// Reads a length-encoded integer at `*pos`, advancing it. `None` when the buffer is too short.
pub fn read_lenenc_int(p: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *p.get(*pos)?;
    let (len, v) = match first {
        0xFC => (3, u64::from(u16::from_le_bytes([*p.get(*pos + 1)?, *p.get(*pos + 2)?]))),
        0xFD => {
            let b = p.get(*pos + 1..*pos + 4)?;
            (4, u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
        }
        0xFE => {
            let b: [u8; 8] = p.get(*pos + 1..*pos + 9)?.try_into().ok()?;
            (9, u64::from_le_bytes(b))
        }
        0xFB | 0xFF => return None,
        v => (1, u64::from(v)),
    };
    *pos += len;
    Some(v)
}

/// Reads a length-encoded string at `*pos`; `Ok(None)` for SQL NULL (0xFB).
pub fn read_lenenc_str<'a>(p: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    if p.get(*pos) == Some(&0xFB) {
        *pos += 1;
        return Some(None);
    }
    let len = read_lenenc_int(p, pos)? as usize;
    let s = p.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(Some(s))
}

/// The fields of an OK packet (header 0x00, or 0xFE when it ends a result set for DEPRECATE_EOF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// OK packet `p` with `id` as its last insert id (the rest as it was).
pub fn with_insert_id(p: &[u8], id: u64) -> bytes::Bytes {
    let mut pos = 1;
    let (Some(affected), Some(_)) = (read_lenenc_int(p, &mut pos).map(|a| (a, pos)), read_lenenc_int(p, &mut pos))
    else {
        return bytes::Bytes::copy_from_slice(p);
    };
    let mut b = BytesMut::with_capacity(p.len() + 8);
    b.put_u8(OK_HEADER);
    put_lenenc_int(&mut b, affected.0);
    put_lenenc_int(&mut b, id);
    b.extend_from_slice(&p[pos..]);
    b.freeze()
}

pub fn parse_ok(p: &[u8]) -> Option<OkInfo> {
    let mut pos = 1;
    let affected_rows = read_lenenc_int(p, &mut pos)?;
    let last_insert_id = read_lenenc_int(p, &mut pos)?;
    let status = u16::from_le_bytes([*p.get(pos)?, *p.get(pos + 1)?]);
    let warnings = u16::from_le_bytes([*p.get(pos + 2)?, *p.get(pos + 3)?]);
    Some(OkInfo { affected_rows, last_insert_id, status, warnings })
}

/// The system variables an OK packet reports as changed (session tracking, type 0 entries), when
/// its status has SERVER_SESSION_STATE_CHANGED and the connection negotiated CLIENT_SESSION_TRACK.
pub fn tracked_variables(p: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pos = 1;
    if read_lenenc_int(p, &mut pos).is_none() || read_lenenc_int(p, &mut pos).is_none() {
        return out;
    }
    let Some(status) = p.get(pos..pos + 2).map(|b| u16::from_le_bytes([b[0], b[1]])) else { return out };
    if status & 0x4000 == 0 {
        return out;
    }
    pos += 4;
    if !matches!(read_lenenc_str(p, &mut pos), Some(Some(_))) {
        return out;
    }
    let Some(Some(block)) = read_lenenc_str(p, &mut pos) else { return out };
    let mut at = 0;
    while at < block.len() {
        let kind = block[at];
        at += 1;
        let Some(Some(data)) = read_lenenc_str(block, &mut at) else { break };
        if kind == 0 {
            let mut d = 0;
            if let (Some(Some(name)), Some(Some(value))) =
                (read_lenenc_str(data, &mut d), read_lenenc_str(data, &mut d))
            {
                out.push((String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(value).into_owned()));
            }
        }
    }
    out
}

/// The info text of an OK packet (e.g. "Rows matched: 1  Changed: 1  Warnings: 0").
pub fn ok_info_text(p: &[u8]) -> &[u8] {
    let mut pos = 1;
    if read_lenenc_int(p, &mut pos).is_none() || read_lenenc_int(p, &mut pos).is_none() {
        return &[];
    }
    pos += 4;
    match p.get(pos..) {
        Some(rest) if !rest.is_empty() => {
            let mut q = 0;
            match read_lenenc_str(rest, &mut q) {
                Some(Some(s)) => s,
                _ => &[],
            }
        }
        _ => &[],
    }
}

#[cfg(test)]
mod tracking_tests {
    #[test]
    fn reads_tracked_system_variables() {
        // what MariaDB 10.11 sends for SET NAMES latin1 (seen on the wire)
        let mut p = vec![0x00, 0, 0, 0x02, 0x40, 0, 0, 0x00];
        let block: &[u8] =
            b"\x00\x1c\x14character_set_client\x06latin1\x00\x1d\x15character_set_results\x06latin1\x02\x011";
        p.push(block.len() as u8);
        p.extend_from_slice(block);
        assert_eq!(
            super::tracked_variables(&p),
            vec![
                ("character_set_client".to_string(), "latin1".to_string()),
                ("character_set_results".to_string(), "latin1".to_string())
            ]
        );
        assert!(super::tracked_variables(&[0x00, 0, 0, 0x02, 0, 0, 0]).is_empty());
        assert!(super::tracked_variables(&[0x00, 0, 0, 0x02, 0x40, 0, 0, 0x00, 9, 0]).is_empty(), "truncated");
    }
}

/// (warnings, status) of a classic EOF packet.
pub fn parse_eof(p: &[u8]) -> Option<(u16, u16)> {
    let w = u16::from_le_bytes([*p.get(1)?, *p.get(2)?]);
    let s = u16::from_le_bytes([*p.get(3)?, *p.get(4)?]);
    Some((w, s))
}

/// Is this packet the end of a row stream (EOF, or an OK with 0xFE header under DEPRECATE_EOF)?
/// A row starting with 0xFE carries an 8-byte length prefix, so it is at least 16 MiB long.
pub fn is_eof_packet(p: &[u8]) -> bool {
    p.first() == Some(&EOF_HEADER) && p.len() < 0xFF_FFFF
}

pub fn ok(buf: &mut BytesMut, header: u8, affected: u64, last_id: u64, status: u16, warnings: u16, info: &[u8]) {
    buf.put_u8(header);
    put_lenenc_int(buf, affected);
    put_lenenc_int(buf, last_id);
    buf.put_u16_le(status);
    buf.put_u16_le(warnings);
    if !info.is_empty() {
        put_lenenc_str(buf, info);
    }
}

/// An OK carrying session-tracking entries (`state`, CLIENT_SESSION_TRACK's format): the info text
/// always present, SERVER_SESSION_STATE_CHANGED set.
pub fn ok_tracked(buf: &mut BytesMut, affected: u64, last_id: u64, status: u16, info: &[u8], state: &[u8]) {
    buf.put_u8(OK_HEADER);
    put_lenenc_int(buf, affected);
    put_lenenc_int(buf, last_id);
    buf.put_u16_le(status | 0x4000);
    buf.put_u16_le(0);
    put_lenenc_str(buf, info);
    put_lenenc_str(buf, state);
}

pub fn eof(buf: &mut BytesMut, warnings: u16, status: u16) {
    buf.put_u8(EOF_HEADER);
    buf.put_u16_le(warnings);
    buf.put_u16_le(status);
}

/// A COM_QUERY command packet carrying `sql` (body bytes as given).
pub fn com_query(sql: &[u8]) -> bytes::Bytes {
    let mut p = BytesMut::with_capacity(sql.len() + 1);
    p.put_u8(0x03);
    p.extend_from_slice(sql);
    p.freeze()
}

pub fn err(buf: &mut BytesMut, code: u16, state: &str, msg: &str) {
    buf.put_u8(ERR_HEADER);
    buf.put_u16_le(code);
    buf.put_u8(b'#');
    let st = state.as_bytes();
    for i in 0..5 {
        buf.put_u8(*st.get(i).unwrap_or(&b'0'));
    }
    buf.extend_from_slice(msg.as_bytes());
}

/// A parsed ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub code: u16,
    pub state: String,
    pub message: String,
}

pub fn parse_err(p: &[u8]) -> ErrInfo {
    let code = match p.get(1..3) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => 0,
    };
    let (state, msg) = match p.get(3) {
        Some(b'#') if p.len() >= 9 => (String::from_utf8_lossy(&p[4..9]).into_owned(), &p[9..]),
        _ => ("HY000".to_string(), p.get(3..).unwrap_or(&[])),
    };
    ErrInfo { code, state, message: String::from_utf8_lossy(msg).into_owned() }
}

/// Column type codes used by locally built result sets.
pub mod coltype {
    pub const LONGLONG: u8 = 0x08;
    pub const VAR_STRING: u8 = 0xFD;
}

/// Collation id used for text columns of locally built result sets (utf8mb4_general_ci).
pub const UTF8MB4_GENERAL_CI: u16 = 45;
pub const BINARY_COLLATION: u16 = 63;

/// What a column definition looks like: its type, character set, length and flags.
#[derive(Debug, Clone, Copy)]
pub struct ColType {
    pub ty: u8,
    pub charset: u16,
    pub length: u32,
    pub flags: u16,
}

/// A column definition (Protocol::ColumnDefinition41) for a result set built by the proxy;
/// `extended`: the client negotiated MariaDB's extended metadata (an empty block of it is sent).
pub fn column_def(buf: &mut BytesMut, table: &str, name: &str, t: ColType, extended: bool) {
    let ColType { ty, charset, length, flags } = t;
    put_lenenc_str(buf, b"def");
    put_lenenc_str(buf, b"");
    put_lenenc_str(buf, table.as_bytes());
    put_lenenc_str(buf, table.as_bytes());
    put_lenenc_str(buf, name.as_bytes());
    put_lenenc_str(buf, name.as_bytes());
    if extended {
        put_lenenc_str(buf, b"");
    }
    buf.put_u8(0x0C);
    buf.put_u16_le(charset);
    buf.put_u32_le(length);
    buf.put_u8(ty);
    buf.put_u16_le(flags);
    buf.put_u8(0);
    buf.put_u16_le(0);
}

/// A text-protocol row; `None` cells are NULL.
pub fn text_row(buf: &mut BytesMut, cells: &[Option<&[u8]>]) {
    for c in cells {
        match c {
            Some(v) => put_lenenc_str(buf, v),
            None => buf.put_u8(0xFB),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_round_trip_with_big_numbers() {
        let mut b = BytesMut::new();
        ok(&mut b, OK_HEADER, 70_000, u64::MAX, 0x0003, 2, b"Rows matched: 1");
        let info = parse_ok(&b).unwrap();
        assert_eq!(info, OkInfo { affected_rows: 70_000, last_insert_id: u64::MAX, status: 3, warnings: 2 });
        assert_eq!(ok_info_text(&b), b"Rows matched: 1");
    }

    #[test]
    fn truncated_packets_parse_to_none() {
        assert_eq!(parse_ok(&[0x00, 0xFC]), None);
        assert_eq!(parse_eof(&[0xFE, 1]), None);
        let mut pos = 0;
        assert_eq!(read_lenenc_str(&[0x05, b'a'], &mut pos), None);
        assert_eq!(parse_err(&[0xFF]).code, 0);
    }

    #[test]
    fn eof_detection_does_not_mistake_big_rows() {
        let mut b = BytesMut::new();
        eof(&mut b, 0, 2);
        assert!(is_eof_packet(&b));
        let mut ok7 = BytesMut::new();
        ok(&mut ok7, EOF_HEADER, 0, 0, 2, 0, b"");
        assert!(is_eof_packet(&ok7));
        let mut row = vec![0xFEu8];
        row.extend_from_slice(&(20_000_000u64).to_le_bytes());
        row.resize(20_000_009, b'x');
        assert!(!is_eof_packet(&row));
    }

    #[test]
    fn err_packet_round_trip() {
        let mut b = BytesMut::new();
        err(&mut b, 1146, "42S02", "Table 'db.t' doesn't exist");
        assert_eq!(
            parse_err(&b),
            ErrInfo { code: 1146, state: "42S02".into(), message: "Table 'db.t' doesn't exist".into() }
        );
    }
}
