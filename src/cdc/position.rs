//! The change queue's position token: per dataHost the GTIDs done and the rows already given of the
//! transaction under way, as one opaque URL-safe string; and its file in the state dir (atomic writes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::backend::binlog::{Gtid, Position};

/// Where a stream stands on one dataHost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPos {
    /// Every transaction up to these GTIDs is given whole.
    pub done: Position,
    /// Of the next transaction (this GTID), the first `n` rows are given.
    pub inside: Option<(Gtid, u64)>,
}

/// A feed's position: one `HostPos` per dataHost (like Vitess's VGTID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Token(pub BTreeMap<String, HostPos>);

#[derive(Debug, thiserror::Error)]
#[error("not a position token of this proxy: {0}")]
pub struct BadToken(pub String);

impl Token {
    /// The plain text form: `host=d-s-n,d-s-n[@d-s-n/rows];host2=…`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, (host, p)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(host);
            out.push('=');
            out.push_str(&p.done.to_string());
            if let Some((g, n)) = &p.inside {
                out.push_str(&format!("@{g}/{n}"));
            }
        }
        out
    }

    /// The opaque form clients hold: the text, base64url without padding.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.text())
    }

    pub fn parse_text(s: &str) -> Result<Token, BadToken> {
        let bad = || BadToken(s.chars().take(80).collect());
        let mut t = Token::default();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let (host, rest) = part.split_once('=').ok_or_else(bad)?;
            if host.is_empty() {
                return Err(bad());
            }
            let (done, inside) = match rest.split_once('@') {
                Some((d, i)) => {
                    let (g, n) = i.split_once('/').ok_or_else(bad)?;
                    (d, Some((gtid(g).ok_or_else(bad)?, n.parse::<u64>().map_err(|_| bad())?)))
                }
                None => (rest, None),
            };
            let position = Position::parse(done);
            // every GTID written must have been read: a typo never becomes a shorter position
            if position.to_string()
                != done.split(',').map(str::trim).filter(|g| !g.is_empty()).collect::<Vec<_>>().join(",")
            {
                return Err(bad());
            }
            t.0.insert(host.to_string(), HostPos { done: position, inside });
        }
        Ok(t)
    }

    pub fn decode(s: &str) -> Result<Token, BadToken> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| BadToken(s.chars().take(80).collect()))?;
        let text = String::from_utf8(bytes).map_err(|_| BadToken(s.chars().take(80).collect()))?;
        Token::parse_text(&text)
    }
}

fn gtid(s: &str) -> Option<Gtid> {
    let mut it = s.split('-');
    let (d, srv, seq) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    Some(Gtid { domain: d.parse().ok()?, server: srv.parse().ok()?, seq: seq.parse().ok()?, standalone: false })
}

/// The file holding a feed's acknowledged position.
pub fn file(state_dir: &Path, feed: &str) -> PathBuf {
    state_dir.join("cdc").join(format!("{feed}.position"))
}

/// The persisted position of a feed, if any.
pub async fn load(path: &Path) -> Result<Option<Token>, String> {
    match tokio::fs::read_to_string(path).await {
        Ok(s) => Token::parse_text(s.trim()).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes a position so a crash leaves the old one or the new one whole: a temporary file, fsync'ed,
/// renamed over the old one, and the directory fsync'ed.
pub async fn store(path: &Path, token: &Token) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await?;
    let tmp = path.with_extension("position.tmp");
    let mut f = tokio::fs::File::create(&tmp).await?;
    tokio::io::AsyncWriteExt::write_all(&mut f, token.text().as_bytes()).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&tmp, path).await?;
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let mut t = Token::default();
        t.0.insert("h1".into(), HostPos { done: Position::parse("1-3307-10,3-3308-2"), inside: None });
        t.0.insert(
            "h2".into(),
            HostPos {
                done: Position::parse("2-3309-5"),
                inside: Some((Gtid { domain: 2, server: 3309, seq: 6, standalone: false }, 3)),
            },
        );
        assert_eq!(t.text(), "h1=1-3307-10,3-3308-2;h2=2-3309-5@2-3309-6/3");
        assert_eq!(Token::decode(&t.encode()).unwrap(), t);
        assert!(!t.encode().contains(['\n', ':', '/', '+', '=']));
        assert_eq!(Token::parse_text("h=").unwrap().0["h"], HostPos::default());
        for bad in ["h", "=1-2-3", "h=1-2", "h=1-2-3@1-2-4", "h=1-2-3@x/1", "h=a-b-c"] {
            assert!(Token::parse_text(bad).is_err(), "{bad}");
        }
        assert!(Token::decode("not base64!").is_err());
    }

    #[tokio::test]
    async fn a_stored_position_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "orders");
        assert_eq!(load(&path).await.unwrap(), None);
        let t = Token::parse_text("h1=1-3307-10").unwrap();
        store(&path, &t).await.unwrap();
        assert_eq!(load(&path).await.unwrap(), Some(t));
    }
}
