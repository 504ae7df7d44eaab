//! LOAD DATA LOCAL INFILE into a sharded table: the client's file cut into lines by FIELDS/LINES, each
//! line sent unchanged to the LOAD DATA of the shard its sharding field names; the shards' counts summed.

use std::sync::Arc;

use bytes::Bytes;

use super::session::Session;
use crate::config::model::{Schema, Table};
use crate::error::{Error, Result};
use crate::proto::packets::{self, LOCAL_INFILE_HEADER};

/// What a shard's file buffer may hold before it is sent.
const SEND_AT: usize = 64 * 1024;

/// The parts of a LOAD DATA statement that decide where its lines are cut and which field is which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub file: Vec<u8>,
    pub field_term: Vec<u8>,
    pub enclosed: Option<u8>,
    pub escaped: Option<u8>,
    pub line_start: Vec<u8>,
    pub line_term: Vec<u8>,
    pub ignore_lines: u64,
    /// The byte range of `IGNORE n LINES` (the proxy skips them; the shards must not).
    pub ignore_span: Option<(usize, usize)>,
    /// The column list (`@var` entries included), empty when the statement has none.
    pub columns: Vec<String>,
    /// Columns the SET clause assigns.
    pub set_columns: Vec<String>,
}

/// A token of the statement: a word, a string literal's value, a number, or one punctuation char.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(Vec<u8>),
    Punct(char),
}

/// MariaDB's escapes in a string literal.
fn unescape(raw: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' && i + 1 < raw.len() {
            i += 1;
            out.push(unescape_byte(raw[i]));
        } else if b == quote && raw.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 1;
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// The statement's tokens with their byte ranges.
fn tokens(sql: &str) -> Vec<(Tok, usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            let body = i;
            while i < b.len() {
                if b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            let end = i.min(b.len());
            out.push((Tok::Str(unescape(&b[body..end], c)), start, (end + 1).min(b.len())));
            i = end + 1;
        } else if c == b'`' {
            let start = i;
            i += 1;
            let body = i;
            while i < b.len() && b[i] != b'`' {
                i += 1;
            }
            out.push((Tok::Word(sql[body..i.min(b.len())].to_string()), start, (i + 1).min(b.len())));
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'@' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_@$.".contains(&b[i]) || b[i] >= 0x80) {
                i += 1;
            }
            out.push((Tok::Word(sql[start..i].to_string()), start, i));
        } else {
            let ch = sql[i..].chars().next().unwrap_or(' ');
            out.push((Tok::Punct(ch), i, i + ch.len_utf8()));
            i += ch.len_utf8();
        }
    }
    out
}

fn is_word(t: Option<&(Tok, usize, usize)>, w: &str) -> bool {
    matches!(t, Some((Tok::Word(x), _, _)) if x.eq_ignore_ascii_case(w))
}

/// Reads a LOAD DATA statement's options (MariaDB's defaults for those it does not give).
pub fn options(sql: &str) -> Result<LoadOptions> {
    let bad =
        |what: &str| Error::sql(1064, "42000", format!("You have an error in your SQL syntax near LOAD DATA: {what}"));
    let t = tokens(sql);
    let mut o = LoadOptions {
        file: Vec::new(),
        field_term: b"\t".to_vec(),
        enclosed: None,
        escaped: Some(b'\\'),
        line_start: Vec::new(),
        line_term: b"\n".to_vec(),
        ignore_lines: 0,
        ignore_span: None,
        columns: Vec::new(),
        set_columns: Vec::new(),
    };
    let str_at = |i: usize| match t.get(i) {
        Some((Tok::Str(s), _, _)) => Ok(s.clone()),
        _ => Err(bad("a string was expected")),
    };
    let one_byte = |s: Vec<u8>, what: &str| -> Result<Option<u8>> {
        match s.as_slice() {
            [] => Ok(None),
            [b] => Ok(Some(*b)),
            _ => Err(Error::unsupported(format!("LOAD DATA into a sharded table with a {what} of several bytes"))),
        }
    };
    let mut i = t.iter().position(|x| is_word(Some(x), "INFILE")).ok_or_else(|| bad("no INFILE"))? + 1;
    o.file = str_at(i)?;
    i = t.iter().position(|x| is_word(Some(x), "TABLE")).ok_or_else(|| bad("no INTO TABLE"))? + 2;
    while i < t.len() {
        let w = match &t[i].0 {
            Tok::Word(w) => w.to_ascii_uppercase(),
            Tok::Punct('(') => {
                // the column list
                i += 1;
                while i < t.len() && t[i].0 != Tok::Punct(')') {
                    if let Tok::Word(w) = &t[i].0 {
                        o.columns.push(w.clone());
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            Tok::Punct(';') => break,
            _ => return Err(bad("unexpected text after the table")),
        };
        match w.as_str() {
            "CHARACTER" => i += 3,
            "CHARSET" => i += 2,
            "PARTITION" => return Err(Error::unsupported("LOAD DATA … PARTITION into a sharded table")),
            "FIELDS" | "COLUMNS" | "LINES" => i += 1,
            "TERMINATED" => {
                // after FIELDS or after LINES: the nearest of the two before it
                let lines = t[..i].iter().rev().find_map(|x| match &x.0 {
                    Tok::Word(w) if w.eq_ignore_ascii_case("LINES") => Some(true),
                    Tok::Word(w) if w.eq_ignore_ascii_case("FIELDS") || w.eq_ignore_ascii_case("COLUMNS") => {
                        Some(false)
                    }
                    _ => None,
                });
                let s = str_at(i + 2)?;
                if lines == Some(true) {
                    o.line_term = s;
                } else {
                    o.field_term = s;
                }
                i += 3;
            }
            "OPTIONALLY" => i += 1,
            "ENCLOSED" => {
                o.enclosed = one_byte(str_at(i + 2)?, "ENCLOSED BY")?;
                i += 3;
            }
            "ESCAPED" => {
                o.escaped = one_byte(str_at(i + 2)?, "ESCAPED BY")?;
                i += 3;
            }
            "STARTING" => {
                o.line_start = str_at(i + 2)?;
                i += 3;
            }
            "IGNORE" => {
                let n = match t.get(i + 1) {
                    Some((Tok::Word(n), _, _)) => n.parse().map_err(|_| bad("IGNORE takes a number of lines"))?,
                    _ => return Err(bad("IGNORE takes a number of lines")),
                };
                o.ignore_lines = n;
                let end = t.get(i + 2).map_or(t[i + 1].2, |x| x.2);
                o.ignore_span = Some((t[i].1, end));
                i += 3;
            }
            "SET" => {
                // `col = expr, …`: the words right before each `=` at depth 0
                let mut depth = 0;
                for k in i + 1..t.len() {
                    match &t[k].0 {
                        Tok::Punct('(') => depth += 1,
                        Tok::Punct(')') => depth -= 1,
                        Tok::Punct('=') if depth == 0 => {
                            if let Some((Tok::Word(c), _, _)) = t.get(k - 1) {
                                o.set_columns.push(c.clone());
                            }
                        }
                        _ => {}
                    }
                }
                break;
            }
            _ => return Err(bad(&format!("unexpected {w}"))),
        }
    }
    if o.field_term.is_empty() || o.line_term.is_empty() {
        return Err(Error::unsupported("LOAD DATA into a sharded table with an empty FIELDS or LINES TERMINATED BY"));
    }
    Ok(o)
}

/// One line of the file: where it ends (terminator included) and the value of field `key` (`None`
/// for NULL, `\N`), or `Ok(None)` when the buffer does not hold the whole line yet (`eof`: the rest
/// is the last line).
pub fn next_line(o: &LoadOptions, buf: &[u8], key: usize, eof: bool) -> Option<(usize, Option<Vec<u8>>)> {
    if buf.is_empty() {
        return None;
    }
    let starts = |at: usize, pat: &[u8]| buf.get(at..at + pat.len()) == Some(pat);
    let mut pos = 0;
    if !o.line_start.is_empty() {
        // MariaDB skips up to the prefix; a line without it is skipped whole (any shard will do)
        let mut p = 0;
        while p < buf.len() && !starts(p, &o.line_start) && !starts(p, &o.line_term) {
            p += 1;
        }
        if starts(p, &o.line_start) {
            pos = p + o.line_start.len();
        }
    }
    let mut field = 0;
    let mut value: Option<Vec<u8>> = None;
    loop {
        // one field from `pos`
        let mut v = Vec::new();
        let mut null = false;
        let quoted = o.enclosed.is_some_and(|q| buf.get(pos) == Some(&q));
        if quoted {
            let q = o.enclosed.unwrap_or(b'"');
            pos += 1;
            loop {
                let Some(&b) = buf.get(pos) else { return eof.then(|| (buf.len(), value.clone())) };
                if Some(b) == o.escaped && pos + 1 < buf.len() {
                    v.push(unescape_byte(buf[pos + 1]));
                    pos += 2;
                } else if b == q {
                    if buf.get(pos + 1) == Some(&q) {
                        v.push(q);
                        pos += 2;
                    } else if pos + 1 == buf.len() && !eof {
                        return None; // the next byte says whether the quote ends the field
                    } else {
                        pos += 1;
                        if pos == buf.len() || starts(pos, &o.field_term) || starts(pos, &o.line_term) {
                            break;
                        }
                        v.push(q); // a quote inside the field
                    }
                } else {
                    v.push(b);
                    pos += 1;
                }
            }
        } else {
            loop {
                if pos >= buf.len() {
                    if !eof {
                        return None;
                    }
                    break;
                }
                if starts(pos, &o.field_term) || starts(pos, &o.line_term) {
                    break;
                }
                let b = buf[pos];
                if Some(b) == o.escaped {
                    let Some(&n) = buf.get(pos + 1) else {
                        if !eof {
                            return None;
                        }
                        v.push(b);
                        pos += 1;
                        continue;
                    };
                    if n == b'N' && v.is_empty() {
                        null = true;
                    }
                    v.push(unescape_byte(n));
                    pos += 2;
                } else {
                    v.push(b);
                    pos += 1;
                }
            }
            if o.enclosed.is_some() && v == b"NULL" {
                null = true;
            }
        }
        if field == key {
            value = (!null).then_some(v);
        }
        field += 1;
        if pos >= buf.len() {
            return eof.then_some((buf.len(), value));
        }
        if starts(pos, &o.line_term) {
            return Some((pos + o.line_term.len(), value));
        }
        if starts(pos, &o.field_term) {
            pos += o.field_term.len();
            continue;
        }
        // bytes after a closing quote before the terminator: part of the line, keep scanning
        if !eof && pos + o.line_term.len().max(o.field_term.len()) > buf.len() {
            return None;
        }
        pos += 1;
    }
}

fn unescape_byte(b: u8) -> u8 {
    match b {
        b'0' => 0,
        b'b' => 8,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'Z' => 26,
        other => other,
    }
}

/// "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0": the four counts.
fn counts(info: &[u8]) -> [u64; 4] {
    let text = String::from_utf8_lossy(info);
    let mut out = [0u64; 4];
    for (i, key) in ["Records:", "Deleted:", "Skipped:", "Warnings:"].iter().enumerate() {
        if let Some(at) = text.find(key) {
            out[i] = text[at + key.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    out
}

/// A shard's LOAD DATA under way: its connection index, the file packets' next sequence id, what
/// waits to be sent.
struct Shard {
    started: bool,
    seq: u8,
    buf: Vec<u8>,
}

impl Session {
    /// LOAD DATA LOCAL into sharded table `t` of `schema`.
    pub async fn load_sharded(&mut self, sql: &str, schema: &Schema, t: &Table) -> Result<()> {
        let o = options(sql)?;
        let cfg = self.rt.config.clone();
        let rules = self.rt.rules.clone();
        let (user, backends) = (self.user.clone(), self.rt.backends.clone());
        let ctx = crate::route::Ctx {
            cfg: &cfg,
            rules: &rules,
            user: &user,
            backends: &backends,
            parents: None,
            learned: None,
        };
        let placer = crate::route::insert::value_placer(&ctx, schema, t).ok_or_else(|| {
            Error::unsupported(format!(
                "LOAD DATA into '{}': an ER child placed by its parent rows cannot be loaded across shards yet",
                t.name
            ))
        })?;
        let column = placer.column().to_string();
        if o.set_columns.iter().any(|c| c.eq_ignore_ascii_case(&column)) {
            return Err(Error::unsupported(format!(
                "LOAD DATA into '{}' with SET assigning its sharding column {column}: the proxy routes by the file's field",
                t.name
            )));
        }
        let nodes: Vec<Arc<str>> = t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect();
        let mut conns = self.acquire(&nodes).await?;
        // which field of a line is the sharding column: by the column list, else the table's order
        let key = if o.columns.is_empty() {
            let rows = conns[0].query_rows(&format!("SHOW COLUMNS FROM `{}`", t.name.replace('`', "``"))).await;
            rows.ok().and_then(|rows| {
                rows.iter().position(|r| {
                    r.first()
                        .cloned()
                        .flatten()
                        .is_some_and(|c| String::from_utf8_lossy(&c).eq_ignore_ascii_case(&column))
                })
            })
        } else {
            o.columns.iter().position(|c| c.eq_ignore_ascii_case(&column))
        };
        let Some(key) = key else {
            self.release(nodes, conns, &Ok(())).await;
            return Err(Error::unsupported(format!(
                "LOAD DATA into '{}' without its sharding column {column} among the file's fields",
                t.name
            )));
        };
        let res = self.load_lines(sql, &o, key, &placer, t, &mut conns).await;
        // a shard left mid-file (the client went away) is not clean: its connection is dropped
        let ok: Result<()> = match &res {
            Ok(_) => Ok(()),
            Err(Error::Client(io)) => Err(Error::Client(std::io::Error::new(io.kind(), io.to_string()))),
            Err(_) => Ok(()),
        };
        self.release(nodes, conns, &ok).await;
        let (affected, info, warnings) = res?;
        let mut b = bytes::BytesMut::new();
        packets::ok(&mut b, packets::OK_HEADER, affected, 0, self.status(), warnings, info.as_bytes());
        self.out.push(&b);
        self.out.flush().await?;
        let reply = crate::exec::Reply { affected_rows: affected, warnings, ..Default::default() };
        self.after_reply(crate::sql::classify::Kind::LoadData, &reply, sql);
        Ok(())
    }

    /// The file exchange: the client's file read, cut, sent to the shards; their LOAD DATAs ended and
    /// their counts added: (affected rows, info, warnings).
    async fn load_lines(
        &mut self,
        sql: &str,
        o: &LoadOptions,
        key: usize,
        placer: &crate::route::insert::ValuePlacer<'_>,
        t: &Table,
        conns: &mut [crate::backend::Pooled],
    ) -> Result<(u64, String, u16)> {
        let table = t.name.as_str();
        let nodes: Vec<Arc<str>> = t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect();
        let nodes = nodes.as_slice();
        // the shards' statement: the lines to skip are skipped here
        let shard_sql = match o.ignore_span {
            Some((a, z)) => format!("{}{}", &sql[..a], &sql[z..]),
            None => sql.to_string(),
        };
        let payload = packets::com_query(&self.client_text(&shard_sql));
        let in_tx = self.tx_active();
        // outside the session's transaction the shards' parts are one of their own (by XA when on)
        let gtrid = (!in_tx && self.xa).then(|| self.shared.xa.next_gtrid());
        let begin = Begin { in_tx, gtrid: gtrid.as_ref() };
        // ask the client for its file
        let mut req = bytes::BytesMut::new();
        bytes::BufMut::put_u8(&mut req, LOCAL_INFILE_HEADER);
        req.extend_from_slice(&o.file);
        self.out.push(&req);
        self.out.flush().await?;
        let mut shards: Vec<Shard> =
            (0..conns.len()).map(|_| Shard { started: false, seq: 2, buf: Vec::new() }).collect();
        let mut pending: Vec<u8> = Vec::new();
        let mut line_no: u64 = 0;
        let mut failure: Option<Error> = None;
        let line_limit = self.rt.config.system.merge_memory_limit;
        loop {
            let (cseq, data) = match self.reader.next().await {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => {
                    return Err(Error::Client(std::io::Error::other("client left during LOAD DATA LOCAL")));
                }
            };
            let eof = data.is_empty();
            if eof {
                self.out.set_seq(cseq.wrapping_add(1));
                if let Some(cs) = self.reader.comp_seq() {
                    self.out.set_comp_seq(cs.wrapping_add(1));
                }
            }
            if failure.is_some() {
                if eof {
                    break;
                }
                continue; // read the rest of the file, then answer with the error
            }
            pending.extend_from_slice(&data);
            let mut at = 0;
            while let Some((len, value)) = next_line(o, &pending[at..], key, eof) {
                let line = &pending[at..at + len];
                at += len;
                line_no += 1;
                if line_no <= o.ignore_lines {
                    continue;
                }
                let v = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                let i = match placer.place(v.as_deref(), (line_no - 1) as usize) {
                    Ok(i) if i < shards.len() => i,
                    Ok(_) => {
                        failure = Some(Error::unsupported(format!("a row of {table} maps outside its dataNodes")));
                        break;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                shards[i].buf.extend_from_slice(line);
                if shards[i].buf.len() >= SEND_AT {
                    if let Err(e) = send_part(&mut conns[i], &mut shards[i], &payload, &begin, &nodes[i]).await {
                        failure = Some(e);
                        break;
                    }
                }
            }
            pending.drain(..at);
            // one line is held until its end arrives: a file whose line never ends must not fill memory
            if failure.is_none() && pending.len() > line_limit {
                failure = Some(Error::MemoryLimit {
                    what: format!("a line of the LOAD DATA file for {table}"),
                    limit: line_limit,
                });
            }
            if eof {
                break;
            }
        }
        if let Some(e) = failure {
            // the shards' files end where they are; their parts are rolled back
            for (c, s) in conns.iter_mut().zip(shards.iter_mut()) {
                if s.started {
                    let _ = finish_file(c, s).await;
                }
            }
            let _ = end_all(&self.shared.xa, &begin, nodes, conns, &shards, false).await;
            return Err(e);
        }
        // the rest to each shard that has rows, then the end of its file and its answer
        let mut totals = [0u64; 4];
        let mut affected = 0u64;
        let mut warnings = 0u16;
        let mut err = None;
        for ((c, s), node) in conns.iter_mut().zip(shards.iter_mut()).zip(nodes) {
            if s.buf.is_empty() && !s.started {
                continue;
            }
            let r = async {
                send_part(c, s, &payload, &begin, node).await?;
                finish_file(c, s).await
            }
            .await;
            match r {
                Ok((a, w, n)) => {
                    affected += a;
                    warnings = warnings.saturating_add(w);
                    for k in 0..4 {
                        totals[k] += n[k];
                    }
                }
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        }
        let applied = err.is_none();
        let ended = end_all(&self.shared.xa, &begin, nodes, conns, &shards, applied).await;
        if let Some(e) = err {
            return Err(e);
        }
        // the client must not see the OK of rows not committed on every shard
        ended?;
        let info =
            format!("Records: {}  Deleted: {}  Skipped: {}  Warnings: {}", totals[0], totals[1], totals[2], totals[3]);
        Ok((affected, info, warnings))
    }
}

/// Ends a shard's file (an empty packet) and reads its answer: (affected rows, warnings, the info's
/// counts).
async fn finish_file(c: &mut crate::backend::Pooled, s: &mut Shard) -> Result<(u64, u16, [u64; 4])> {
    c.queue_seq(&[], s.seq);
    c.flush().await?;
    let p = c.read().await?;
    if p.first() == Some(&packets::ERR_HEADER) {
        let st = c.status;
        c.finish(st);
        let e = packets::parse_err(&p);
        return Err(Error::Sql { code: e.code, state: crate::error::static_state(&e.state), message: e.message });
    }
    let ok = packets::parse_ok(&p).ok_or_else(|| c.malformed("bad OK after LOAD DATA"))?;
    c.finish(ok.status);
    let mut pos = 1;
    let _ = packets::read_lenenc_int(&p, &mut pos);
    let _ = packets::read_lenenc_int(&p, &mut pos);
    let info = p.get(pos + 4..).map(packets_info).unwrap_or_default();
    Ok((ok.affected_rows, ok.warnings, counts(&info)))
}

/// An OK packet's info text after its status and warnings (a length-encoded string, or the rest).
fn packets_info(rest: &[u8]) -> Vec<u8> {
    let mut pos = 0;
    match packets::read_lenenc_int(rest, &mut pos) {
        Some(n) if pos + n as usize <= rest.len() => rest[pos..pos + n as usize].to_vec(),
        _ => rest.to_vec(),
    }
}

/// How a shard's part begins: after a savepoint in the session's transaction, or in a transaction of
/// its own (XA START of its branch when `gtrid`).
struct Begin<'a> {
    in_tx: bool,
    gtrid: Option<&'a Arc<str>>,
}

/// Sends a shard's buffered lines, starting its LOAD DATA first (see `Begin`).
async fn send_part(
    c: &mut crate::backend::Pooled,
    s: &mut Shard,
    payload: &Bytes,
    begin: &Begin<'_>,
    node: &Arc<str>,
) -> Result<()> {
    if !s.started {
        if begin.in_tx {
            c.queue_ahead("SAVEPOINT __shardcat_load");
        } else {
            super::txn::begin_each(begin.gtrid, std::slice::from_ref(node), std::iter::once(&mut *c));
        }
        c.send(payload).await?;
        let first = c.read().await?;
        if first.first() == Some(&packets::ERR_HEADER) {
            let e = packets::parse_err(&first);
            let st = c.status;
            c.finish(st);
            return Err(Error::Sql { code: e.code, state: crate::error::static_state(&e.state), message: e.message });
        }
        if first.first() != Some(&LOCAL_INFILE_HEADER) {
            return Err(c.malformed("LOAD DATA LOCAL did not ask for the file"));
        }
        s.started = true;
    }
    if !s.buf.is_empty() {
        c.queue_seq(&s.buf, s.seq);
        s.seq = s.seq.wrapping_add(1);
        s.buf.clear();
        c.flush_if_large().await?;
    }
    Ok(())
}

/// Ends every started shard's part: in the session's transaction RELEASE SAVEPOINT when all applied,
/// ROLLBACK TO SAVEPOINT otherwise; else their own transaction ends (`txn::end_branches`: COMMIT,
/// two-phase by XA when on, or ROLLBACK), and a commit that failed is the statement's error.
async fn end_all(
    xa: &crate::xa::Coordinator,
    begin: &Begin<'_>,
    nodes: &[Arc<str>],
    conns: &mut [crate::backend::Pooled],
    shards: &[Shard],
    applied: bool,
) -> Result<()> {
    let started: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].started).collect();
    let conns: Vec<&mut crate::backend::Pooled> =
        conns.iter_mut().enumerate().filter(|(i, _)| started.contains(i)).map(|(_, c)| c).collect();
    if begin.in_tx {
        let verb = if applied { "RELEASE SAVEPOINT __shardcat_load" } else { "ROLLBACK TO SAVEPOINT __shardcat_load" };
        let _ = super::txn::on_every(conns.into_iter(), verb).await;
        return Ok(());
    }
    let nodes: Vec<Arc<str>> = started.iter().filter_map(|&i| nodes.get(i).cloned()).collect();
    super::txn::end_branches(xa, begin.gtrid.map(|g| &**g), &nodes, conns, applied).await.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_options() {
        let o = options(
            "LOAD DATA LOCAL INFILE '/tmp/a.csv' IGNORE INTO TABLE t CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES STARTING BY 'x' TERMINATED BY '\\r\\n' IGNORE 1 LINES (id, @v, name) SET v = UPPER(@v)",
        )
        .unwrap();
        assert_eq!(o.file, b"/tmp/a.csv");
        assert_eq!((o.field_term.as_slice(), o.enclosed, o.escaped), (&b","[..], Some(b'"'), Some(b'\\')));
        assert_eq!((o.line_start.as_slice(), o.line_term.as_slice()), (&b"x"[..], &b"\r\n"[..]));
        assert_eq!(o.ignore_lines, 1);
        assert_eq!(o.columns, ["id", "@v", "name"]);
        assert_eq!(o.set_columns, ["v"]);
        let d = options("LOAD DATA LOCAL INFILE 'f' INTO TABLE t").unwrap();
        assert_eq!((d.field_term.as_slice(), d.line_term.as_slice(), d.enclosed), (&b"\t"[..], &b"\n"[..], None));
    }

    #[test]
    fn any_bytes_and_any_statement_are_read_without_a_panic() {
        let o = options("LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ';;' ENCLOSED BY '\"' LINES TERMINATED BY '\r\n'")
            .unwrap();
        let alphabet = b";\"\\\r\nNa1";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let mut at = 0;
            while let Some((n, _)) = next_line(&o, &buf[at..], 1, true) {
                assert!(n > 0 && at + n <= buf.len());
                at += n;
            }
            let _ = next_line(&o, &buf, 0, false);
            let text = String::from_utf8_lossy(&buf);
            let _ = options(&format!("LOAD DATA LOCAL INFILE {text} INTO TABLE t {text}"));
        }
    }

    #[test]
    fn cuts_lines_where_the_server_would() {
        let o = options("LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ',' ENCLOSED BY '\"'").unwrap();
        let buf = b"1,\"a,\nb\",x\n\"2\",\"q\"\"\"\n\\N,z\n3,tail";
        let (n, v) = next_line(&o, buf, 0, false).unwrap();
        assert_eq!((&buf[..n], v.as_deref()), (&b"1,\"a,\nb\",x\n"[..], Some(&b"1"[..])));
        let (n2, v) = next_line(&o, &buf[n..], 1, false).unwrap();
        assert_eq!(v.as_deref(), Some(&b"q\""[..]));
        let (n3, v) = next_line(&o, &buf[n + n2..], 0, false).unwrap();
        assert_eq!(v, None, "\\N is NULL");
        let rest = &buf[n + n2 + n3..];
        assert_eq!(next_line(&o, rest, 0, false), None, "no terminator yet");
        assert_eq!(next_line(&o, rest, 0, true), Some((rest.len(), Some(b"3".to_vec()))));
        assert_eq!(counts(b"Records: 3  Deleted: 1  Skipped: 2  Warnings: 4"), [3, 1, 2, 4]);
    }
}
