//! Which SELECTs the result cache may keep, from their text: none whose result can change without a
//! change to its tables' rows (time, randomness, the session, locks, variables), none that opts out.

/// Words that make a statement's result depend on more than its tables' rows (functions of time,
/// randomness or the session, locking reads, opt-outs). Compared case-insensitively, whole words,
/// outside quotes: a word in a comment or an identifier still counts (a miss, never a stale hit).
const NEVER: &[&str] = &[
    "NOW",
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "SYSDATE",
    "CURDATE",
    "CURTIME",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "UNIX_TIMESTAMP",
    "RAND",
    "RANDOM_BYTES",
    "UUID",
    "UUID_SHORT",
    "SYS_GUID",
    "CONNECTION_ID",
    "LAST_INSERT_ID",
    "FOUND_ROWS",
    "ROW_COUNT",
    "USER",
    "CURRENT_USER",
    "SESSION_USER",
    "SYSTEM_USER",
    "CURRENT_ROLE",
    "DATABASE",
    "SCHEMA",
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "IS_FREE_LOCK",
    "IS_USED_LOCK",
    "SLEEP",
    "BENCHMARK",
    "NEXTVAL",
    "LASTVAL",
    "SETVAL",
    "NEXT",
    "PREVIOUS",
    "MASTER_POS_WAIT",
    "MASTER_GTID_WAIT",
    "LOAD_FILE",
    "VERSION",
    "UPDATE",
    "SHARE",
    "LOCK",
    "INTO",
    "SQL_NO_CACHE",
    "SQL_CALC_FOUND_ROWS",
];

/// Schemas whose tables are the server's own state.
pub const SYSTEM_SCHEMAS: &[&str] = &["information_schema", "mysql", "performance_schema", "sys"];

/// Whether the text may be cached: no word of `NEVER`, no `@` (user or system variables) outside
/// quotes, no `/*#shardcat:cache=false*/`.
pub fn text_allows(sql: &str) -> bool {
    if sql.contains("shardcat:cache=false") {
        return false;
    }
    let b = sql.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'@' => return false,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                    i += 1;
                }
                let word = &sql[start..i];
                if NEVER.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    return false;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_randomness_session_locks_and_variables_are_never_cached() {
        assert!(text_allows("SELECT c FROM sbtest1 WHERE id = 5"));
        assert!(text_allows("SELECT name FROM customer WHERE name = 'now' ORDER BY id"), "a literal");
        for sql in [
            "SELECT NOW(), id FROM t",
            "select rand() from t",
            "SELECT * FROM t WHERE d > CURDATE()",
            "SELECT @a FROM t",
            "SELECT @@sql_mode, id FROM t",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT * FROM t FOR SHARE",
            "SELECT SQL_NO_CACHE * FROM t",
            "SELECT id INTO @x FROM t",
            "SELECT NEXT VALUE FOR s",
            "SELECT LAST_INSERT_ID() FROM t",
            "/*#shardcat:cache=false*/ SELECT * FROM t",
            "SELECT GET_LOCK('a', 1) FROM t",
            "SELECT DATABASE(), id FROM t",
        ] {
            assert!(!text_allows(sql), "{sql}");
        }
    }
}
