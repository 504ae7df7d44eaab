//! A text result set the proxy builds itself (local answers, SHOW lists, the manager port): column
//! definitions with MySQL's types for text and integer columns, the rows, the terminators.

use bytes::BytesMut;
use tokio::io::AsyncWrite;

use super::codec::PacketWriter;
use super::packets::{self, coltype, ColType, BINARY_COLLATION, EOF_HEADER, UTF8MB4_GENERAL_CI};

/// A column of a locally built result: text (VAR_STRING) or an integer (BIGINT).
pub struct Col<'a> {
    pub name: &'a str,
    pub numeric: bool,
}

/// How the client frames results: CLIENT_DEPRECATE_EOF, MariaDB's extended metadata, and the status
/// flags its terminators carry.
#[derive(Clone, Copy)]
pub struct Framing {
    pub deprecate_eof: bool,
    pub extended_metadata: bool,
    pub status: u16,
}

/// The end of column definitions or of rows: an EOF packet, or the OK that replaces it under
/// CLIENT_DEPRECATE_EOF.
pub fn terminator<W: AsyncWrite + Unpin>(out: &mut PacketWriter<W>, deprecate_eof: bool, warnings: u16, status: u16) {
    let mut b = BytesMut::with_capacity(16);
    if deprecate_eof {
        packets::ok(&mut b, EOF_HEADER, 0, 0, status, warnings, b"");
    } else {
        packets::eof(&mut b, warnings, status);
    }
    out.push(&b);
}

/// Writes and flushes a text result set of `rows` (`None` cells are NULL) under `table`'s name.
pub async fn write<W: AsyncWrite + Unpin>(
    out: &mut PacketWriter<W>,
    f: Framing,
    table: &str,
    cols: &[Col<'_>],
    rows: &[Vec<Option<String>>],
) -> std::io::Result<()> {
    let mut b = BytesMut::with_capacity(64);
    packets::put_lenenc_int(&mut b, cols.len() as u64);
    out.push(&b);
    for c in cols {
        b.clear();
        let t = if c.numeric {
            ColType { ty: coltype::LONGLONG, charset: BINARY_COLLATION, length: 21, flags: 0x0001 | 0x0080 }
        } else {
            ColType { ty: coltype::VAR_STRING, charset: UTF8MB4_GENERAL_CI, length: 1024, flags: 0 }
        };
        packets::column_def(&mut b, table, c.name, t, f.extended_metadata);
        out.push(&b);
    }
    if !f.deprecate_eof {
        terminator(out, false, 0, f.status);
    }
    for r in rows {
        b.clear();
        let cells: Vec<Option<&[u8]>> = r.iter().map(|c| c.as_deref().map(str::as_bytes)).collect();
        packets::text_row(&mut b, &cells);
        out.push_stream(&b).await?;
    }
    terminator(out, f.deprecate_eof, 0, f.status);
    out.flush().await
}
