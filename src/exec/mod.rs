//! Execution: sends a routed statement to its backend connections and streams the replies to the
//! client — `relay` for one node (raw pass-through), `scatter` for several (concatenate or write-all).

pub mod aggregate;
pub mod cell;
pub mod collation;
pub mod collation_tables;
pub mod having;
pub mod learned;
pub mod limit;
pub mod merge;
pub mod merge_sort;
pub mod relay;
pub mod scatter;

use bytes::Bytes;
use tokio::io::AsyncWrite;

use crate::backend::Pooled;
use crate::error::Result;
use crate::proto::codec::PacketWriter;
use crate::proto::StatusFlags;
use crate::route::{Mode, Route};

/// Runs a routed command on its connections (one per route node, in order) and streams the reply.
/// `payloads` holds one command for all nodes, or one per node.
/// `merge_limit` caps the bytes a merge may hold (groups, sorted groups); `ask` is where a merge
/// learns what its shards say of its string keys.
pub async fn run<W: AsyncWrite + Unpin>(
    route: &Route,
    conns: &mut [Pooled],
    payloads: &[Bytes],
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
    merge_limit: usize,
    ask: Option<learned::Ask<'_>>,
) -> Result<Reply> {
    match &route.mode {
        Mode::Single => match (conns.first_mut(), payloads.first()) {
            (Some(c), Some(p)) => {
                c.send(p).await?;
                relay::relay(c, out, fmt).await
            }
            _ => Err(crate::error::Error::unsupported("nothing to run")),
        },
        Mode::Concat => scatter::concat(conns, payloads, out, fmt, route.limit).await,
        Mode::WriteAllReportOne => {
            scatter::write_all(conns, &route.nodes, payloads, scatter::Counting::ReportOne, out, fmt).await
        }
        Mode::WriteAllSum => scatter::write_all(conns, &route.nodes, payloads, scatter::Counting::Sum, out, fmt).await,
        Mode::Merge(plan) => merge::run(conns, &route.nodes, payloads, plan.as_ref(), out, fmt, merge_limit, ask).await,
    }
}

/// How the client wants replies framed, and the session's status bits to put in them.
#[derive(Debug, Clone, Copy)]
pub struct ClientFmt {
    pub deprecate_eof: bool,
    /// SERVER_STATUS_AUTOCOMMIT / SERVER_STATUS_IN_TRANS as the session sees them.
    pub status: u16,
    /// With autocommit off, whether a statement opened a transaction is the backend's call: keep its
    /// IN_TRANS bit.
    pub backend_in_trans: bool,
    /// Rows the proxy builds go out in the binary protocol (a prepared statement's result).
    pub binary_rows: bool,
    /// The client negotiated CLIENT_SESSION_TRACK: relayed OKs keep the system variables the
    /// server reports changed (what MariaDB tracks for a client by default).
    pub session_track: bool,
    /// The first id a global sequence gave the statement: the insert id its OK reports.
    pub insert_id: Option<u64>,
}

/// The bits the proxy owns: the session's transaction state, and SERVER_SESSION_STATE_CHANGED, which
/// answers the proxy's session trackers, not the client's.
const SESSION_BITS: u16 = StatusFlags::SERVER_STATUS_IN_TRANS.bits()
    | StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits()
    | StatusFlags::SERVER_STATUS_IN_TRANS_READONLY.bits()
    | StatusFlags::SERVER_SESSION_STATE_CHANGED.bits();

impl ClientFmt {
    /// A backend's status flags with the session-owned bits replaced by the proxy's view.
    pub fn patch(&self, backend_status: u16) -> u16 {
        let mut s = (backend_status & !SESSION_BITS) | self.status;
        if self.backend_in_trans {
            s |= backend_status & StatusFlags::SERVER_STATUS_IN_TRANS.bits();
        }
        s
    }
}

/// What a reply told the client, for the session's bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub warnings: u16,
    /// Rows sent in result sets.
    pub rows: u64,
    pub result_set: bool,
    /// The statement failed (the ERR packet has been sent to the client).
    pub failed: Option<crate::proto::packets::ErrInfo>,
    /// For a write on several nodes that failed: the node that refused it and its own message.
    pub failed_at: Option<(std::sync::Arc<str>, String)>,
    /// FOUND_ROWS() after the statement, when the server counted it (SQL_CALC_FOUND_ROWS).
    pub found_rows: Option<u64>,
    /// Warnings the proxy itself raised (code, message), counted in `warnings` too: what SHOW
    /// WARNINGS answers after a merge that cut a GROUP_CONCAT.
    pub notes: Vec<(u16, String)>,
}
