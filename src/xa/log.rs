//! The coordinator log of two-phase commit: a file of commit decisions (fsync'ed before the first
//! XA COMMIT), their completions, the proxy instance's id and its restarts; compacted as it grows.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

/// The first line of a log file: format, version, then the instance id.
const MAGIC: &str = "shardcat-xa-log 1";
/// Completions written since the last compaction before the file is rewritten with what is pending.
const COMPACT_AFTER: usize = 4096;

/// What the file said at start: who this proxy is, how many times it started, the decisions not
/// known to be finished (global transaction id → its branches' dataNodes).
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    pub instance: String,
    pub boot: u64,
    pub pending: BTreeMap<String, Vec<String>>,
}

/// One record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The decision to commit `gtrid` on these dataNodes.
    Commit(String, Vec<String>),
    /// Every branch of `gtrid` is committed.
    Done(String),
}

impl Record {
    fn line(&self) -> String {
        match self {
            Record::Commit(g, nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| hex(n.as_bytes())).collect();
                format!("C {g} {}\n", nodes.join(" "))
            }
            Record::Done(g) => format!("D {g}\n"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Reads a log's text: the header, boots and records; a last line without its newline (a write cut
/// by a crash) is not a record.
pub fn parse(text: &str) -> Result<Recovered, String> {
    let mut out = Recovered::default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    for (i, line) in complete.lines().enumerate() {
        let mut words = line.split(' ');
        let bad = || format!("line {}: '{line}' is not a record", i + 1);
        if i == 0 {
            let rest = line.strip_prefix(MAGIC).ok_or_else(|| format!("line 1 is not '{MAGIC} <instance>'"))?;
            out.instance = rest.trim().to_string();
            if out.instance.is_empty() || out.instance.contains(|c: char| !c.is_ascii_alphanumeric()) {
                return Err(format!("line 1: '{}' is not an instance id", out.instance));
            }
            continue;
        }
        match words.next() {
            Some("B") => out.boot = words.next().and_then(|b| b.parse().ok()).ok_or_else(bad)?,
            Some("C") => {
                let g = words.next().filter(|g| !g.is_empty()).ok_or_else(bad)?;
                let nodes: Option<Vec<String>> = words.map(unhex).collect();
                out.pending.insert(g.to_string(), nodes.ok_or_else(bad)?);
            }
            Some("D") => {
                out.pending.remove(words.next().ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// The log file of a `dir` and base name.
pub fn path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.log"))
}

/// Opens (or creates) the log, counts this start as a new boot (fsync'ed), and starts the writer task.
/// Blocking file work runs off the runtime's workers.
pub async fn open(dir: PathBuf, base: String) -> Result<(Log, Recovered), String> {
    let (file, rec) =
        tokio::task::spawn_blocking(move || open_blocking(&dir, &base)).await.map_err(|e| e.to_string())??;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(writer(file, rx, rec.instance.clone(), rec.boot, rec.pending.clone()));
    Ok((Log { tx }, rec))
}

struct File {
    path: PathBuf,
    file: std::fs::File,
    /// Held (locked) for as long as the writer runs: the process's claim on the log.
    _lock: std::fs::File,
}

fn open_blocking(dir: &Path, base: &str) -> Result<(File, Recovered), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = path(dir, base);
    // one coordinator per log: another proxy's recovery would roll back this one's prepared
    // transactions as its own
    let lock_path = dir.join(format!("{base}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(format!(
                "{} is in use by another running shardcat: give each proxy its own XARecoveryLogBaseDir or XARecoveryLogBaseName",
                p.display()
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(format!("{}: {e}", lock_path.display())),
    }
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    let mut rec = if text.is_empty() {
        Recovered { instance: hex(&rand::random::<[u8; 6]>()), ..Default::default() }
    } else {
        parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
    };
    rec.boot += 1;
    // rewritten whole at start: the pending decisions and the new boot, then renamed over the old
    let f = rewrite(&p, &rec.instance, rec.boot, &rec.pending).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok((File { path: p, file: f, _lock: lock }, rec))
}

/// Writes a fresh log (header, boot, pending decisions) beside `p`, fsyncs it and renames it over `p`.
fn rewrite(
    p: &Path,
    instance: &str,
    boot: u64,
    pending: &BTreeMap<String, Vec<String>>,
) -> std::io::Result<std::fs::File> {
    let tmp = p.with_extension("log.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let mut text = format!("{MAGIC} {instance}\nB {boot}\n");
    for (g, nodes) in pending {
        text.push_str(&Record::Commit(g.clone(), nodes.clone()).line());
    }
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, p)?;
    if let Some(dir) = p.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    std::fs::OpenOptions::new().append(true).open(p)
}

type Ack = oneshot::Sender<Result<(), String>>;

/// The handle sessions write through; one task owns the file.
#[derive(Clone)]
pub struct Log {
    tx: mpsc::UnboundedSender<(Record, Option<Ack>)>,
}

impl Log {
    /// Appends a commit decision and returns once it is on disk (several sessions' decisions share
    /// one write and one fsync).
    pub async fn decide(&self, gtrid: &str, nodes: &[String]) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((Record::Commit(gtrid.to_string(), nodes.to_vec()), Some(ack)))
            .map_err(|_| "the coordinator log's writer is gone".to_string())?;
        done.await.map_err(|_| "the coordinator log's writer is gone".to_string())?
    }

    /// Records that every branch of `gtrid` committed (not waited for: a lost completion only makes
    /// recovery look for the transaction once more).
    pub fn done(&self, gtrid: &str) {
        let _ = self.tx.send((Record::Done(gtrid.to_string()), None));
    }
}

async fn writer(
    mut file: File,
    mut rx: mpsc::UnboundedReceiver<(Record, Option<Ack>)>,
    instance: String,
    boot: u64,
    mut pending: BTreeMap<String, Vec<String>>,
) {
    let mut since_compaction = 0usize;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut text = String::new();
        let mut sync = false;
        for (r, ack) in &batch {
            text.push_str(&r.line());
            sync |= ack.is_some();
            match r {
                Record::Commit(g, n) => {
                    pending.insert(g.clone(), n.clone());
                }
                Record::Done(g) => {
                    pending.remove(g);
                    since_compaction += 1;
                }
            }
        }
        let compact = since_compaction >= COMPACT_AFTER;
        let snapshot = compact.then(|| pending.clone());
        let (inst, path) = (instance.clone(), file.path.clone());
        let res = tokio::task::spawn_blocking(move || -> Result<File, (File, String)> {
            let mut f = file;
            if let Err(e) = f.file.write_all(text.as_bytes()) {
                return Err((f, e.to_string()));
            }
            if sync {
                if let Err(e) = f.file.sync_data() {
                    return Err((f, e.to_string()));
                }
            }
            if let Some(p) = snapshot {
                match rewrite(&path, &inst, boot, &p) {
                    Ok(nf) => f.file = nf,
                    // the old file still holds everything: compaction is tried again later
                    Err(e) => {
                        tracing::warn!(log = %path.display(), error = %e, "compacting the XA coordinator log failed")
                    }
                }
            }
            Ok(f)
        })
        .await;
        let outcome = match res {
            Ok(Ok(f)) => {
                file = f;
                if compact {
                    since_compaction = 0;
                }
                Ok(())
            }
            Ok(Err((f, e))) => {
                file = f;
                Err(e)
            }
            Err(e) => {
                // the file went with the task: nothing more can be made durable
                let e = format!("the coordinator log's writer failed: {e}");
                for (_, ack) in batch {
                    if let Some(a) = ack {
                        let _ = a.send(Err(e.clone()));
                    }
                }
                tracing::error!(error = %e, "XA coordinator log");
                return;
            }
        };
        if let Err(e) = &outcome {
            tracing::error!(log = %file.path.display(), error = %e, "writing the XA coordinator log failed");
        }
        for (_, ack) in batch {
            if let Some(a) = ack {
                let _ = a.send(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_last_line_is_not_a_record() {
        let mut text = format!("{MAGIC} ab12\nB 3\n");
        text.push_str(&Record::Commit("sc.ab12.3.1".into(), vec!["dn1".into(), "dn 2".into()]).line());
        text.push_str(&Record::Commit("sc.ab12.3.2".into(), vec!["dn1".into()]).line());
        text.push_str(&Record::Done("sc.ab12.3.1".into()).line());
        let r = parse(&text).unwrap();
        assert_eq!(r.instance, "ab12");
        assert_eq!(r.boot, 3);
        assert_eq!(r.pending.len(), 1);
        assert_eq!(r.pending["sc.ab12.3.2"], vec!["dn1".to_string()]);
        // a decision whose line was cut by a crash was never acknowledged: it is not one
        let cut = format!("{text}C sc.ab12.3.9 646e");
        assert_eq!(parse(&cut).unwrap().pending.len(), 1);
        assert!(parse("garbage\n").is_err());
        assert!(parse(&format!("{MAGIC} ab12\nX 1\n")).is_err());
    }

    #[tokio::test]
    async fn decisions_survive_a_restart_until_done_and_each_start_is_a_new_boot() {
        let dir = tempfile::tempdir().unwrap();
        let (log, first) = open(dir.path().to_path_buf(), "tmlog".into()).await.unwrap();
        assert_eq!(first.boot, 1);
        log.decide("g1", &["dn1".into(), "dn2".into()]).await.unwrap();
        log.decide("g2", &["dn2".into()]).await.unwrap();
        log.done("g1");
        log.decide("g3", &["dn3".into()]).await.unwrap();
        drop(log);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (_log, second) = open(dir.path().to_path_buf(), "tmlog".into()).await.unwrap();
        assert_eq!(second.instance, first.instance);
        assert_eq!(second.boot, 2);
        assert_eq!(second.pending.keys().cloned().collect::<Vec<_>>(), vec!["g2".to_string(), "g3".to_string()]);
    }

    #[tokio::test]
    async fn a_second_coordinator_on_one_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path().to_path_buf(), "t".into()).await.unwrap();
        log.decide("g", &["dn1".into()]).await.unwrap();
        let second = open(dir.path().to_path_buf(), "t".into()).await;
        assert!(
            second.as_ref().err().is_some_and(|e| e.contains("in use by another running shardcat")),
            "{:?}",
            second.err()
        );
        // another base name in the same dir is another log
        assert!(open(dir.path().to_path_buf(), "u".into()).await.is_ok());
    }

    #[tokio::test]
    async fn the_log_is_compacted_to_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path().to_path_buf(), "t".into()).await.unwrap();
        log.decide("keep", &["dn1".into()]).await.unwrap();
        for i in 0..COMPACT_AFTER + 10 {
            let g = format!("g{i}");
            log.decide(&g, &["dn1".into()]).await.unwrap();
            log.done(&g);
        }
        log.decide("last", &["dn2".into()]).await.unwrap();
        let text = std::fs::read_to_string(path(dir.path(), "t")).unwrap();
        assert!(text.lines().count() < 100, "{} lines", text.lines().count());
        let r = parse(&text).unwrap();
        assert_eq!(r.pending.keys().cloned().collect::<Vec<_>>(), vec!["keep".to_string(), "last".to_string()]);
    }
}
