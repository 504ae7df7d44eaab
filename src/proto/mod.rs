//! The MySQL wire protocol, shared by the frontend (clients on 8066) and the backend (MariaDB servers).
//! Framing lives in `codec`, packet builders/parsers in `packets`, password scrambles in `auth`.

pub mod auth;
pub mod codec;
pub mod packets;

pub use mysql_common::constants::{CapabilityFlags, StatusFlags};

/// Largest payload one physical packet carries; longer payloads continue in the next frame.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
