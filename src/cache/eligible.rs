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

/// What may stand before `(` in a cacheable statement: MariaDB's built-in functions whose result
/// depends only on their arguments (and on the session's charset, sql_mode and time_zone, which are
/// in the key), the type names of CAST/CONVERT and the keywords a parenthesis follows. Anything else
/// called — a stored function, a UDF, a built-in not listed — keeps the statement out of the cache:
/// it may read other tables, the clock or the session. Sorted, upper case (binary search).
const CALLABLE: &[&str] = &[
    "ABS",
    "ACOS",
    "ADDDATE",
    "ADDTIME",
    "AGAINST",
    "ALL",
    "AND",
    "ANY",
    "AS",
    "ASCII",
    "ASIN",
    "ATAN",
    "ATAN2",
    "AVG",
    "BETWEEN",
    "BIGINT",
    "BIN",
    "BINARY",
    "BIT_AND",
    "BIT_COUNT",
    "BIT_LENGTH",
    "BIT_OR",
    "BIT_XOR",
    "BY",
    "CASE",
    "CAST",
    "CEIL",
    "CEILING",
    "CHAR",
    "CHARACTER_LENGTH",
    "CHAR_LENGTH",
    "COALESCE",
    "COLLATE",
    "CONCAT",
    "CONCAT_WS",
    "CONV",
    "CONVERT",
    "CONVERT_TZ",
    "COS",
    "COT",
    "COUNT",
    "CRC32",
    "CUME_DIST",
    "DATE",
    "DATEDIFF",
    "DATETIME",
    "DATE_ADD",
    "DATE_FORMAT",
    "DATE_SUB",
    "DAY",
    "DAYNAME",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "DECIMAL",
    "DEGREES",
    "DENSE_RANK",
    "DISTINCT",
    "DIV",
    "DOUBLE",
    "ELSE",
    "ELT",
    "EXISTS",
    "EXP",
    "EXTRACT",
    "FIELD",
    "FIND_IN_SET",
    "FIRST_VALUE",
    "FLOAT",
    "FLOOR",
    "FORMAT",
    "FROM",
    "FROM_BASE64",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "GREATEST",
    "GROUP_CONCAT",
    "HAVING",
    "HEX",
    "HOUR",
    "IF",
    "IFNULL",
    "IN",
    "INET6_ATON",
    "INET6_NTOA",
    "INET_ATON",
    "INET_NTOA",
    "INSTR",
    "INT",
    "INTEGER",
    "INTERVAL",
    "IS",
    "ISNULL",
    "JOIN",
    "JSON_ARRAY",
    "JSON_ARRAYAGG",
    "JSON_CONTAINS",
    "JSON_CONTAINS_PATH",
    "JSON_DEPTH",
    "JSON_EXTRACT",
    "JSON_KEYS",
    "JSON_LENGTH",
    "JSON_OBJECT",
    "JSON_OBJECTAGG",
    "JSON_QUERY",
    "JSON_QUOTE",
    "JSON_SEARCH",
    "JSON_TYPE",
    "JSON_UNQUOTE",
    "JSON_VALID",
    "JSON_VALUE",
    "LAG",
    "LAST_DAY",
    "LAST_VALUE",
    "LCASE",
    "LEAD",
    "LEAST",
    "LEFT",
    "LENGTH",
    "LIKE",
    "LIMIT",
    "LN",
    "LOCATE",
    "LOG",
    "LOG10",
    "LOG2",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MAKEDATE",
    "MAKETIME",
    "MATCH",
    "MAX",
    "MD5",
    "MICROSECOND",
    "MID",
    "MIN",
    "MINUTE",
    "MOD",
    "MONTH",
    "MONTHNAME",
    "NCHAR",
    "NOT",
    "NTH_VALUE",
    "NTILE",
    "NULLIF",
    "NUMERIC",
    "OCT",
    "OCTET_LENGTH",
    "ON",
    "OR",
    "ORD",
    "OVER",
    "PARTITION",
    "PERCENT_RANK",
    "PERIOD_ADD",
    "PERIOD_DIFF",
    "PI",
    "POSITION",
    "POW",
    "POWER",
    "QUARTER",
    "QUOTE",
    "RADIANS",
    "RANK",
    "REGEXP",
    "REGEXP_INSTR",
    "REGEXP_REPLACE",
    "REGEXP_SUBSTR",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "RLIKE",
    "ROUND",
    "ROW",
    "ROW_NUMBER",
    "RPAD",
    "RTRIM",
    "SECOND",
    "SEC_TO_TIME",
    "SELECT",
    "SHA",
    "SHA1",
    "SHA2",
    "SIGN",
    "SIGNED",
    "SIN",
    "SOME",
    "SOUNDEX",
    "SPACE",
    "SQRT",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STRCMP",
    "STR_TO_DATE",
    "SUBDATE",
    "SUBSTR",
    "SUBSTRING",
    "SUBSTRING_INDEX",
    "SUBTIME",
    "SUM",
    "TAN",
    "THEN",
    "TIME",
    "TIMEDIFF",
    "TIMESTAMP",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TIME_FORMAT",
    "TIME_TO_SEC",
    "TO_BASE64",
    "TO_DAYS",
    "TO_SECONDS",
    "TRIM",
    "TRUNCATE",
    "UCASE",
    "UNHEX",
    "UNION",
    "UNSIGNED",
    "UPPER",
    "USING",
    "VARCHAR",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "WEEK",
    "WEEKDAY",
    "WEEKOFYEAR",
    "WEIGHT_STRING",
    "WHEN",
    "WHERE",
    "WITH",
    "XOR",
    "YEAR",
    "YEARWEEK",
];

/// Whether `word` may be followed by `(` in a cacheable statement (`CALLABLE`).
fn callable(word: &str) -> bool {
    let mut buf = [0u8; 24];
    if word.len() > buf.len() {
        return false;
    }
    for (d, s) in buf.iter_mut().zip(word.bytes()) {
        *d = s.to_ascii_uppercase();
    }
    let upper = std::str::from_utf8(&buf[..word.len()]).unwrap_or("");
    CALLABLE.binary_search(&upper).is_ok()
}

/// The next byte after `i` that is not white space.
fn next_visible(b: &[u8], mut i: usize) -> Option<u8> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    b.get(i).copied()
}

/// Schemas whose tables are the server's own state.
pub const SYSTEM_SCHEMAS: &[&str] = &["information_schema", "mysql", "performance_schema", "sys"];

/// Whether the text may be cached: no word of `NEVER`, no `@` (user or system variables) outside
/// quotes, nothing called that is not `CALLABLE`, no `/*#shardcat:cache=false*/`.
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
            b'`' => {
                // a quoted name called is a stored function (built-ins are not called quoted)
                let close = b[i + 1..].iter().position(|&x| x == b'`').map_or(b.len(), |p| i + 1 + p);
                if next_visible(b, close + 1) == Some(b'(') {
                    return false;
                }
                // its words still count (a miss, never a stale hit)
                i += 1;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                    i += 1;
                }
                let word = &sql[start..i];
                if NEVER.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    return false;
                }
                if next_visible(b, i) == Some(b'(') && !callable(word) {
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
            "SELECT my_price(id) FROM t",
            "SELECT shop.discount (id) FROM t",
            "SELECT `my func`(id) FROM t",
            "SELECT id FROM t WHERE f(id) = 1",
            "SELECT ENCRYPT(c) FROM t",
        ] {
            assert!(!text_allows(sql), "{sql}");
        }
        // sysbench's statements and the deterministic built-ins
        for sql in [
            "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100",
            "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c",
            "SELECT COUNT(DISTINCT a), CAST(b AS DECIMAL(10, 2)), CONCAT(x, 'y') FROM t",
            "SELECT id FROM t WHERE id IN (SELECT id FROM u) AND (a = 1 OR b = 2)",
            "SELECT * FROM (SELECT id FROM t) AS d WHERE EXISTS (SELECT 1 FROM u)",
            "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
            "SELECT `count`, `sum` (x) FROM t",
        ] {
            let want = !sql.contains("`sum` (");
            assert_eq!(text_allows(sql), want, "{sql}");
        }
    }

    #[test]
    fn the_callable_list_is_sorted_upper_case() {
        assert!(CALLABLE.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(CALLABLE.iter().all(|w| w.len() <= 24 && *w == w.to_ascii_uppercase()));
    }
}
