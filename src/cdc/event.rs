//! One change as its consumers read it: the Debezium-style envelope (op, before, after, key, source,
//! ts_ms, id, position) or Canal's flatMessage; `id` = `{dataHost}:{gtid}:{row}`, stable across restarts.

use serde_json::{json, Map, Value as Json};

use crate::config::model::FeedFormat;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    /// A row of a snapshot.
    Read,
    Truncate,
    /// A DDL statement on the table.
    Ddl,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
            Op::Ddl => "ddl",
        }
    }

    fn canal(self) -> &'static str {
        match self {
            Op::Create | Op::Read => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
            Op::Truncate => "TRUNCATE",
            Op::Ddl => "ALTER",
        }
    }
}

/// Where a change was read.
#[derive(Debug, Clone)]
pub struct Source {
    pub schema: String,
    pub table: String,
    pub data_node: String,
    pub data_host: String,
    pub host: String,
    pub db: String,
    pub physical_table: String,
    pub gtid: String,
    pub file: String,
    pub pos: u64,
    /// The row's place among all rows of its transaction (every table's).
    pub row: u64,
    /// When the server wrote the event.
    pub ts_ms: u64,
    pub snapshot: bool,
}

/// One change, before it is written in a feed's format.
#[derive(Debug, Clone)]
pub struct Change {
    pub op: Op,
    pub before: Option<Map<String, Json>>,
    pub after: Option<Map<String, Json>>,
    pub key: Map<String, Json>,
    /// The statement, for DDL.
    pub ddl: Option<String>,
    pub source: Source,
}

impl Change {
    /// The id brokers de-duplicate by.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.source.data_host, self.source.gtid, self.source.row)
    }

    /// The event's bytes in `format`, carrying `position` (the token after it).
    pub fn render(&self, format: FeedFormat, position: &str) -> Vec<u8> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let s = &self.source;
        let v = match format {
            FeedFormat::Debezium => {
                let mut v = json!({
                    "op": self.op.code(),
                    "before": self.before,
                    "after": self.after,
                    "key": self.key,
                    "source": {
                        "schema": s.schema, "table": s.table, "dataNode": s.data_node, "dataHost": s.data_host,
                        "host": s.host, "db": s.db, "physicalTable": s.physical_table, "gtid": s.gtid,
                        "file": s.file, "pos": s.pos, "row": s.row, "ts_ms": s.ts_ms, "snapshot": s.snapshot,
                    },
                    "ts_ms": now,
                    "id": self.id(),
                    "position": position,
                });
                if let Some(ddl) = &self.ddl {
                    v["ddl"] = Json::String(ddl.clone());
                }
                v
            }
            FeedFormat::Canal => {
                // Canal writes every value as a string and `old` holds the changed columns' old values
                let strings = |m: &Map<String, Json>| -> Map<String, Json> {
                    m.iter()
                        .map(|(k, v)| {
                            let s = match v {
                                Json::Null => Json::Null,
                                Json::String(s) => Json::String(s.clone()),
                                other => Json::String(other.to_string()),
                            };
                            (k.clone(), s)
                        })
                        .collect()
                };
                let data = self.after.as_ref().or(self.before.as_ref()).map(|m| vec![strings(m)]);
                let old = match (&self.before, &self.after) {
                    (Some(b), Some(a)) => {
                        let changed: Map<String, Json> = strings(b)
                            .into_iter()
                            .filter(|(k, v)| a.get(k).map(|x| strings_eq(x, v)) != Some(true))
                            .collect();
                        Some(vec![changed])
                    }
                    _ => None,
                };
                json!({
                    "id": self.id(),
                    "database": s.schema,
                    "table": s.table,
                    "pkNames": self.key.keys().collect::<Vec<_>>(),
                    "isDdl": self.op == Op::Ddl,
                    "type": self.op.canal(),
                    "es": s.ts_ms,
                    "ts": now,
                    "sql": self.ddl.clone().unwrap_or_default(),
                    "data": data,
                    "old": old,
                    "gtid": s.gtid,
                    "dataNode": s.data_node,
                    "position": position,
                })
            }
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Whether a typed value and a string-written one are the same value.
fn strings_eq(typed: &Json, written: &Json) -> bool {
    match (typed, written) {
        (Json::Null, Json::Null) => true,
        (Json::String(a), Json::String(b)) => a == b,
        (a, Json::String(b)) => a.to_string().as_str() == b.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> Change {
        let mut before = Map::new();
        before.insert("id".into(), Json::from(7));
        before.insert("name".into(), Json::from("a"));
        let mut after = before.clone();
        after.insert("name".into(), Json::from("b"));
        let mut key = Map::new();
        key.insert("id".into(), Json::from(7));
        Change {
            op: Op::Update,
            before: Some(before),
            after: Some(after),
            key,
            ddl: None,
            source: Source {
                schema: "shop".into(),
                table: "orders".into(),
                data_node: "dn1".into(),
                data_host: "h1".into(),
                host: "p1".into(),
                db: "sc_a".into(),
                physical_table: "orders".into(),
                gtid: "1-3307-9".into(),
                file: "binlog.000001".into(),
                pos: 400,
                row: 2,
                ts_ms: 1000,
                snapshot: false,
            },
        }
    }

    #[test]
    fn both_formats_carry_the_change_and_its_id() {
        let c = change();
        assert_eq!(c.id(), "h1:1-3307-9:2");
        let d: Json = serde_json::from_slice(&c.render(FeedFormat::Debezium, "tok")).unwrap();
        assert_eq!(d["op"], "u");
        assert_eq!(d["before"]["name"], "a");
        assert_eq!(d["after"]["name"], "b");
        assert_eq!(d["key"]["id"], 7);
        assert_eq!(d["source"]["table"], "orders");
        assert_eq!(d["source"]["gtid"], "1-3307-9");
        assert_eq!(d["id"], "h1:1-3307-9:2");
        assert_eq!(d["position"], "tok");
        let k: Json = serde_json::from_slice(&c.render(FeedFormat::Canal, "tok")).unwrap();
        assert_eq!(k["type"], "UPDATE");
        assert_eq!(k["data"][0]["id"], "7");
        assert_eq!(k["old"][0], json!({"name": "a"}));
        assert_eq!(k["pkNames"], json!(["id"]));
    }
}
