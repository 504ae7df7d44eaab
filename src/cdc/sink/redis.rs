//! Redis streams: each event XADDed to its stream with fields `id` (for the consumer's de-duplication)
//! and `event`, trimmed to about maxLen; the XADD's reply is the acknowledgement.

use futures_util::FutureExt;

use super::{fill, Ack, Addressed};

pub struct Streams {
    conn: redis::aio::MultiplexedConnection,
    stream: String,
    max_len: Option<u64>,
}

impl Streams {
    pub async fn connect(url: &str, stream: &str, max_len: Option<u64>) -> Result<Streams, String> {
        let client = redis::Client::open(url).map_err(|e| format!("Redis {url}: {e}"))?;
        let conn = client.get_multiplexed_async_connection().await.map_err(|e| format!("Redis {url}: {e}"))?;
        Ok(Streams { conn, stream: stream.to_string(), max_len })
    }

    /// The XADD runs to its reply here (one connection's commands keep their order only so), the
    /// acknowledgement is then already known.
    pub async fn send(&mut self, ev: Addressed<'_>) -> Result<Ack, String> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(fill(&self.stream, ev.schema, ev.table));
        if let Some(n) = self.max_len {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*").arg("id").arg(ev.id).arg("event").arg(ev.payload);
        let r: Result<String, _> = cmd.query_async(&mut self.conn).await;
        let r = r.map(|_| ()).map_err(|e| format!("Redis XADD: {e}"));
        Ok(async move { r }.boxed())
    }
}
