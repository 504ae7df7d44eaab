//! What merges learned of their shards' string keys: per shard statement, node and session character
//! sets, the collation each key compares by — so later runs leave the per-row COLLATION/WEIGHT_STRING out.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use super::collation::Collation;

/// How long a learned entry is used before a full run checks it again.
pub const TRUST: Duration = Duration::from_secs(1);
/// Entries kept (statement × node × character sets); the least used go first.
const ENTRIES: u64 = 4096;

/// Per hidden column of a merge's result, the collation its string key compares by (`None` for
/// columns that are no weight, and for numeric keys).
pub type Told = Arc<[Option<Collation>]>;

struct Entry {
    sql: Box<str>,
    node: Arc<str>,
    session: u64,
    told: Told,
}

/// A merge's shards send, beside each string key, `COLLATION(key)` and (unless the proxy compares that
/// collation itself on values that arrive unconverted) `WEIGHT_STRING(key)`. Both are properties of the
/// statement — its columns' definitions and the session's character sets —, not of the row, yet the
/// servers compute and send them for every row (measured: ORDER BY c over 50 rows 167 → 267 µs of
/// server CPU, DISTINCT c 270 → 487 µs). A full run tells the proxy what they say; while that holds,
/// the same statement on the same node and character sets runs as its lean text (`MergePlan::lean_sql`,
/// NULL in those columns) and the merge is told the collations instead (`MergePlan::told`).
///
/// What is learned is forgotten when DDL or CALL passes through the proxy, on reload (a new runtime
/// has a new memo), and after `TRUST` in any case: a column's collation changed by DDL that did not
/// pass through this proxy (on a shard directly, or through another proxy) is seen within that time.
pub struct Learned {
    entries: moka::sync::Cache<u64, Arc<Entry>, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Learned {
    fn default() -> Self {
        Learned {
            entries: moka::sync::Cache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(TRUST)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// A session's way into the memo: the memo, and its character sets as one key (`Session::charsets_key`).
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub learned: &'a Learned,
    pub session: u64,
}

impl Learned {
    fn key(&self, sql_hash: u64, node: &str, session: u64) -> u64 {
        let mut h = self.hasher.build_hasher();
        sql_hash.hash(&mut h);
        node.hash(&mut h);
        session.hash(&mut h);
        h.finish()
    }

    /// What every node of `nodes` told of the statement `sql` (its lean text) under these character
    /// sets — when each did, and all said the same.
    pub fn told(&self, sql: &str, nodes: &[Arc<str>], session: u64) -> Option<Told> {
        let sql_hash = self.hasher.hash_one(sql);
        let mut told: Option<Told> = None;
        for node in nodes {
            let e = self.entries.get(&self.key(sql_hash, node, session))?;
            if &*e.sql != sql || *e.node != **node || e.session != session {
                return None;
            }
            match &told {
                None => told = Some(e.told.clone()),
                Some(t) if *t == e.told => {}
                Some(_) => return None,
            }
        }
        told
    }

    /// Keeps what a full run of `sql` (its lean text) on `node` told.
    pub fn learn(&self, sql: &str, node: &Arc<str>, session: u64, told: Vec<Option<Collation>>) {
        let key = self.key(self.hasher.hash_one(sql), node, session);
        self.entries.insert(key, Arc::new(Entry { sql: sql.into(), node: node.clone(), session, told: told.into() }));
    }

    /// Forgets everything (DDL passed through the proxy).
    pub fn forget(&self) {
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general() -> Option<Collation> {
        Collation::by_name(b"utf8mb4_general_ci")
    }

    #[test]
    fn told_only_when_every_node_said_the_same() {
        let l = Learned::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("dn1"), Arc::from("dn2"));
        let sql = "SELECT c, NULL AS `__sc_0`, NULL AS `__sc_1` FROM t ORDER BY c";
        assert!(l.told(sql, &[a.clone(), b.clone()], 7).is_none());
        l.learn(sql, &a, 7, vec![None, general()]);
        assert!(l.told(sql, &[a.clone(), b.clone()], 7).is_none(), "dn2 has not told yet");
        assert_eq!(l.told(sql, std::slice::from_ref(&a), 7).as_deref(), Some(&[None, general()][..]));
        assert!(l.told(sql, std::slice::from_ref(&a), 8).is_none(), "other character sets");
        assert!(l.told("SELECT 1", std::slice::from_ref(&a), 7).is_none(), "another statement");
        l.learn(sql, &b, 7, vec![None, Collation::by_name(b"utf8mb4_bin")]);
        assert!(l.told(sql, &[a.clone(), b.clone()], 7).is_none(), "the nodes disagree");
        l.learn(sql, &b, 7, vec![None, general()]);
        assert!(l.told(sql, &[a.clone(), b.clone()], 7).is_some());
        l.forget();
        assert!(l.told(sql, &[a, b], 7).is_none(), "DDL forgets");
    }

    #[test]
    fn trusted_for_a_while_only() {
        let l = Learned::default();
        let a: Arc<str> = Arc::from("dn1");
        l.learn("q", &a, 0, vec![general()]);
        assert!(l.told("q", std::slice::from_ref(&a), 0).is_some());
        std::thread::sleep(TRUST + Duration::from_millis(100));
        assert!(l.told("q", std::slice::from_ref(&a), 0).is_none(), "expired after TRUST");
    }
}
