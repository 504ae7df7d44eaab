//! Understanding SQL text: a cheap pre-classifier (`classify`), sqlparser-based analysis (`analyze`)
//! behind a bounded parse cache (`cache`), and the session statements handled without a backend (`session`).

pub mod analyze;
pub mod cache;
pub mod charset;
pub mod classify;
pub mod escapes;
pub mod hint;
pub mod session;
pub mod shape;
pub mod split;
