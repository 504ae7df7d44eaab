//! A binlog row image as JSON, typed by its columns: integers as numbers (beyond 2^53 as strings),
//! DECIMAL as strings, temporal types ISO-8601, binary as base64, ENUM/SET by their names, NULL as null.

use base64::Engine;
use mysql_common::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::packets::Column;
use mysql_common::value::Value;
use serde_json::{Map, Value as Json};

/// What the table map says beyond types: the names of each ENUM's and SET's members, in column order.
#[derive(Debug, Default, Clone)]
pub struct Members {
    enums: Vec<Vec<String>>,
    sets: Vec<Vec<String>>,
    /// The map names the columns (`binlog_row_metadata=FULL`).
    pub named: bool,
}

/// A table's columns as the server's catalogue describes them now: what names the columns of a row
/// whose table map carries none (`binlog_row_metadata` MINIMAL or NO_LOG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub names: Vec<String>,
    pub key: Vec<bool>,
}

impl Members {
    pub fn of(tme: &TableMapEvent<'_>) -> Members {
        let mut m = Members::default();
        for f in tme.iter_optional_meta().flatten() {
            match f {
                OptionalMetadataField::EnumStrValue(v) => {
                    for e in v.iter_values().flatten() {
                        m.enums.push(e.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
                OptionalMetadataField::SetStrValue(v) => {
                    for e in v.iter_values().flatten() {
                        m.sets.push(e.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
                OptionalMetadataField::ColumnName(_) => m.named = true,
                _ => {}
            }
        }
        m
    }
}

/// A decoded row: column name → value, and the primary key's part of it.
pub struct Image {
    pub values: Map<String, Json>,
    pub key: Map<String, Json>,
}

/// The row's values by column name. Without `binlog_row_metadata=FULL` the names come from `def`
/// (mysql_common names such a column `@<its place in the table>`), or stay `@0`, `@1`, … without one.
pub fn image(row: &BinlogRow, members: &Members, def: Option<&Definition>) -> Image {
    let mut values = Map::new();
    let mut key = Map::new();
    let (mut e, mut s) = (0, 0);
    for (i, col) in row.columns_ref().iter().enumerate() {
        let ty = col.column_type();
        let names = match ty {
            ColumnType::MYSQL_TYPE_ENUM => {
                e += 1;
                members.enums.get(e - 1)
            }
            ColumnType::MYSQL_TYPE_SET => {
                s += 1;
                members.sets.get(s - 1)
            }
            _ => None,
        };
        let v = match row.as_ref(i) {
            Some(BinlogValue::Value(v)) => json(col, v, names.map(Vec::as_slice)),
            Some(BinlogValue::Jsonb(j)) => serde_json::Value::try_from(j.clone()).unwrap_or(Json::Null),
            _ => Json::Null,
        };
        let mut name = col.name_str().into_owned();
        let mut primary = col.flags().contains(ColumnFlags::PRI_KEY_FLAG);
        if let (Some(d), Some(at)) = (def, name.strip_prefix('@').and_then(|n| n.parse::<usize>().ok())) {
            if let (Some(n), Some(k)) = (d.names.get(at), d.key.get(at)) {
                name = n.clone();
                primary = *k;
            }
        }
        if primary {
            key.insert(name.clone(), v.clone());
        }
        values.insert(name, v);
    }
    Image { values, key }
}

/// A row a SELECT read (binary protocol, the session in UTC): the same JSON a binlog row of it gives.
pub fn result_row(columns: &[Column], values: &[Value]) -> Image {
    let mut out = Image { values: Map::new(), key: Map::new() };
    for (col, v) in columns.iter().zip(values) {
        let j = json(col, v, None);
        let name = col.name_str().into_owned();
        if col.flags().contains(ColumnFlags::PRI_KEY_FLAG) {
            out.key.insert(name.clone(), j.clone());
        }
        out.values.insert(name, j);
    }
    out
}

const SAFE: u64 = 1 << 53;

fn int(i: i64) -> Json {
    if i.unsigned_abs() <= SAFE {
        Json::from(i)
    } else {
        Json::String(i.to_string())
    }
}

fn uint(u: u64) -> Json {
    if u <= SAFE {
        Json::from(u)
    } else {
        Json::String(u.to_string())
    }
}

/// Text in the column's character set (latin1 as MariaDB's latin1, that is windows-1252).
fn text(col: &Column, b: &[u8]) -> Json {
    match col.character_set() {
        63 => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => {
            Json::String(encoding_rs::WINDOWS_1252.decode_without_bom_handling(b).0.into_owned())
        }
        _ => Json::String(String::from_utf8_lossy(b).into_owned()),
    }
}

fn fraction(us: u32) -> String {
    if us == 0 {
        String::new()
    } else {
        format!(".{us:06}")
    }
}

/// Seconds since the epoch (and a fraction) as an ISO-8601 UTC instant.
fn instant(secs: i64, us: u32) -> Json {
    match chrono::DateTime::from_timestamp(secs, us * 1000) {
        Some(t) => Json::String(format!("{}{}Z", t.format("%Y-%m-%dT%H:%M:%S"), fraction(us))),
        None => Json::Null,
    }
}

fn json(col: &Column, v: &Value, names: Option<&[String]>) -> Json {
    use ColumnType::*;
    let ty = col.column_type();
    match v {
        Value::NULL => Json::Null,
        Value::Int(i) => match ty {
            MYSQL_TYPE_TIMESTAMP => instant(*i, 0),
            MYSQL_TYPE_ENUM => match (names, usize::try_from(*i)) {
                (Some(n), Ok(k)) if k >= 1 && k <= n.len() => Json::String(n[k - 1].clone()),
                (Some(_), Ok(0)) => Json::String(String::new()),
                _ => int(*i),
            },
            _ if col.flags().contains(ColumnFlags::UNSIGNED_FLAG) && *i >= 0 => uint(*i as u64),
            _ => int(*i),
        },
        Value::UInt(u) => uint(*u),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::Double(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Date(y, m, d, h, mi, s, us) => match ty {
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Json::String(format!("{y:04}-{m:02}-{d:02}")),
            // a TIMESTAMP a UTC session read: the instant, as the binlog gives it
            MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
                Json::String(format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z", fraction(*us)))
            }
            _ => Json::String(format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}", fraction(*us))),
        },
        Value::Time(neg, days, h, m, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            Json::String(format!("{}{hours:02}:{m:02}:{s:02}{}", if *neg { "-" } else { "" }, fraction(*us)))
        }
        Value::Bytes(b) => match ty {
            MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => Json::String(String::from_utf8_lossy(b).into_owned()),
            MYSQL_TYPE_YEAR => std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok()).map_or(Json::Null, uint),
            MYSQL_TYPE_TIMESTAMP2 => {
                let s = String::from_utf8_lossy(b);
                let (secs, us) = s.split_once('.').unwrap_or((&s, "0"));
                match (secs.parse::<i64>(), us.parse::<u32>()) {
                    (Ok(secs), Ok(us)) => instant(secs, us),
                    _ => Json::Null,
                }
            }
            MYSQL_TYPE_BIT => uint(b.iter().fold(0u64, |n, x| n << 8 | u64::from(*x))),
            MYSQL_TYPE_SET => {
                // the members present, as a little-endian bitmap
                let bits = b.iter().rev().fold(0u64, |n, x| n << 8 | u64::from(*x));
                match names {
                    Some(n) => Json::String(
                        n.iter()
                            .enumerate()
                            .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                            .map(|(_, v)| v.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    None => uint(bits),
                }
            }
            MYSQL_TYPE_GEOMETRY => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            _ => text(col, b),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColumnType, flags: ColumnFlags, charset: u16) -> Column {
        Column::new(ty).with_flags(flags).with_character_set(charset)
    }

    #[test]
    fn values_are_typed_as_the_issue_says() {
        let none = ColumnFlags::empty();
        let c = |ty| col(ty, none, 45);
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_LONGLONG), &Value::Int(42), None), Json::from(42));
        assert_eq!(
            json(&c(ColumnType::MYSQL_TYPE_LONGLONG), &Value::Int(i64::MAX), None),
            Json::String(i64::MAX.to_string())
        );
        let unsigned = col(ColumnType::MYSQL_TYPE_LONGLONG, ColumnFlags::UNSIGNED_FLAG, 63);
        assert_eq!(json(&unsigned, &Value::UInt(u64::MAX), None), Json::String(u64::MAX.to_string()));
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_NEWDECIMAL), &Value::Bytes(b"-12.50".to_vec()), None), "-12.50");
        assert_eq!(
            json(&c(ColumnType::MYSQL_TYPE_DATETIME2), &Value::Date(2026, 12, 2, 3, 4, 5, 60), None),
            "2026-12-02T03:04:05.000060"
        );
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_DATE), &Value::Date(2026, 1, 9, 0, 0, 0, 0), None), "2026-01-09");
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_TIME2), &Value::Time(true, 1, 2, 3, 4, 0), None), "-26:03:04");
        assert_eq!(
            json(&c(ColumnType::MYSQL_TYPE_TIMESTAMP2), &Value::Bytes(b"0.5".to_vec()), None),
            "1970-01-01T00:00:00.000005Z"
        );
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_YEAR), &Value::Bytes(b"2024".to_vec()), None), 2024);
        let blob = col(ColumnType::MYSQL_TYPE_BLOB, none, 63);
        assert_eq!(json(&blob, &Value::Bytes(vec![0, 255]), None), "AP8=");
        let latin1 = col(ColumnType::MYSQL_TYPE_VARCHAR, none, 8);
        assert_eq!(json(&latin1, &Value::Bytes(vec![b'c', 0xE9]), None), "cé");
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_ENUM), &Value::Int(2), Some(&names)), "b");
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_SET), &Value::Bytes(vec![0b101]), Some(&names)), "a,c");
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_BIT), &Value::Bytes(vec![1, 2]), None), 258);
        assert_eq!(json(&c(ColumnType::MYSQL_TYPE_LONG), &Value::NULL, None), Json::Null);
    }
}
