//! A feed's first snapshot on one dataHost: its tables' current rows as `op: r` changes, read inside one
//! consistent snapshot whose binlog position (`BINLOG_GTID_POS`) the stream then starts from: no gap, no double.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::decode;
use super::event::{Change, Op, Source};
use super::reader::{Item, Scope, Target};
use crate::backend::binlog::{self, Failure, Position};
use crate::backend::DataHostSet;

/// Reads the snapshot into `tx`; the position it was taken at, for the stream to go on from.
pub async fn take(set: &DataHostSet, scope: &Scope, tx: &mpsc::Sender<Item>) -> Result<Position, Failure> {
    let name: Arc<str> = set.cfg.name.as_str().into();
    let host = set.writer().name.clone();
    let mut c = binlog::within("connect", mysql_async::Conn::new(binlog::opts(&set.writer().pool.endpoint))).await?;
    // TIMESTAMP values as the binlog has them (UTC), text in utf8mb4
    binlog::within("the snapshot's session", c.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")).await?;
    binlog::within(
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
    )
    .await?;
    let status: Vec<(String, String)> =
        binlog::within("the snapshot's binlog position", c.query("SHOW STATUS LIKE 'binlog_snapshot_%'")).await?;
    let of = |k: &str| status.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    let (Some(file), Some(offset)) = (of("binlog_snapshot_file"), of("binlog_snapshot_position")) else {
        return Err(Failure::Unusable("the server gives no binlog_snapshot_file/position".into()));
    };
    let gtid: Option<String> = binlog::within(
        "BINLOG_GTID_POS",
        c.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.clone(), offset.parse::<u64>().unwrap_or(0))),
    )
    .await?;
    let pos = Position::parse(&gtid.unwrap_or_default());
    let at = pos.to_string();
    let mut tables: Vec<((String, String), Target)> =
        scope.tables.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
    for (db, (schema, dn)) in &scope.any {
        let names: Vec<String> = binlog::within(
            "the snapshot's table list",
            c.exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
                (db.clone(),),
            ),
        )
        .await?;
        for t in names {
            let key = (db.clone(), t.to_ascii_lowercase());
            if !scope.tables.contains_key(&key) {
                tables.push((key, Target { schema: schema.clone(), table: t.clone(), data_node: dn.clone() }));
            }
        }
    }
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut row = 0u64;
    for ((db, table), target) in tables {
        // a table the configuration places here but the server lacks has no rows
        let exists: Option<i64> = binlog::within(
            "the snapshot's table check",
            c.exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db.clone(), table.clone()),
            ),
        )
        .await?;
        if exists.unwrap_or(0) == 0 {
            continue;
        }
        let sql = format!("SELECT * FROM `{}`.`{}`", db.replace('`', "``"), table.replace('`', "``"));
        let mut result = binlog::within("the snapshot's read", c.exec_iter(sql, ())).await?;
        let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
        let mut stream = result.stream::<mysql_async::Row>().await.map_err(Failure::from)?;
        let Some(rows) = stream.as_mut() else { continue };
        while let Some(r) = futures_util::TryStreamExt::try_next(rows).await.map_err(Failure::from)? {
            let values: Vec<mysql_common::value::Value> =
                (0..columns.len()).map(|i| r.as_ref(i).cloned().unwrap_or(mysql_common::value::Value::NULL)).collect();
            let image = decode::result_row(&columns, &values);
            let change = Change {
                op: Op::Read,
                before: None,
                after: Some(image.values),
                key: image.key,
                ddl: None,
                source: Source {
                    schema: target.schema.clone(),
                    table: target.table.clone(),
                    data_node: target.data_node.clone(),
                    data_host: name.to_string(),
                    host: host.clone(),
                    db: db.clone(),
                    physical_table: table.clone(),
                    gtid: format!("snapshot@{at}"),
                    file: file.clone(),
                    pos: offset.parse().unwrap_or(0),
                    row,
                    ts_ms: 0,
                    snapshot: true,
                },
            };
            row += 1;
            if tx.send(Item::Snapshot { change: Box::new(change) }).await.is_err() {
                return Ok(pos);
            }
        }
    }
    let _ = c.query_drop("COMMIT").await;
    let _ = c.disconnect().await;
    Ok(pos)
}
