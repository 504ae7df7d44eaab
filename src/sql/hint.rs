//! Mycat annotations read from the raw statement text (sqlparser drops comments): a leading
//! `/*!mycat:k=v*/`, `/*#mycat:k=v*/` or `/*mycat:k=v*/` that steers routing.

/// What a hint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Run on this dataNode only.
    DataNode(String),
    /// Route as if the current schema were this one.
    Schema(String),
    /// Route this SQL, then run the real statement on the nodes it chose.
    Sql(String),
    /// `db_type=master|slave` (read/write splitting honours it).
    DbType(String),
    /// `catlet=…`: not supported.
    Catlet(String),
}

/// A hint at the start of `sql`: the hint and the byte offset where the real statement starts.
/// `Ok(None)` without a hint; `Err` with Mycat's message for a malformed one.
pub fn parse(sql: &str) -> Result<Option<(Hint, usize)>, String> {
    let start = sql.len() - sql.trim_start().len();
    let rest = &sql[start..];
    if !rest.starts_with("/*") {
        return Ok(None);
    }
    let Some(end) = rest.find("*/") else { return Ok(None) };
    let body = rest[2..end].trim_start_matches(['*', ' ', '\t', '\n', '\r']);
    let body = body.strip_prefix('!').or_else(|| body.strip_prefix('#')).unwrap_or(body);
    let lower = body.to_ascii_lowercase();
    let Some(after) = lower.strip_prefix("mycat:") else { return Ok(None) };
    let kv = &body[body.len() - after.len()..];
    let bad = || {
        "comment in sql must meet :/*!mycat:type=value*/ or /*#mycat:type=value*/ or /*mycat:type=value*/".to_string()
    };
    let (k, v) = kv.split_once('=').ok_or_else(bad)?;
    let v = v.trim();
    let v = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).unwrap_or(v).to_string();
    let hint = match k.trim().to_ascii_lowercase().as_str() {
        "datanode" => Hint::DataNode(v),
        "schema" => Hint::Schema(v),
        "sql" => Hint::Sql(v),
        "db_type" => Hint::DbType(v.to_ascii_lowercase()),
        "catlet" => Hint::Catlet(v),
        _ => return Err(bad()),
    };
    Ok(Some((hint, start + end + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_forms() {
        assert_eq!(parse("/*!mycat:dataNode=dn1*/ select 1").unwrap(), Some((Hint::DataNode("dn1".into()), 23)));
        assert_eq!(
            parse(" /*#mycat:schema=TESTDB*/select 1").unwrap().map(|h| h.0),
            Some(Hint::Schema("TESTDB".into()))
        );
        assert_eq!(
            parse("/** mycat:sql='select id from t where id=1'*/ update t set a=1").unwrap().map(|h| h.0),
            Some(Hint::Sql("select id from t where id=1".into()))
        );
        assert_eq!(
            parse("/*#mycat:db_type=MASTER*/ select 1").unwrap().map(|h| h.0),
            Some(Hint::DbType("master".into()))
        );
        assert!(parse("/*#mycat:nonsense*/ select 1").is_err());
        assert_eq!(parse("/* plain comment */ select 1").unwrap(), None);
        assert_eq!(parse("select 1").unwrap(), None);
        assert_eq!(parse("/*mycat:dataNode=dn1").unwrap(), None, "unterminated: no hint");
    }
}
