//! shardcat's typed errors and the MySQL error code / SQLSTATE each one reaches the client as.
//! Inner stages return these; only the frontend turns them into ERR packets.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error with a MySQL code and SQLSTATE, either from a backend or built by shardcat.
    #[error("{message}")]
    Sql { code: u16, state: &'static str, message: String },
    /// A backend server could not be reached.
    #[error("Can't connect to MySQL server on '{addr}' (dataHost '{data_host}'): {reason}")]
    Connect { addr: String, data_host: String, reason: String },
    /// A backend connection broke while a statement was running.
    #[error("Lost connection to MySQL server at '{addr}' (dataHost '{data_host}') during query: {reason}")]
    BackendLost { addr: String, data_host: String, reason: String },
    /// The backend sent something the protocol does not allow.
    #[error("Malformed packet from backend '{addr}': {reason}")]
    BackendProtocol { addr: String, reason: String },
    /// Something the proxy would hold for a cross-shard statement outgrew `mergeMemoryLimit`.
    #[error("{what} needs more than {limit} bytes (mergeMemoryLimit)")]
    MemoryLimit { what: String, limit: usize },
    /// The client connection failed; nothing can be reported to it.
    #[error("client connection: {0}")]
    Client(#[from] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn sql(code: u16, state: &'static str, message: impl Into<String>) -> Self {
        Error::Sql { code, state, message: message.into() }
    }

    /// 1105 (HY000): a statement shape shardcat refuses rather than answer wrongly.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::sql(1105, "HY000", message)
    }

    /// The same error again (one failure reported for several statements or nodes); a client I/O
    /// error keeps its kind and text.
    pub fn duplicate(&self) -> Self {
        match self {
            Error::Sql { code, state, message } => Error::Sql { code: *code, state, message: message.clone() },
            Error::Connect { addr, data_host, reason } => {
                Error::Connect { addr: addr.clone(), data_host: data_host.clone(), reason: reason.clone() }
            }
            Error::BackendLost { addr, data_host, reason } => {
                Error::BackendLost { addr: addr.clone(), data_host: data_host.clone(), reason: reason.clone() }
            }
            Error::BackendProtocol { addr, reason } => {
                Error::BackendProtocol { addr: addr.clone(), reason: reason.clone() }
            }
            Error::MemoryLimit { what, limit } => Error::MemoryLimit { what: what.clone(), limit: *limit },
            Error::Client(e) => Error::Client(io::Error::new(e.kind(), e.to_string())),
        }
    }

    pub fn code_and_state(&self) -> (u16, &'static str) {
        match self {
            Error::Sql { code, state, .. } => (*code, state),
            Error::MemoryLimit { .. } => (1105, "HY000"),
            // a backend the proxy cannot reach or lost: server-range codes (2000–2999 are the client
            // library's own — libmariadb reads an ERR packet carrying one as a malformed packet, 2027),
            // those MariaDB's FederatedX sends for its remote server; HY000, for the client's own
            // connection to the proxy is fine
            Error::Connect { .. } => (1429, "HY000"),
            Error::BackendLost { .. } | Error::BackendProtocol { .. } => (1430, "HY000"),
            Error::Client(_) => (2013, "HY000"),
        }
    }

    /// The error an ERR packet the proxy kept (a read run first, its reply diverted) carries: the
    /// proxy's own `MemoryLimit` comes back as itself (so a caller can still tell it from the rest).
    pub fn from_packet(code: u16, state: &str, message: String) -> Self {
        if code == 1105 {
            let limit = message
                .strip_suffix(" bytes (mergeMemoryLimit)")
                .and_then(|m| m.rsplit_once(" needs more than "))
                .and_then(|(what, n)| Some((what.to_string(), n.parse::<usize>().ok()?)));
            if let Some((what, limit)) = limit {
                return Error::MemoryLimit { what, limit };
            }
        }
        Error::Sql { code, state: static_state(state), message }
    }

    /// Errors after which the backend connection can no longer be trusted.
    pub fn breaks_backend(&self) -> bool {
        matches!(self, Error::BackendLost { .. } | Error::BackendProtocol { .. } | Error::Connect { .. })
    }
}

/// SQLSTATE for an error code a backend sent without one (rare; pre-4.1 servers).
pub fn static_state(s: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "HY000", "42000", "42S02", "42S22", "23000", "28000", "3D000", "08S01", "40001", "25000", "22001", "22003",
        "22007", "22012", "21S01", "42S01", "42S21", "XAE04", "0A000", "HY001", "70100", "01000", "22004", "22018",
        "23502", "25001", "25006", "40000", "44000", "22023", "42S12", "21000", "08004", "HY008", "XAE07", "XAE08",
        "XAE09", "22008", "22019",
    ];
    KNOWN.iter().copied().find(|k| *k == s).unwrap_or("HY000")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cap's error, sent as a packet and read back, is the cap's error again; others stay SQL errors.
    #[test]
    fn the_caps_error_survives_a_packet() {
        let e = Error::MemoryLimit { what: "the subquery (SELECT 1)".into(), limit: 2048 };
        let (code, state) = e.code_and_state();
        match Error::from_packet(code, state, e.to_string()) {
            Error::MemoryLimit { what, limit } => assert_eq!((what.as_str(), limit), ("the subquery (SELECT 1)", 2048)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(Error::from_packet(1105, "HY000", "bytes (mergeMemoryLimit)".into()), Error::Sql { .. }));
        assert!(matches!(Error::from_packet(1064, "42000", e.to_string()), Error::Sql { code: 1064, .. }));
    }
}
