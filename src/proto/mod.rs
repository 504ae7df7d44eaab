//! The MySQL wire protocol, shared by the frontend (clients on 8066) and the backend (MariaDB servers).
//! Framing lives in `codec`, packet builders/parsers in `packets`, password scrambles in `auth`, result
//! sets the proxy builds itself in `result`.

pub mod auth;
pub mod codec;
pub mod packets;
pub mod result;
pub mod stream;

pub use mysql_common::constants::{CapabilityFlags, StatusFlags};

/// Largest payload one physical packet carries; longer payloads continue in the next frame.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
