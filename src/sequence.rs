//! Mycat's global sequences, beside the trip: `next value for MYCATSEQ_<NAME>` in a statement's text
//! becomes the next id of server.xml `sequenceHandlerType` 0 (the conf dir's `sequence_conf.properties`),
//! 1 (a `MYCAT_SEQUENCE` table on the dataNode `sequence_db_conf.properties` names) or 2 (snowflake).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// How many ids of a type-0 sequence are reserved (written to the file) at a time: a restart, even
/// after `kill -9`, continues after the reserved ones and never hands one out twice.
const FILE_BLOCK: u64 = 1000;

/// Twitter's epoch, Mycat's type 2 counts milliseconds from.
const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;

/// One `next value for MYCATSEQ_<NAME>` in a text: its byte range and NAME (upper-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextValue {
    pub span: (usize, usize),
    pub name: String,
}

/// Every `next value for MYCATSEQ_<NAME>` of `sql` outside quotes, in text order.
pub fn find(sql: &str) -> Vec<NextValue> {
    let mut out = Vec::new();
    let upper = sql.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut quotes = crate::sql::analyze::Quotes::default();
    let mut outside = vec![false; sql.len()];
    for (i, c) in sql.char_indices() {
        outside[i] = quotes.outside(c);
    }
    let word_end = |mut i: usize| {
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        i
    };
    let blanks = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while let Some(off) = upper[i..].find("NEXT") {
        let start = i + off;
        i = start + 4;
        // a word char before it (letters beyond ASCII included) makes it part of another word
        let word_before = start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] >= 0x80);
        if !outside[start] || word_before {
            continue;
        }
        let mut p = blanks(start + 4);
        if p == start + 4 || !upper[p..].starts_with("VALUE") {
            continue;
        }
        let q = blanks(p + 5);
        if q == p + 5 || !upper[q..].starts_with("FOR") {
            continue;
        }
        p = blanks(q + 3);
        if p == q + 3 || !upper[p..].starts_with("MYCATSEQ_") {
            continue;
        }
        let end = word_end(p + 9);
        if end == p + 9 {
            continue;
        }
        out.push(NextValue { span: (start, end), name: upper[p + 9..end].to_string() });
        i = end;
    }
    out
}

/// A type-0 sequence: ids MINID..=MAXID of the current segment, CURID the last one handed out,
/// HISIDS the segments used up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileSeq {
    min: u64,
    max: u64,
    cur: u64,
    /// Handed out up to here without writing the file again (the file says CURID = reserved).
    reserved: u64,
    hisids: String,
}

/// The type-0 file: its lines (kept as they are when it is written again) and its sequences.
type SeqFile = (Vec<String>, HashMap<String, FileSeq>);

#[derive(Default)]
struct Snow {
    last_ms: u64,
    seq: u64,
}

pub struct Sequences {
    dir: PathBuf,
    handler: u8,
    /// Type 0: the file's sequences (the other lines kept as they are), loaded at first use.
    file: tokio::sync::Mutex<Option<SeqFile>>,
    /// Type 1: the block of ids fetched per name, [next, end).
    blocks: tokio::sync::Mutex<HashMap<String, (u64, u64)>>,
    /// Type 2: the last millisecond and its count; WORKID and DATAACENTERID, read once.
    snow: parking_lot::Mutex<Snow>,
    time_ids: tokio::sync::OnceCell<(u64, u64)>,
}

/// Where a type-1 sequence lives (sequence_db_conf.properties: NAME=dataNode), and how to ask it.
pub trait SequenceDb {
    /// `SELECT mycat_seq_nextval('NAME')` on `data_node`: the reply's one cell.
    fn next_block(
        &self,
        data_node: &str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>>> + Send;
}

fn seq_error(msg: impl Into<String>) -> Error {
    Error::sql(1105, "HY000", msg)
}

impl SequenceDb for crate::backend::Backends {
    async fn next_block(&self, data_node: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let t = self.node(data_node)?;
        // a connection of its own: the sequence's row lock is never held by a client's transaction
        let mut c = t.host.writer().pool.get(Default::default()).await?;
        let db = t.database.replace('`', "``");
        let rows = c.query_rows(&format!("SELECT `{db}`.mycat_seq_nextval('{}')", name.replace('\'', "''"))).await?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).flatten())
    }
}

/// `key=value` lines (Java properties: `#`/`!` comments, `=` or `:`).
fn properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

impl Sequences {
    pub fn new(dir: PathBuf, handler: u8) -> Sequences {
        Sequences {
            dir,
            handler,
            file: tokio::sync::Mutex::new(None),
            blocks: tokio::sync::Mutex::new(HashMap::new()),
            snow: parking_lot::Mutex::new(Snow::default()),
            time_ids: tokio::sync::OnceCell::new(),
        }
    }

    /// The next id of sequence `name` (upper-case).
    pub async fn next(&self, name: &str, db: &impl SequenceDb) -> Result<u64> {
        match self.handler {
            0 => self.next_file(name).await,
            1 => self.next_db(name, db).await,
            2 => self.next_time().await,
            n => Err(seq_error(format!("sequenceHandlerType {n} is not supported by shardcat (0, 1 and 2 are)"))),
        }
    }

    async fn next_file(&self, name: &str) -> Result<u64> {
        let path = self.dir.join("sequence_conf.properties");
        let mut guard = self.file.lock().await;
        if guard.is_none() {
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| seq_error(format!("sequence_conf.properties ({}) cannot be read: {e}", path.display())))?;
            *guard = Some(parse_file(&text));
        }
        let Some((lines, seqs)) = guard.as_mut() else { return Err(seq_error("sequence_conf.properties not loaded")) };
        let s = seqs.get_mut(name).ok_or_else(|| {
            seq_error(format!(
                "sequence MYCATSEQ_{name} is not defined in sequence_conf.properties ({name}.MINID, .MAXID, .CURID)"
            ))
        })?;
        let mut next = s.cur + 1;
        if next > s.max {
            // a new segment as long as the last, after it
            let len = s.max - s.min + 1;
            if !s.hisids.is_empty() {
                s.hisids.push(',');
            }
            s.hisids.push_str(&format!("{}-{}", s.min, s.max));
            s.min = s.max + 1;
            s.max =
                s.max.checked_add(len).ok_or_else(|| seq_error(format!("sequence MYCATSEQ_{name} is exhausted")))?;
            next = s.min;
            s.reserved = s.min - 1;
        }
        if next > s.reserved {
            let before = s.clone();
            s.reserved = (next + FILE_BLOCK - 1).min(s.max);
            let text = render_file(lines, seqs);
            if let Err(e) = write_atomically(&path, &text).await {
                if let Some(s) = seqs.get_mut(name) {
                    *s = before;
                }
                return Err(seq_error(format!("sequence_conf.properties ({}) cannot be written: {e}", path.display())));
            }
        }
        let s = seqs.get_mut(name).ok_or_else(|| seq_error("sequence vanished"))?;
        s.cur = next;
        Ok(next)
    }

    async fn next_db(&self, name: &str, db: &impl SequenceDb) -> Result<u64> {
        let mut blocks = self.blocks.lock().await;
        if let Some((next, end)) = blocks.get_mut(name) {
            if *next < *end {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let path = self.dir.join("sequence_db_conf.properties");
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| seq_error(format!("sequence_db_conf.properties ({}) cannot be read: {e}", path.display())))?;
        let node =
            properties(&text).into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v).ok_or_else(
                || seq_error(format!("sequence MYCATSEQ_{name} has no dataNode in sequence_db_conf.properties")),
            )?;
        let cell = db.next_block(&node, name).await?;
        let text = cell.map(|c| String::from_utf8_lossy(&c).into_owned()).unwrap_or_default();
        // "first,increment"; Mycat's function answers "-999999999,null" for an unknown name
        let (first, inc) = text.split_once(',').unwrap_or((&text, "1"));
        let (Ok(first), Ok(inc)) = (first.trim().parse::<i64>(), inc.trim().parse::<u64>()) else {
            return Err(seq_error(format!(
                "sequence MYCATSEQ_{name} is not in the MYCAT_SEQUENCE table of dataNode {node} (mycat_seq_nextval answered '{text}')"
            )));
        };
        let first = u64::try_from(first).map_err(|_| {
            seq_error(format!("sequence MYCATSEQ_{name} is not in the MYCAT_SEQUENCE table of dataNode {node}"))
        })?;
        let inc = inc.max(1);
        blocks.insert(name.to_string(), (first + 1, first + inc));
        Ok(first)
    }

    async fn next_time(&self) -> Result<u64> {
        let (work, dc) = *self.time_ids.get_or_try_init(|| self.time_ids()).await?;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let id = {
                let mut s = self.snow.lock();
                // a new millisecond starts over; the same one (or a clock gone back) counts on from the
                // last id, up to 4096 of them
                let fresh = if now > s.last_ms {
                    s.last_ms = now;
                    s.seq = 0;
                    true
                } else if s.seq < 4095 {
                    s.seq += 1;
                    true
                } else {
                    false
                };
                fresh.then(|| (s.last_ms.saturating_sub(SNOWFLAKE_EPOCH_MS) << 22) | (dc << 17) | (work << 12) | s.seq)
            };
            match id {
                Some(id) => return Ok(id),
                None => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
    }

    async fn time_ids(&self) -> Result<(u64, u64)> {
        let path = self.dir.join("sequence_time_conf.properties");
        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        let props = properties(&text);
        let get = |k: &str| -> Result<u64> {
            let v = props.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str()).unwrap_or("0");
            v.parse::<u64>()
                .ok()
                .filter(|n| *n < 32)
                .ok_or_else(|| seq_error(format!("sequence_time_conf.properties: {k}={v} is not 0–31")))
        };
        Ok((get("WORKID")?, get("DATAACENTERID")?))
    }
}

/// The file's lines (kept) and its sequences by name.
fn parse_file(text: &str) -> SeqFile {
    let mut seqs: HashMap<String, FileSeq> = HashMap::new();
    for (k, v) in properties(text) {
        let Some((name, field)) = k.rsplit_once('.') else { continue };
        let s = seqs.entry(name.to_ascii_uppercase()).or_insert(FileSeq {
            min: 0,
            max: 0,
            cur: 0,
            reserved: 0,
            hisids: String::new(),
        });
        let n = v.parse::<u64>().unwrap_or(0);
        match field.to_ascii_uppercase().as_str() {
            "MINID" => s.min = n,
            "MAXID" => s.max = n,
            "CURID" => s.cur = n,
            "HISIDS" => s.hisids = v,
            _ => {}
        }
    }
    for s in seqs.values_mut() {
        // CURID in the file is as far as ids may have been handed out
        s.reserved = s.cur;
    }
    (text.lines().map(str::to_string).collect(), seqs)
}

/// The file with each sequence's values written in place (CURID = the reserved end), other lines
/// as they were.
fn render_file(lines: &[String], seqs: &HashMap<String, FileSeq>) -> String {
    let mut out = String::new();
    let mut written: Vec<String> = Vec::new();
    for l in lines {
        let t = l.trim();
        let field = t.find(['=', ':']).map(|at| t[..at].trim()).and_then(|k| k.rsplit_once('.'));
        match field.and_then(|(n, f)| seqs.get(&n.to_ascii_uppercase()).map(|s| (n, f, s))) {
            Some((n, f, s)) => {
                let v = match f.to_ascii_uppercase().as_str() {
                    "MINID" => s.min.to_string(),
                    "MAXID" => s.max.to_string(),
                    "CURID" => s.reserved.to_string(),
                    "HISIDS" => s.hisids.clone(),
                    _ => {
                        out.push_str(l);
                        out.push('\n');
                        continue;
                    }
                };
                written.push(format!("{}.{}", n.to_ascii_uppercase(), f.to_ascii_uppercase()));
                out.push_str(&format!("{n}.{f}={v}\n"));
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    // fields the file did not have yet (HISIDS after a first new segment)
    let mut names: Vec<&String> = seqs.keys().collect();
    names.sort();
    for n in names {
        let s = &seqs[n];
        if !written.contains(&format!("{n}.HISIDS")) && !s.hisids.is_empty() {
            out.push_str(&format!("{n}.HISIDS={}\n", s.hisids));
        }
    }
    out
}

/// Writes `text` to a temporary file beside `path`, syncs it and renames it over `path`.
async fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension("properties.tmp");
    let mut f = tokio::fs::File::create(&tmp).await?;
    f.write_all(text.as_bytes()).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&tmp, path).await?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = tokio::fs::File::open(dir).await {
            let _ = d.sync_all().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoDb;
    impl SequenceDb for NoDb {
        async fn next_block(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>> {
            Ok(Some(b"101,10".to_vec()))
        }
    }

    #[test]
    fn finds_next_value_expressions_outside_quotes() {
        let sql = "INSERT INTO t VALUES (next value for MYCATSEQ_T, 'next value for MYCATSEQ_X'), (NEXT  VALUE\nFOR mycatseq_global, 1)";
        let f = find(sql);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(&sql[f[0].span.0..f[0].span.1], "next value for MYCATSEQ_T");
        assert_eq!(f[1].name, "GLOBAL");
        assert!(find("SELECT nextvalue FOR MYCATSEQ_A, next value for MYCATSEQ_").is_empty());
        // text that is not ASCII, quotes left open, a keyword at the very end: no panic
        for t in [
            "é NEXT VALUE FOR MYCATSEQ_é",
            "'next value for MYCATSEQ_X",
            "x next",
            "NEXT VALUE",
            "ÉNEXT VALUE FOR MYCATSEQ_A",
        ] {
            let _ = find(t);
        }
        assert_eq!(find("ÉNEXT VALUE FOR MYCATSEQ_A").len(), 0, "a word that only ends in NEXT");
    }

    #[tokio::test]
    async fn file_sequences_reserve_blocks_and_roll_to_new_segments() {
        let dir = std::env::temp_dir().join(format!("shardcat-seq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sequence_conf.properties");
        std::fs::write(&path, "# ids\nT.HISIDS=\nT.MINID=1\nT.MAXID=5\nT.CURID=3\n").unwrap();
        let s = Sequences::new(dir.clone(), 0);
        assert_eq!(s.next("T", &NoDb).await.unwrap(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("T.CURID=5") && text.starts_with("# ids\n"), "{text}");
        assert_eq!(s.next("T", &NoDb).await.unwrap(), 5);
        assert_eq!(s.next("T", &NoDb).await.unwrap(), 6, "a new segment after MAXID");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("T.HISIDS=1-5") && text.contains("T.MINID=6") && text.contains("T.MAXID=10"), "{text}");
        // a restart continues after what was reserved
        let again = Sequences::new(dir.clone(), 0);
        assert_eq!(again.next("T", &NoDb).await.unwrap(), 11);
        assert!(s.next("NOPE", &NoDb).await.unwrap_err().to_string().contains("MYCATSEQ_NOPE"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn db_blocks_and_snowflakes() {
        let s = Sequences::new(std::env::temp_dir().join("shardcat-seq-none"), 2);
        let a = s.next("X", &NoDb).await.unwrap();
        let b = s.next("X", &NoDb).await.unwrap();
        assert!(b > a && a >> 22 > 0);
        let dir = std::env::temp_dir().join(format!("shardcat-seqdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sequence_db_conf.properties"), "T=dn1\n").unwrap();
        let s = Sequences::new(dir.clone(), 1);
        let mut ids = Vec::new();
        for _ in 0..11 {
            ids.push(s.next("T", &NoDb).await.unwrap());
        }
        assert_eq!(ids[..10], [101, 102, 103, 104, 105, 106, 107, 108, 109, 110]);
        assert_eq!(ids[10], 101, "the next block (the fake answers the same one)");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
